"""Task inference and the metric each task is judged by."""

from __future__ import annotations

from typing import Literal

from mlwizard.core.contract.schema import TaskKind
from mlwizard.core.kernel.errors import BadInputError

Direction = Literal["maximize", "minimize"]

# Fewer labelled rows than this cannot be split into train, validation and test.
MIN_TARGET_ROWS = 10
# Integer targets with at most this many distinct values are treated as classes.
MAX_INTEGER_CLASSES = 20

METRICS: dict[TaskKind, dict[str, Direction]] = {
    "binary": {
        "roc_auc": "maximize",
        "accuracy": "maximize",
        "balanced_accuracy": "maximize",
        "f1": "maximize",
        "log_loss": "minimize",
    },
    "multiclass": {
        "f1_macro": "maximize",
        "accuracy": "maximize",
        "balanced_accuracy": "maximize",
        "log_loss": "minimize",
    },
    "regression": {"r2": "maximize", "rmse": "minimize", "mae": "minimize"},
    # Clustering is judged without labels, on a validation sample; anomaly detection against a
    # held-back rare label when there is one (no label: the metric is "none").
    "clustering": {
        "silhouette": "maximize",
        "davies_bouldin": "minimize",
        "calinski_harabasz": "maximize",
    },
    "anomaly": {"roc_auc": "maximize", "average_precision": "maximize", "none": "maximize"},
}
DEFAULT_METRIC: dict[TaskKind, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "regression": "r2",
    "clustering": "silhouette",
    "anomaly": "roc_auc",
}


def infer_task(numeric: bool, integer: bool, distinct: int) -> TaskKind:
    if distinct == 2:
        return "binary"
    if not numeric or (integer and distinct <= MAX_INTEGER_CLASSES):
        return "multiclass"
    return "regression"


def choose_metric(task: TaskKind, requested: str) -> tuple[str, Direction]:
    if requested == "auto":
        requested = DEFAULT_METRIC[task]
    if requested not in METRICS[task]:
        allowed = ", ".join(METRICS[task])
        raise BadInputError(
            f"mlwizard.toml [discovery] metric '{requested}' does not fit a {task} task "
            f"(choose one of: {allowed})"
        )
    return requested, METRICS[task][requested]


# The model families each unsupervised task tries (mlwizard.core.model.unsupervised).
UNSUPERVISED_CANDIDATES: dict[str, tuple[str, ...]] = {
    "clustering": ("kmeans", "minibatch_kmeans", "gaussian_mixture"),
    "anomaly": ("isolation_forest", "robust_distance"),
}
