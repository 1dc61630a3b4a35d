"""The model phase end to end on small synthetic projects: real tuning, export, parity, evaluation.

Searches are capped at two configurations per family (`MLWIZARD_TUNING_TRIALS`) to keep the
suite short; the search itself is tested in full in test_model_units.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from helpers.model import ALL_CANDIDATES, FEATURES, fake_project
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.export import onnx_export
from mlwizard.core.export.parity import Parity, check_parity
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import DiscoverySection, SplitSection
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import (
    BadInputError,
    CancelledError,
    MlwizardError,
    QualityGateError,
)
from mlwizard.core.model import insurance
from mlwizard.core.model import phase as model
from mlwizard.core.model.experiments import STORE_FILE, ExperimentStore
from mlwizard.core.model.jobs import TrainJob
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.core.model.workers import plan

PARITY_TOLERANCE = 1e-4
EXPORTED = [c for c in ALL_CANDIDATES if c != "dummy"]


@pytest.fixture(autouse=True)
def _two_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "2")


Run = tuple[PhaseContext, PhaseResult, list[ev.Event], list[tuple[float, str]]]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """All six families on a binary task; the parent's Parquet reads are recorded."""
    ctx, events = fake_project(tmp_path_factory.mktemp("binary"), "binary")
    reads: list[tuple[float, str]] = []
    original = pd.read_parquet

    def recording(path: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        reads.append((time.monotonic(), Path(path).name))
        return original(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TRIALS_ENV, "2")
        patch.setattr(pd, "read_parquet", recording)
        timed: list[tuple[float, ev.Event]] = []
        ctx.emit = lambda event: (events.append(event), timed.append((time.monotonic(), event)))
        result = model.run(ctx)
    ctx.emit = events.append
    last_run = max(t for t, e in timed if isinstance(e.payload, ev.CandidateFinished))
    reads.append((last_run, "<last run reported>"))
    return ctx, result, events, sorted(reads)


def _rows(result: PhaseResult) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result.metrics["candidates"]}


def _board(ctx: PhaseContext) -> dict[str, dict[str, Any]]:
    board = json.loads((ctx.workspace.artifact_dir("model") / "leaderboard.json").read_text())
    return {row["name"]: row for row in board["rows"]}


def _candidate_parity(ctx: PhaseContext, name: str, split: str) -> Parity:
    """Parity of a saved candidate on a split, checked again from its files."""
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(pd.read_parquet(ctx.upstream_artifact("data", split)), schema)
    onnx_path = ctx.workspace.resolve(_board(ctx)[name]["onnx"])
    pipeline = joblib.load(onnx_path.with_suffix(".joblib"))
    return check_parity(pipeline, onnx_path.read_bytes(), frame, schema)


def test_binary_trains_every_family_and_keeps_a_deployable_best(binary: Run) -> None:
    ctx, result, _, _ = binary
    rows = _rows(result)
    assert [n for n in rows if n != "ensemble"] == list(ALL_CANDIDATES)
    assert all(row["status"] == "done" and row["complete"] for row in rows.values()), rows
    assert not rows["dummy"]["deployable"]
    assert "no ONNX converter for DummyClassifier" in rows["dummy"]["reason"]
    assert all(rows[name]["deployable"] for name in EXPORTED), rows
    assert result.metrics["not_deployable"] == ["dummy"]

    best = result.metrics["best_model"]
    assert rows[best]["deployable"] and best != "dummy"
    assert result.metrics["parity"]["max_abs_diff"] <= PARITY_TOLERANCE
    single = max(rows[n]["score"] for n in EXPORTED)
    tried = result.metrics["ensemble"]  # the top three, kept only if better than the best alone
    assert len(tried["members"]) == 3 and set(tried["members"]) <= set(EXPORTED)
    if tried["kept"]:
        # judged as the single runs are: their CV folds and validation, pooled
        assert best == "ensemble"
        assert rows[best]["rank_score"] > rows[tried["members"][0]]["rank_score"]
    else:  # chosen by CV and validation pooled, not by validation alone
        # not better than the best alone, or the weighted selection kept one run alone
        note = tried["note"]
        assert rows[best]["cv_mean"] is not None and ("not kept" in note or "alone" in note)
        assert rows[best]["score"] <= single
    validation = result.metrics["validation"]["linear"]
    assert {"roc_auc", "accuracy", "f1", "log_loss", "precision", "recall", "pr_auc"} <= set(
        validation
    )
    test = result.metrics["test"]
    for name in ("roc_auc", "accuracy", "f1", "balanced_accuracy", "precision", "recall"):
        assert 0.0 <= test[name] <= 1.0
    assert 0.0 < test["brier"] < 0.5 and test["log_loss"] > 0
    assert result.metrics["baseline"] == pytest.approx(0.5)
    assert result.gate_failures == []
    for name in ("onnx", "pipeline", "leaderboard", "evaluation", "worst_rows", "decision"):
        assert result.outputs[name].is_file(), name
    # The deployed model is the chosen one refitted on every labelled row, not the run's file.
    chosen = ctx.workspace.resolve(_board(ctx)[best]["onnx"])
    assert result.outputs["onnx"].read_bytes() != chosen.read_bytes()
    training = result.metrics["training"]
    assert training["deployed_fit_on"] == "train+valid+test"
    assert training["rows"] == {"train": 600, "train+valid": 850, "train+valid+test": 1100}


