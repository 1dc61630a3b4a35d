"""Discovery's judgement before training: the approach (reinforcement learning declined), the
baseline and reachability, the time estimate, and the value of decisions."""

from __future__ import annotations

import numpy as np
import pytest

from mlwizard.core.discovery import approach, feasibility, value
from mlwizard.core.kernel.config import DiscoverySection

RL_PROBLEMS = [
    "We want an agent that learns a pricing policy to maximize long-term reward.",
    "Sequential decisions: each step the robot picks an action in its environment.",
    "reinforcement learning for ad bidding",
    "Which arm of the multi-armed bandit to pull each day",
]
NOT_RL = [
    "Predict whether a customer churns next month from their usage.",
    "Find groups of similar shoppers; the table has a reward points column.",
    "Flag unusual transactions.",
]


@pytest.mark.parametrize("text", RL_PROBLEMS)
def test_sequential_decisions_with_rewards_are_recognised(text: str) -> None:
    assert approach.looks_like_rl(text)


@pytest.mark.parametrize("text", NOT_RL)
def test_ordinary_problems_are_not_taken_for_rl(text: str) -> None:
    assert not approach.looks_like_rl(text)


def test_baselines_follow_the_class_balance() -> None:
    counts = {"counts": {"no": 90, "yes": 10}}
    assert feasibility.baseline_score("binary", "roc_auc", counts) == 0.5
    assert feasibility.baseline_score("binary", "accuracy", counts) == 0.9
    assert feasibility.baseline_score("regression", "rmse", {"std": 2.5}) == 2.5


def test_reachability_verdicts() -> None:
    assert feasibility.reachability("roc_auc", "maximize", 1.2, 0.5)["verdict"] == "unreachable"
    assert feasibility.reachability("accuracy", "maximize", 0.85, 0.9)["verdict"] == "trivial"
    assert feasibility.reachability("accuracy", "maximize", 0.995, 0.9)["verdict"] == "hard"
    assert feasibility.reachability("roc_auc", "maximize", 0.8, 0.5)["verdict"] == "plausible"


def test_time_estimate_grows_with_cells_and_holds_to_the_budget() -> None:
    names = ["dummy", "linear", "random_forest"]
    small = feasibility.estimate_seconds(1_000, 10, names, 2, float("inf"))
    large = feasibility.estimate_seconds(100_000, 10, names, 2, float("inf"))
    assert large > small > 0
    assert feasibility.estimate_seconds(100_000, 10, names, 2, 5.0) == 5.0
    busy = feasibility.estimate_seconds(1_000, 10, names, 2, float("inf"), slowdown=3.0)
    assert busy == pytest.approx(3 * small)


def test_estimate_counts_only_the_rows_the_budget_lets_the_model_phase_train_on() -> None:
    """10M labelled rows and a 60 s budget: the model phase trains on a sample of 300k rows,
    so the estimate's memory is that sample's, not ten million rows' (271 GB before)."""
    names = ["dummy", "linear", "hist_gradient_boosting"]
    big = feasibility.estimate(10_000_000, 10, names, 2, 60.0)
    capped = 60 * feasibility.TRAINING_ROWS_PER_BUDGET_S
    assert big["rows"] == capped and big["sampled_from"] == 10_000_000
    assert (
        big["peak_memory_mb"] == feasibility.estimate(capped, 10, names, 2, 60.0)["peak_memory_mb"]
    )
    assert feasibility.estimate(1_000, 10, names, 2, 60.0)["sampled_from"] is None


def test_roi_counts_errors_against_the_best_constant_decision() -> None:
    costs = value.Costs.of(DiscoverySection(cost_false_positive=1.0, cost_false_negative=10.0))
    assert costs is not None
    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    predicted = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)  # 1 FP, 1 FN
    report = value.binary_roi(truth, predicted, costs)
    # Everyone negative misses 2 positives (20); everyone positive: 8 false alarms (8).
    assert report["baseline_decision"] == "everyone positive"
    assert report["baseline_cost"] == 8.0
    assert report["model_cost"] == 11.0
    assert report["saving"] == -3.0  # an honest loss: this model is worse than flagging everyone
    stake = value.stake({"0": 8, "1": 2}, "1", costs)
    assert stake["baseline_cost"] == 8.0 and stake["perfect_model_saving"] == 8.0


def test_model_roi_applies_the_decision_threshold() -> None:
    section = DiscoverySection(cost_false_positive=1.0, cost_false_negative=10.0)
    y = np.array([1, 1, 0, 0])
    proba = np.array([[0.4, 0.6], [0.8, 0.2], [0.7, 0.3], [0.9, 0.1]])
    at_half = value.model_roi(section, "binary", y, proba, 0.5)
    at_low = value.model_roi(section, "binary", y, proba, 0.15)
    assert at_half is not None and at_low is not None
    assert at_half["false_negatives"] == 1 and at_half["false_positives"] == 0
    assert at_low["false_negatives"] == 0 and at_low["false_positives"] == 1
    assert at_low["saving"] > at_half["saving"]  # a missed positive costs ten false alarms
    assert value.model_roi(DiscoverySection(), "binary", y, proba, 0.5) is None  # no costs
