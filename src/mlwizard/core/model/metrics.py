"""Evaluation metrics per task, the details behind them, and how to compare two scores.

`evaluate` gives flat scores (what the leaderboard and the success gate compare), `score` one of
them alone; `details` gives the confusion matrix, reliability curve and residual distribution for
`evaluation.json`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mlwizard.core.contract.tasks import Direction
from mlwizard.core.kernel.errors import BadInputError

Scores = dict[str, float | None]  # None: undefined on this data (e.g. AUC with one class present)

# What `evaluate` reports per task: a superset of what discovery may choose (`tasks.METRICS`).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "roc_auc",
        "average_precision",
        "pr_auc",
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "f1_macro",
        "log_loss",
        "brier",
    ),
    "multiclass": (
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "f1_weighted",
        "log_loss",
        "roc_auc",
        "brier",
    ),
    "regression": ("r2", "rmse", "mae", "mape"),
}
CALIBRATION_BINS = 10
RESIDUAL_BINS = 20
MAPE_FLOOR = 1e-8  # rows with |y| below this are left out of MAPE (it divides by y)


def check_metric(task: str, metric: str) -> None:
    if metric not in TASK_METRICS.get(task, ()):
        known = ", ".join(TASK_METRICS.get(task, ()))
        raise BadInputError(
            f"mlwizard.toml [discovery] metric '{metric}' is not computed for a {task} task "
            f"(known: {known})"
        )


def evaluate(
    task: str,
    y: np.ndarray,
    prediction: np.ndarray,
    n_classes: int = 0,
    threshold: float | None = None,
) -> Scores:
    """Scores for class probabilities [N, C] (classifiers) or values [N] (regression).

    `threshold` (binary): predict the positive class (id 1) when its probability reaches it;
    otherwise the most probable class.
    """
    scorers = _scorers(task, y, prediction, n_classes, threshold)
    return _clean({name: scorer() for name, scorer in scorers.items()})


def score(
    task: str,
    y: np.ndarray,
    prediction: np.ndarray,
    n_classes: int,
    metric: str,
    threshold: float | None = None,
) -> float | None:
    """`evaluate(...)[metric]`, the same value, without computing the other metrics: the
    searches' fold scores, the ensemble's weight selection and permutation importance ask for
    one metric hundreds of times (all eleven of a binary task cost ~10 ms on 3,000 rows)."""
    scorer = _scorers(task, y, prediction, n_classes, threshold).get(metric)
    return None if scorer is None else _clean({metric: scorer()})[metric]


def normalized(proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)  # float32 ONNX rows sum to 1 ± 1e-7 only


def predicted_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.argmax(proba, axis=1)


Scorer = Callable[[], Any]


def _scorers(
    task: str, y: np.ndarray, prediction: np.ndarray, n_classes: int, threshold: float | None
) -> dict[str, Scorer]:
    """Each metric of the task as a call, in the order `evaluate` reports them."""
    if task == "regression":
        return _regression(y, prediction)
    return _classification(y, prediction, n_classes, threshold)


def _classification(
    y: np.ndarray, proba: np.ndarray, n_classes: int, threshold: float | None
) -> dict[str, Scorer]:
    from sklearn import metrics as skm  # lazy: the parent plans without scikit-learn

    labels = np.arange(n_classes)
    proba = normalized(proba)
    predicted = predicted_labels(proba, threshold)
    present = len(np.unique(y))

    def brier() -> float:
        if n_classes == 2:
            return float(skm.brier_score_loss(y, proba[:, 1], pos_label=1))
        # Multiclass Brier: mean over rows of the squared distance to the one-hot truth.
        return float(np.mean(np.sum((proba - np.eye(n_classes)[y]) ** 2, axis=1)))

    scorers: dict[str, Scorer] = {
        "accuracy": lambda: skm.accuracy_score(y, predicted),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, predicted),
        "f1_macro": lambda: skm.f1_score(
            y, predicted, labels=labels, average="macro", zero_division=0
        ),
        "log_loss": lambda: skm.log_loss(y, proba, labels=labels),
        "brier": brier,
    }
    if n_classes == 2:
        both = present == 2

        @functools.cache  # reported twice, as average_precision and as pr_auc
        def average_precision() -> Any:
            return skm.average_precision_score(y, proba[:, 1]) if both else None

        scorers |= {
            "roc_auc": lambda: skm.roc_auc_score(y, proba[:, 1]) if both else None,
            "average_precision": average_precision,
            "pr_auc": average_precision,
            "precision": lambda: skm.precision_score(y, predicted, pos_label=1, zero_division=0),
            "recall": lambda: skm.recall_score(y, predicted, pos_label=1, zero_division=0),
            "f1": lambda: skm.f1_score(y, predicted, pos_label=1, zero_division=0),
        }
        return scorers

    def averaged(fn: Callable[..., Any], average: str) -> Scorer:
        return lambda: fn(y, predicted, labels=labels, average=average, zero_division=0)

    def roc_auc() -> Any:  # one-vs-rest AUC is undefined for a class absent from y
        if present < n_classes:
            return None
        return skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels)

    scorers |= {
        "precision_macro": averaged(skm.precision_score, "macro"),
        "recall_macro": averaged(skm.recall_score, "macro"),
        "f1_weighted": averaged(skm.f1_score, "weighted"),
        "roc_auc": roc_auc,
    }
    return scorers


def _regression(y: np.ndarray, predicted: np.ndarray) -> dict[str, Scorer]:
    from sklearn import metrics as skm

    predicted = np.asarray(predicted, dtype=np.float64).ravel()

    def mape() -> float | None:
        nonzero = np.abs(y) >= MAPE_FLOOR
        if not nonzero.any():
            return None
        return float(np.mean(np.abs((y[nonzero] - predicted[nonzero]) / y[nonzero])))

    return {
        "r2": lambda: skm.r2_score(y, predicted) if len(y) > 1 else None,
        "rmse": lambda: skm.root_mean_squared_error(y, predicted),
        "mae": lambda: skm.mean_absolute_error(y, predicted),
        "mape": mape,
    }


def details(
    task: str,
    y: np.ndarray,
    prediction: np.ndarray,
    n_classes: int = 0,
    threshold: float | None = None,
    classes: list[Any] | None = None,
) -> dict[str, Any]:
    """The confusion matrix and reliability curve (classifiers) or residuals (regression)."""
    from sklearn import metrics as skm

    if task == "regression":
        return {"residuals": residuals(y, prediction)}
    proba = normalized(prediction)
    predicted = predicted_labels(proba, threshold)
    matrix = skm.confusion_matrix(y, predicted, labels=np.arange(n_classes))
    names = [str(c) for c in classes] if classes else [str(i) for i in range(n_classes)]
    return {
        "confusion_matrix": {
            "labels": names,
            "rows": "true class",
            "columns": "predicted class",
            "matrix": matrix.tolist(),
        },
        "calibration": calibration(y, proba),
    }


def calibration(y: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability curve: binary on the positive class, multiclass on the top-class confidence."""
    if proba.shape[1] == 2:
        confidence, hit = proba[:, 1], (y == 1).astype(np.float64)
        what = "probability of the positive class vs share of positive rows"
    else:
        confidence = proba.max(axis=1)
        hit = (np.argmax(proba, axis=1) == y).astype(np.float64)
        what = "confidence of the predicted class vs share predicted correctly"
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    curve: list[dict[str, Any]] = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        curve.append(
            {
                "lower": round(float(edges[b]), 4),
                "upper": round(float(edges[b + 1]), 4),
                "count": count,
                "mean_predicted": _round(confidence[mask].mean()) if count else None,
                "observed": _round(hit[mask].mean()) if count else None,
            }
        )
    counts = np.array([c["count"] for c in curve])
    gaps = [abs(c["mean_predicted"] - c["observed"]) for c in curve if c["count"]]
    ece = float(np.sum(counts[counts > 0] * np.array(gaps)) / max(1, counts.sum()))
    return {"what": what, "bins": curve, "expected_calibration_error": _round(ece)}