@pytest.mark.parametrize("name", EXPORTED)
def test_exports_match_pipelines_on_nan_null_and_unseen_categories(binary: Run, name: str) -> None:
    ctx, _, _, _ = binary
    test = pd.read_parquet(ctx.upstream_artifact("data", "test"))
    assert test["age years"].isna().any() and test["city"].isna().any()
    assert (test["city"] == "marseille").any() and (test["plan"] == "enterprise").any()
    parity = _candidate_parity(ctx, name, "test")
    assert parity.ok and parity.max_abs_diff <= PARITY_TOLERANCE, parity
    assert parity.label_agreement is not None and parity.label_agreement >= 0.99


def test_tuning_searched_each_family_with_stratified_cv(binary: Run) -> None:
    ctx, result, _, _ = binary
    board = _board(ctx)
    for name in EXPORTED:
        row = board[name]
        assert row["cv"]["kind"] == "StratifiedKFold" and row["cv"]["folds"] == 5
        assert len(row["cv"]["scores"]) == 5 and row["cv_mean"] == pytest.approx(
            np.mean(row["cv"]["scores"])
        )
        assert row["search"]["planned"] == 2 and row["search"]["tried"] == 2
        assert row["trials"] == 2 and row["complete"]
    assert result.metrics["cv"]["kind"] == "StratifiedKFold"
    # Boosters refit with the rounds early stopping found on the folds.
    assert board["catboost"]["params"]["iterations"] < 1000
    assert board["hist_gradient_boosting"]["params"]["early_stopping"] is False


def test_each_run_is_logged_and_reported(binary: Run) -> None:
    ctx, result, events, _ = binary
    runs = ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs(
        result.metrics["phase_run_id"]
    )
    assert sorted(r["candidate"] for r in runs) == sorted(ALL_CANDIDATES)
    by_name = {r["candidate"]: r for r in runs}
    linear = by_name["linear"]
    assert linear["data_fingerprint"] == "fp-data-binary" and linear["seed"] == 7
    assert linear["onnx_path"].startswith("artifacts/model/candidates/linear-")
    assert linear["metrics"]["cv"]["kind"] == "StratifiedKFold"
    assert by_name["dummy"]["onnx_path"] is None and by_name["dummy"]["reason"]
    assert by_name["hist_gradient_boosting"]["params"]["random_state"] == 7
    # Each worker's share of the cores; the last jobs running may take what idle workers leave
    # (the pool's elastic tail), never more than the machine has.
    _, share = plan(2, len(ALL_CANDIDATES))
    assert all(
        share <= r["metrics"]["threads"] <= (os.cpu_count() or 1)
        for r in runs
        if r["metrics"]["threads"]
    )

    finished = [e.payload for e in events if isinstance(e.payload, ev.CandidateFinished)]
    assert sorted(d.candidate for d in finished) == sorted(ALL_CANDIDATES)
    assert all(d.status == "done" and d.duration_s is not None for d in finished)
    texts = [e.message for e in events]
    assert any(t.startswith("best: ") and "deployable candidate" in t for t in texts)
    assert any("5-fold StratifiedKFold" in t and "best of 2 configurations" in t for t in texts)
    assert any(t.startswith("not deployable: dummy") for t in texts)


