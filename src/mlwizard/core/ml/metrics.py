"""Evaluation metrics per task, and how to compare two scores of one metric."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

from mlwizard.core.errors import BadInputError
from mlwizard.core.tasks import Direction

Scores = dict[str, float | None]  # None: undefined on this data (e.g. AUC with one class present)

# What `evaluate` reports per task: a superset of what discovery may choose (`tasks.METRICS`).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "roc_auc",
        "average_precision",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "f1_macro",
        "log_loss",
    ),
    "multiclass": (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "log_loss",
        "roc_auc",
    ),
    "regression": ("r2", "rmse", "mae"),
}


def check_metric(task: str, metric: str) -> None:
    if metric not in TASK_METRICS.get(task, ()):
        known = ", ".join(TASK_METRICS.get(task, ()))
        raise BadInputError(
            f"mlwizard.toml [discovery] metric '{metric}' is not computed for a {task} task "
            f"(known: {known})"
        )


def evaluate(task: str, y: np.ndarray, prediction: np.ndarray, n_classes: int = 0) -> Scores:
    """Scores for class probabilities [N, C] (classifiers) or values [N] (regression)."""
    if task == "regression":
        return regression(y, prediction)
    return classification(y, prediction, n_classes)


def classification(y: np.ndarray, proba: np.ndarray, n_classes: int) -> Scores:
    labels = np.arange(n_classes)
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 ONNX rows sum to 1 ± 1e-7 only
    predicted = np.argmax(proba, axis=1)
    present = np.unique(y)
    scores: Scores = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "f1_macro": skm.f1_score(y, predicted, labels=labels, average="macro", zero_division=0),
        "log_loss": skm.log_loss(y, proba, labels=labels),
    }
    if n_classes == 2:
        both = len(present) == 2
        scores["roc_auc"] = skm.roc_auc_score(y, proba[:, 1]) if both else None
        scores["average_precision"] = skm.average_precision_score(y, proba[:, 1]) if both else None
        scores["f1"] = skm.f1_score(y, predicted, pos_label=1, zero_division=0)
    else:
        scores["f1_weighted"] = skm.f1_score(
            y, predicted, labels=labels, average="weighted", zero_division=0
        )
        # One-vs-rest AUC is undefined for a class absent from y.
        all_present = len(present) == n_classes
        scores["roc_auc"] = (
            skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels) if all_present else None
        )
    return _clean(scores)


def regression(y: np.ndarray, predicted: np.ndarray) -> Scores:
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    return _clean(
        {
            "r2": skm.r2_score(y, predicted) if len(y) > 1 else None,
            "rmse": skm.root_mean_squared_error(y, predicted),
            "mae": skm.mean_absolute_error(y, predicted),
        }
    )


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


def _clean(scores: Scores) -> Scores:
    """Plain floats for JSON; NaN or infinite values become None."""
    out: Scores = {}
    for name, value in scores.items():
        out[name] = float(value) if value is not None and math.isfinite(value) else None
    return out
