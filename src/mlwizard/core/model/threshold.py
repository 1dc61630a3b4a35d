"""The decision threshold of a binary model, chosen on validation rows.

With costs (`[discovery] cost_false_positive` / `cost_false_negative`), the threshold minimizes
the expected cost; otherwise it maximizes the discovery metric when that metric depends on a
threshold (accuracy, balanced accuracy, F1), else F1. The positive class is class id 1, the
second of `schema.classes`; a row is predicted positive when its probability reaches the
threshold. Candidate thresholds sit midway between consecutive distinct probabilities, and ties
go to the one nearest 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "f1")


def choose(
    y: np.ndarray,
    positive: np.ndarray,
    *,
    metric: str,
    cost_false_positive: float | None,
    cost_false_negative: float | None,
) -> dict[str, Any]:
    """The threshold and how it was chosen, with its validation value and the value at 0.5."""
    thresholds = _candidates(positive)
    tp, fp, fn, tn = _counts(y, positive, thresholds)
    if cost_false_positive is not None or cost_false_negative is not None:
        c_fp = 1.0 if cost_false_positive is None else float(cost_false_positive)
        c_fn = 1.0 if cost_false_negative is None else float(cost_false_negative)
        cost = (c_fp * fp + c_fn * fn) / max(1, len(y))
        index = _pick(-cost, thresholds)
        at_half = _at(0.5, y, positive)
        return {
            "value": float(thresholds[index]),
            "chosen_by": "expected cost",
            "objective": (
                f"minimize ({c_fp:g} × false positives + {c_fn:g} × false negatives) / rows"
            ),
            "cost_false_positive": c_fp,
            "cost_false_negative": c_fn,
            "validation_value": float(cost[index]),
            "value_at_0_5": float((c_fp * at_half[1] + c_fn * at_half[2]) / max(1, len(y))),
        }
    target = metric if metric in THRESHOLD_METRICS else "f1"
    values = _metric(target, tp, fp, fn, tn)
    index = _pick(values, thresholds)
    half = _metric(target, *(np.array([v]) for v in _at(0.5, y, positive)))
    if target == metric:
        objective = f"maximize validation {target}, the discovery metric"
    else:  # e.g. roc_auc ranks probabilities and is the same at every threshold
        objective = f"maximize validation F1, since {metric} does not depend on the threshold"
    return {
        "value": float(thresholds[index]),
        "chosen_by": target,
        "objective": objective,
        "validation_value": float(values[index]),
        "value_at_0_5": float(half[0]),
    }


def _candidates(positive: np.ndarray) -> np.ndarray:
    distinct = np.unique(positive)
    if len(distinct) > 2000:  # enough resolution; keeps the count arrays small
        distinct = np.unique(np.quantile(positive, np.linspace(0, 1, 2001)))
    middles = (distinct[:-1] + distinct[1:]) / 2
    return np.concatenate([[0.0], middles, [np.nextafter(distinct[-1], np.inf)], [0.5]])


def _counts(
    y: np.ndarray, positive: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confusion counts for each threshold (predict positive when p >= t), vectorized."""
    order = np.sort(positive)
    pos_scores = np.sort(positive[y == 1])
    n_pos, n = len(pos_scores), len(positive)
    predicted_pos = n - np.searchsorted(order, thresholds, side="left")
    tp = n_pos - np.searchsorted(pos_scores, thresholds, side="left")
    fp = predicted_pos - tp
    fn = n_pos - tp
    tn = (n - n_pos) - fp
    return tp.astype(float), fp.astype(float), fn.astype(float), tn.astype(float)


def _at(threshold: float, y: np.ndarray, positive: np.ndarray) -> tuple[float, ...]:
    tp, fp, fn, tn = _counts(y, positive, np.array([threshold]))
    return float(tp[0]), float(fp[0]), float(fn[0]), float(tn[0])


def _metric(
    name: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "accuracy":
            return (tp + tn) / np.maximum(1.0, tp + fp + fn + tn)
        if name == "balanced_accuracy":
            tpr = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            tnr = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
            return (tpr + tnr) / 2
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def _pick(values: np.ndarray, thresholds: np.ndarray) -> int:
    """The index of the largest value; ties go to the threshold nearest 0.5."""
    best = np.flatnonzero(np.isclose(values, values.max(), rtol=0, atol=1e-12))
    return int(best[np.argmin(np.abs(thresholds[best] - 0.5))])