def test_the_test_split_is_read_once_after_training(binary: Run) -> None:
    _, _, _, reads = binary
    names = [name for _, name in reads]
    assert names.count("test.parquet") == 1
    assert names.index("test.parquet") > names.index("<last run reported>")
    # Workers get the train and validation splits only.
    assert not {f.name for f in dataclasses.fields(TrainJob)} & {"test", "test_path"}


def test_evaluation_threshold_and_error_analysis(binary: Run) -> None:
    _, result, _, _ = binary
    evaluation = json.loads(result.outputs["evaluation"].read_text())
    assert evaluation["model"] == result.metrics["best_model"]
    for split in ("validation", "test"):
        part = evaluation[split]
        matrix = np.array(part["confusion_matrix"]["matrix"])
        assert matrix.shape == (2, 2) and matrix.sum() == 250
        assert part["confusion_matrix"]["labels"] == ["churn", "stay"]
        bins = part["calibration"]["bins"]
        assert len(bins) == 10 and sum(b["count"] for b in bins) == 250
    assert evaluation["test"]["scores"] == result.metrics["test"]

    decision = json.loads(result.outputs["decision"].read_text())
    assert decision["threshold"] == result.metrics["threshold"]
    assert 0.0 < decision["threshold"] < 1.0
    assert decision["positive_class"] == "stay" and decision["chosen_by"] == "f1"
    assert decision["validation_value"] >= decision["value_at_0_5"]

    found = evaluation["error_analysis"]
    assert found["split"] == "valid" and found["min_slice_rows"] == 10
    assert found["worst_slices"], found
    for piece in found["worst_slices"]:
        assert piece["rows"] >= 10 and piece["feature"] in FEATURES
        assert piece["mean_error"] > piece["overall_mean_error"]
    importance = found["permutation_importance"]
    assert {f["feature"] for f in importance["features"]} == set(FEATURES)
    assert importance["rows"] == 250 and importance["repeats"] == 5

    worst = pd.read_parquet(result.outputs["worst_rows"])
    assert {"target", *FEATURES, "prediction", "error"} <= set(worst.columns)
    assert len(worst) == 50 and worst["error"].is_monotonic_decreasing
    assert set(worst["prediction"]) <= {"churn", "stay"}
    assert result.metrics["warnings"] == []


def test_rerun_reuses_every_finished_run_with_identical_results(binary: Run) -> None:
    ctx, first, _, _ = binary
    candidates = ctx.workspace.artifact_dir("model") / "candidates"

    def runs() -> dict[str, int]:  # an ensemble, if kept, is rebuilt from the runs: not a run
        return {
            p.name: p.stat().st_mtime_ns
            for p in candidates.iterdir()
            if not p.name.startswith("ensemble")
        }

    stamps = runs()
    events: list[ev.Event] = []
    ctx.emit = events.append
    try:
        second = model.run(ctx)
    finally:
        ctx.emit = lambda event: None
    assert second.metrics["reused"] == list(ALL_CANDIDATES)
    assert runs() == stamps
    reported = [e for e in events if isinstance(e.payload, ev.CandidateFinished)]
    assert [e.payload.candidate for e in reported] == list(ALL_CANDIDATES)
    assert all("reused from an earlier run (not retrained)" in e.message for e in reported)
    for key in ("validation", "test", "threshold", "best_model", "cv"):
        assert second.metrics[key] == first.metrics[key], key


def test_same_data_seed_and_config_give_identical_metrics_and_predictions(
    binary: Run, tmp_path: Path
) -> None:
    first_ctx, first, _, _ = binary
    ctx, _ = fake_project(tmp_path, "binary", threshold=1.01)
    second = model.run(ctx)
    assert second.metrics["reused"] == []
    for key in ("validation", "test", "threshold", "best_model", "cv", "best_params"):
        assert second.metrics[key] == first.metrics[key], key
    assert _board(ctx)["catboost"]["search"] == _board(first_ctx)["catboost"]["search"]

    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(pd.read_parquet(ctx.upstream_artifact("data", "test")), schema)
    outputs = [
        onnx_export.predict_onnx(onnx_export.make_session(r.outputs["onnx"]), frame, schema)
        for r in (first, second)
    ]
    assert np.array_equal(outputs[0]["probabilities"], outputs[1]["probabilities"])
    native = [joblib.load(r.outputs["pipeline"]).predict_proba(frame) for r in (first, second)]
    assert np.array_equal(native[0], native[1])
    # Same results, different success criterion: the gate fails on the impossible threshold.
    assert len(second.gate_failures) == 1
    assert "below the success threshold 1.01" in second.gate_failures[0]