def residuals(y: np.ndarray, predicted: np.ndarray, bins: int = RESIDUAL_BINS) -> dict[str, Any]:
    """Distribution of y - prediction: quantiles and a histogram."""
    error = y - np.asarray(predicted, dtype=np.float64).ravel()
    if len(error) == 0:
        return {"rows": 0}
    quantiles = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    counts, edges = np.histogram(error, bins=bins)
    return {
        "rows": len(error),
        "mean": _round(error.mean()),
        "std": _round(error.std()),
        "quantiles": {f"p{round(q * 100)}": _round(np.quantile(error, q)) for q in quantiles},
        "histogram": {"edges": [_round(e) for e in edges], "counts": counts.tolist()},
        "mape_rows_left_out": int(np.sum(np.abs(y) < MAPE_FLOOR)),
    }


def is_better(score: float | None, than: float | None, direction: Direction) -> bool:
    """Whether `score` strictly beats `than`; an undefined score beats nothing."""
    if score is None:
        return False
    if than is None:
        return True
    return score > than if direction == "maximize" else score < than


def reaches(score: float | None, threshold: float, direction: Direction) -> bool:
    """Whether `score` meets the threshold (equal counts)."""
    if score is None:
        return False
    return score >= threshold if direction == "maximize" else score <= threshold


def _round(value: Any, digits: int = 6) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _clean(scores: Scores) -> Scores:
    """Plain floats for JSON; NaN or infinite values become None."""
    out: Scores = {}
    for name, value in scores.items():
        out[name] = float(value) if value is not None and math.isfinite(value) else None
    return out
