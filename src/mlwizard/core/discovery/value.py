"""What decisions are worth: the expected cost of a model's decisions against the baseline's.

A decision's net cost is `cost_false_positive * FP + cost_false_negative * FN -
value_correct_decision * correct` ([discovery] keys; any may be unset = 0). The baseline is the
best constant decision on the same rows (everyone positive, or everyone negative; for several
classes, the commonest class), so the saving is what the model adds over doing the obvious.
Before training (discovery) only the stake is known: the baseline's cost and what a perfect
model would save. After it (the model phase) the saving is measured on the test split at the
chosen decision threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Costs:
    false_positive: float = 0.0
    false_negative: float = 0.0
    correct: float = 0.0  # value of a correct decision (a negative cost)

    @classmethod
    def of(cls, discovery: Any) -> Costs | None:
        """From a `DiscoverySection`; None when no cost or value is given."""
        fp, fn = discovery.cost_false_positive, discovery.cost_false_negative
        value = discovery.value_correct_decision
        if fp is None and fn is None and value is None:
            return None
        return cls(fp or 0.0, fn or 0.0, value or 0.0)

    def to_dict(self) -> dict[str, float]:
        return {
            "cost_false_positive": self.false_positive,
            "cost_false_negative": self.false_negative,
            "value_correct_decision": self.correct,
        }


def binary_cost(positive: np.ndarray, predicted: np.ndarray, costs: Costs) -> float:
    """Net cost of predicted-positive decisions `predicted` against the truth `positive`."""
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    correct = len(positive) - fp - fn
    return costs.false_positive * fp + costs.false_negative * fn - costs.correct * correct


def binary_roi(positive: np.ndarray, predicted: np.ndarray, costs: Costs) -> dict[str, Any]:
    """The model's decisions against the best constant decision, on the same rows."""
    positive, predicted = positive.astype(bool), predicted.astype(bool)
    rows = len(positive)
    model = binary_cost(positive, predicted, costs)
    constant = {
        "everyone negative": binary_cost(positive, np.zeros(rows, bool), costs),
        "everyone positive": binary_cost(positive, np.ones(rows, bool), costs),
    }
    decision, baseline = min(constant.items(), key=lambda kv: kv[1])
    return _report(rows, model, baseline, decision, costs) | {
        "false_positives": int(np.sum(predicted & ~positive)),
        "false_negatives": int(np.sum(~predicted & positive)),
    }


def multiclass_roi(truth: np.ndarray, predicted: np.ndarray, costs: Costs) -> dict[str, Any]:
    """With several classes only the value of a correct decision applies (errors cost
    `cost_false_negative` each, when given)."""
    rows = len(truth)
    wrong_cost = costs.false_negative

    def cost(correct: int) -> float:
        return wrong_cost * (rows - correct) - costs.correct * correct

    values, counts = np.unique(truth, return_counts=True)
    majority = values[int(np.argmax(counts))] if rows else None
    model = cost(int(np.sum(truth == predicted)))
    baseline = cost(int(counts.max()) if rows else 0)
    return _report(rows, model, baseline, f"everyone '{majority}'", costs)


def stake(counts: dict[Any, int], positive: Any, costs: Costs) -> dict[str, Any]:
    """Before training: the baseline's cost from the class balance, and a perfect model's."""
    rows = sum(counts.values())
    if not rows:
        return {}
    if len(counts) == 2 and positive in counts:
        pos = counts[positive]
        neg = rows - pos
        options = {
            "everyone negative": costs.false_negative * pos - costs.correct * neg,
            "everyone positive": costs.false_positive * neg - costs.correct * pos,
        }
    else:
        majority = max(counts.values())
        options = {
            "everyone the commonest class": costs.false_negative * (rows - majority)
            - costs.correct * majority
        }
    decision, baseline = min(options.items(), key=lambda kv: kv[1])
    perfect = -costs.correct * rows
    report = _report(rows, perfect, baseline, decision, costs)
    return {
        "rows": rows,
        "baseline_decision": decision,
        "baseline_cost": report["baseline_cost"],
        "baseline_cost_per_row": round(baseline / rows, 6),
        "perfect_model_saving": report["saving"],
        "perfect_model_saving_per_row": report["saving_per_row"],
        "costs": costs.to_dict(),
        "note": "on the whole table, before training: the most a model can save",
    }


def _report(
    rows: int, model: float, baseline: float, decision: str, costs: Costs
) -> dict[str, Any]:
    saving = baseline - model
    return {
        "rows": rows,
        "model_cost": round(model, 4),
        "baseline_cost": round(baseline, 4),
        "baseline_decision": decision,
        "saving": round(saving, 4),
        "saving_per_row": round(saving / rows, 6) if rows else None,
        "saving_share": round(saving / abs(baseline), 4) if baseline else None,
        "costs": costs.to_dict(),
    }


def model_roi(
    discovery: Any, task: str, y: np.ndarray, proba: np.ndarray, threshold: float | None
) -> dict[str, Any] | None:
    """The model's saving on labelled rows (class ids `y`, probabilities [N, C]) at its decision
    threshold (binary; else the most probable class); None without costs or for regression."""
    costs = Costs.of(discovery)
    if costs is None or task not in ("binary", "multiclass") or not len(y):
        return None
    if task == "binary":
        scores = proba[:, 1] / proba.sum(axis=1)
        predicted = scores >= (threshold if threshold is not None else 0.5)
        report = binary_roi(y == 1, predicted, costs)
        report["threshold"] = threshold
        return report
    return multiclass_roi(y, np.argmax(proba, axis=1), costs)


def words(report: dict[str, Any]) -> str:
    """One line for the phase's messages."""
    saving = report["saving"]
    side = "saves" if saving >= 0 else "costs"
    return (
        f"value on {report['rows']} test rows: the model {side} {abs(saving):,.4g} "
        f"({abs(report['saving_per_row'] or 0):.4g} a row) against the baseline "
        f"({report['baseline_decision']}: net cost {report['baseline_cost']:,.4g}; "
        f"the model's {report['model_cost']:,.4g})"
    )