def test_regression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    ctx, _ = fake_project(
        tmp_path,
        "regression",
        metric="rmse",
        candidates=("catboost", "random_forest"),
        rows=(400, 250, 250),
        workers=1,
    )
    result = model.run(ctx)
    rows = _rows(result)
    assert all(row["status"] == "done" for row in rows.values())
    assert "DummyRegressor" in rows["dummy"]["reason"]
    assert {"r2", "rmse", "mae", "mape"} <= result.metrics["test"].keys()
    assert result.metrics["test"]["rmse"] > 0 and result.metrics["threshold"] is None
    assert result.metrics["metric_direction"] == "minimize"
    best = result.metrics["best_model"]
    assert result.metrics["validation"][best]["rmse"] < result.metrics["baseline"]
    assert result.metrics["cv"]["kind"] == "KFold"
    assert result.gate_failures == []
    # Here the average of the two beats both: it is deployed as one ONNX graph.
    assert result.metrics["ensemble"]["kept"] and best == "ensemble"
    assert rows["ensemble"]["deployable"] and rows["ensemble"]["score"] < min(
        rows[n]["score"] for n in ("catboost", "random_forest")
    )
    for name in ("catboost", "random_forest", "ensemble"):
        parity = _candidate_parity(ctx, name, "test")
        assert parity.ok, parity
    evaluation = json.loads(result.outputs["evaluation"].read_text())
    residuals = evaluation["test"]["residuals"]
    assert sum(residuals["histogram"]["counts"]) == 250
    assert (
        residuals["quantiles"]["p5"]
        <= residuals["quantiles"]["p50"]
        <= residuals["quantiles"]["p95"]
    )
    assert "decision" not in result.outputs


def test_multiclass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    ctx, _ = fake_project(
        tmp_path, "multiclass", candidates=("linear",), workers=1, rows=(400, 250, 250)
    )
    result = model.run(ctx)
    assert all(row["status"] == "done" for row in result.metrics["candidates"])
    test = result.metrics["test"]
    for name in ("accuracy", "f1_macro", "roc_auc", "precision_macro", "recall_macro"):
        assert 0.0 <= test[name] <= 1.0
    session = onnx_export.make_session(result.outputs["onnx"])
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(pd.read_parquet(ctx.upstream_artifact("data", "test")), schema)
    outputs = onnx_export.predict_onnx(session, frame, schema)
    assert outputs["probabilities"].shape == (len(frame), 3)
    assert outputs["label"].dtype == np.int64
    parity = _candidate_parity(ctx, "linear", "test")  # other families: test_model_units.py
    assert parity.ok and parity.label_agreement == 1.0, parity
    evaluation = json.loads(result.outputs["evaluation"].read_text())
    assert np.array(evaluation["test"]["confusion_matrix"]["matrix"]).shape == (3, 3)


def _stores(table: pd.DataFrame, rng: np.random.Generator) -> dict[str, Any]:
    return {"store": rng.integers(0, 12, len(table))}


def _leak(table: pd.DataFrame, rng: np.random.Generator) -> dict[str, Any]:
    return {"refund": (table["target"] == "stay").astype(float) + rng.normal(0, 0.01, len(table))}


def test_group_split_tunes_on_groups_costs_set_the_threshold_and_a_leak_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    ctx, events = fake_project(
        tmp_path,
        "binary",
        candidates=("linear",),
        workers=1,
        split=SplitSection(strategy="group", group_column="store"),
        discovery=DiscoverySection(cost_false_positive=1.0, cost_false_negative=8.0),
        extra_columns=_stores,
        extra_features=_leak,
    )
    result = model.run(ctx)
    assert result.metrics["cv"]["kind"] == "GroupKFold"
    assert result.metrics["cv"]["column"] == "store" and result.metrics["cv"]["folds"] == 5
    decision = json.loads(result.outputs["decision"].read_text())
    assert decision["chosen_by"] == "expected cost"
    assert decision["cost_false_negative"] == 8.0
    assert decision["validation_value"] <= decision["value_at_0_5"]
    assert result.metrics["warnings"] and "leakage audit" in result.metrics["warnings"][0]
    assert "artifacts/data/audit.json" in result.metrics["warnings"][0]
    assert any(e.message.startswith("warning: validation roc_auc") for e in events)


def test_time_budget_too_short_for_anything(tmp_path: Path) -> None:
    """Issue 9, bug 6: not bad input (exit 2) but a budget too small: exit 1, with the budget
    to set. (The insured baseline may finish in time: it is not deployable either.)"""
    ctx, _ = fake_project(tmp_path, "binary", time_budget=0.05)  # no spawned worker is up by then
    with pytest.raises(QualityGateError, match="time budget") as raised:
        model.run(ctx)
    assert raised.value.exit_code == 1 and "--time-budget" in str(raised.value)
    runs = ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs()
    assert sorted(r["candidate"] for r in runs) == sorted(ALL_CANDIDATES)
    assert {r["status"] for r in runs} <= {"skipped", "done"}


def test_no_deployable_candidate_is_an_error(tmp_path: Path) -> None:
    ctx, _ = fake_project(tmp_path, "binary", candidates=("dummy",), workers=1)
    with pytest.raises(MlwizardError, match="no candidate can be deployed: dummy: done"):
        model.run(ctx)
    assert (ctx.workspace.artifact_dir("model") / "leaderboard.json").is_file()


def test_cancelled_before_start(tmp_path: Path) -> None:
    ctx, _ = fake_project(tmp_path, "binary")
    ctx.cancel = threading.Event()
    ctx.cancel.set()
    with pytest.raises(CancelledError):
        model.run(ctx)


@pytest.mark.timeout(120)  # a cancel that does not stop the pool hangs: the timeout fails it
def test_cancel_while_training_stops_the_pool_and_keeps_what_finished(tmp_path: Path) -> None:
    ctx, _ = fake_project(tmp_path, "binary", candidates=("linear", "catboost", "random_forest"))
    ctx.cancel = threading.Event()

    def cancel_after_first_run(event: ev.Event) -> None:
        if isinstance(event.payload, ev.CandidateFinished):
            ctx.cancel.set()

    ctx.emit = cancel_after_first_run
    with pytest.raises(CancelledError):
        model.run(ctx)
    runs = ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs()
    statuses = {r["candidate"]: r["status"] for r in runs}
    assert len(statuses) == 4 and "done" in statuses.values()
    assert set(statuses.values()) <= {"done", "cancelled"}
    # What finished before the cancel is kept, and reused by the next run.
    kept = {n for n, s in statuses.items() if s == "done"}
    saved = {
        p.stem.rsplit("-", 1)[0]
        for p in (ctx.workspace.artifact_dir("model") / "candidates").glob("*.json")
    }
    assert kept == saved


def test_unknown_candidate_is_a_readable_error(tmp_path: Path) -> None:
    ctx, _ = fake_project(tmp_path, "binary", candidates=("linear", "svm"))
    with pytest.raises(BadInputError, match="unknown svm"):
        model.run(ctx)


def test_feed_maps_missing_strings_to_the_token() -> None:
    schema = Schema(
        "y",
        "binary",
        [Feature("c", "categorical", "f000_c"), Feature("x", "numeric", "f001_x")],
        [0, 1],
    )
    frame = pd.DataFrame(
        {"f000_c": np.array(["a", None, np.nan], dtype=object), "f001_x": [1.0, np.nan, 2.0]}
    )
    feed = onnx_export.onnx_feed(frame, schema)
    assert feed["f000_c"].ravel().tolist() == ["a", schema.missing_token, schema.missing_token]
    assert feed["f001_x"].dtype == np.float32 and feed["f001_x"].shape == (3, 1)


def test_a_budget_too_short_for_the_workers_still_ends_with_a_model(tmp_path: Path) -> None:
    """Issue 9, bug 6: the parent trains the baseline and linear with their defaults while the
    workers start, so a budget that holds those ends with a deployable model; one that does not
    fails with exit 1 and the budget it needs, never with exit 2."""
    ctx, events = fake_project(tmp_path, "binary", time_budget=6, candidates=ALL_CANDIDATES)
    try:
        result = model.run(ctx)
    except QualityGateError as exc:  # a machine too busy for even that
        assert exc.exit_code == 1 and "--time-budget" in str(exc)
        return
    rows = {r["name"]: r for r in result.metrics["candidates"]}
    assert rows[result.metrics["best_model"]]["deployable"]
    insured = [e.message for e in events if insurance.NOTE in e.message]
    assert all(m.startswith(("dummy:", "linear:")) for m in insured)
