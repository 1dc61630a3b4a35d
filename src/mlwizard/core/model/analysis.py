"""Error analysis of the chosen model on validation rows: where it errs most, which features it
leans on, the worst rows, and whether its score is too good to be true.

Row error: 1 - the probability given to the true class (classifiers), |y - prediction|
(regression). A slice (one categorical value, one numeric quantile bin, or missing) is reported
when it has at least `min_slice_rows` rows, ranked by how far its mean error exceeds the overall
mean. Permutation importance shuffles one original input column at a time through the native
pipeline, so importances name the user's columns, not one-hot or encoded columns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.model.metrics import predicted_labels
from mlwizard.core.model.metrics import score as metric_score

NUMERIC_BINS = 5
TOP_SLICES = 10
WORST_ROWS = 50
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_SAFETY = 2.0  # the timed pass underestimates: per-call overheads, a busy machine
# At or above these validation scores a model is more likely to see the answer than to predict it.
TOO_GOOD = {
    "roc_auc": 0.995,
    "accuracy": 0.995,
    "balanced_accuracy": 0.995,
    "f1": 0.995,
    "f1_macro": 0.995,
    "r2": 0.995,
}


def min_slice_rows(rows: int) -> int:
    return max(10, math.ceil(0.02 * rows))


def row_errors(task: str, y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    if task == "regression":
        return np.abs(y - np.asarray(prediction, dtype=np.float64).ravel())
    proba = np.asarray(prediction, dtype=np.float64)
    return 1.0 - proba[np.arange(len(y)), y]


def worst_slices(
    table: pd.DataFrame,
    schema: Schema,
    errors: np.ndarray,
    min_rows: int,
    deadline: float = float("inf"),
) -> list[dict[str, Any]]:
    """Slices whose mean error exceeds the overall mean most, with their row counts.

    Features are examined in schema order until `deadline` (time.monotonic()).
    """
    overall = float(errors.mean()) if len(errors) else 0.0
    found: list[dict[str, Any]] = []
    for feature in schema.features:
        if time.monotonic() >= deadline:
            break
        column = table[feature.name]
        for label, mask in _slices(column, feature.kind):
            count = int(mask.sum())
            if count < min_rows or count == len(errors):
                continue
            mean = float(errors[mask].mean())
            found.append(
                {
                    "feature": feature.name,
                    "slice": label,
                    "rows": count,
                    "mean_error": round(mean, 6),
                    "overall_mean_error": round(overall, 6),
                    "excess": round(mean - overall, 6),
                    "ratio": round(mean / overall, 3) if overall > 0 else None,
                }
            )
    found.sort(key=lambda s: (-s["excess"], s["feature"], s["slice"]))
    return [s for s in found if s["excess"] > 0][:TOP_SLICES]


def _slices(column: pd.Series, kind: str) -> list[tuple[str, np.ndarray]]:
    missing = column.isna().to_numpy()
    out: list[tuple[str, np.ndarray]] = []
    if kind == "text":  # free text has no slices worth naming
        return []
    if kind in ("numeric", "datetime"):
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        present = values.dropna()
        if present.nunique() > 1:
            bins = pd.qcut(present, NUMERIC_BINS, duplicates="drop")
            for interval in bins.cat.categories:
                mask = np.zeros(len(column), dtype=bool)
                mask[np.flatnonzero(~missing)[np.asarray(bins == interval)]] = True
                out.append((f"[{interval.left:.4g}, {interval.right:.4g}]", mask))
    else:
        text = column.astype(object).where(~missing, None)
        for value in pd.unique(text[~missing]):
            out.append((str(value), (text == value).to_numpy()))
    if missing.any():
        out.append(("missing", missing))
    return out


def worst_rows(
    table: pd.DataFrame,
    schema: Schema,
    prediction: np.ndarray,
    errors: np.ndarray,
    threshold: float | None,
) -> pd.DataFrame:
    """The rows with the largest error: original columns, target, prediction, error."""
    order = np.argsort(-errors, kind="stable")[:WORST_ROWS]
    columns = [schema.target, *(f.name for f in schema.features)]
    rows = table.iloc[order][columns].reset_index(drop=True)
    if schema.task == "regression":
        rows["prediction"] = np.asarray(prediction, dtype=np.float64).ravel()[order]
    else:
        proba = np.asarray(prediction, dtype=np.float64)
        labels = predicted_labels(proba, threshold)[order]
        classes = list(schema.classes or [])
        rows["prediction"] = pd.Series([classes[i] for i in labels], dtype=object)
        rows["prediction_probability"] = proba[order, labels]
    rows["error"] = errors[order]
    # Parquet needs one type per column: mixed object columns are written as text.
    for name in rows.columns:
        if rows[name].dtype == object:
            rows[name] = rows[name].map(lambda v: None if v is None else str(v))
    return rows


def permutation_importance(
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: np.ndarray,
    schema: Schema,
    *,
    metric: str,
    direction: Direction,
    seed: int,
    deadline: float,
    predict: Callable[[Pipeline, pd.DataFrame], np.ndarray],
) -> dict[str, Any]:
    """Mean drop in the metric when one input column is shuffled, on a seeded row sample.

    One column at a time, so the clock is checked between columns: the sample shrinks to what a
    timed scoring pass says fits before `deadline`, and columns not reached are listed as such.
    """
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    n_classes = len(schema.classes or [])
    if len(x) > IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(x), IMPORTANCE_ROWS, replace=False)
        keep.sort()
        x, y = x.iloc[keep], y[keep]
    sign = 1.0 if direction == "maximize" else -1.0

    def score(features: pd.DataFrame, truth: np.ndarray) -> float:
        value = metric_score(schema.task, truth, predict(pipeline, features), n_classes, metric)
        return sign * value if value is not None else float("nan")

    def per_column() -> float:
        """Seconds one column is expected to take, from a timed scoring pass."""
        start = time.monotonic()
        score(x, y)
        return (time.monotonic() - start) * (IMPORTANCE_REPEATS + 1) * IMPORTANCE_SAFETY

    expected = per_column()
    needed = expected * len(schema.features)
    available = deadline - time.monotonic()
    if needed > available:
        rows = int(len(x) * available / max(needed, 1e-9))
        if rows < IMPORTANCE_MIN_ROWS:
            return {"skipped": f"time budget: about {needed:.1f}s needed", "rows": len(x)}
        x, y = x.iloc[:rows], y[:rows]
        expected = per_column()  # fixed costs per call do not shrink with the rows

    found: list[dict[str, Any]] = []
    not_reached: list[str] = []
    for feature in schema.features:
        if time.monotonic() + expected > deadline:
            not_reached.append(feature.name)
            continue

        def shuffled(_: Any, part: pd.DataFrame, truth: np.ndarray, column=feature.input) -> float:
            full = x.copy()
            full[column] = part[column].to_numpy()
            return score(full, truth)

        result = sk_permutation_importance(
            pipeline,
            x[[feature.input]],
            y,
            scoring=shuffled,
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
        )
        found.append(
            {
                "feature": feature.name,
                "importance": round(float(result.importances_mean[0]), 6),
                "std": round(float(result.importances_std[0]), 6),
            }
        )
    found.sort(key=lambda f: (-f["importance"], f["feature"]))
    report: dict[str, Any] = {
        "metric": metric,
        "rows": len(x),
        "repeats": IMPORTANCE_REPEATS,
        "what": f"mean drop in validation {metric} when the column is shuffled",
        "features": found,
    }
    if not_reached:
        report["not_reached"] = {"reason": "time budget", "features": not_reached}
    return report


def too_good(scores: dict[str, float | None], metric: str, audit: str) -> list[str]:
    """A warning when a validation score looks too good to be true (the discovery metric first)."""
    for name in dict.fromkeys([metric, *TOO_GOOD]):
        value, limit = scores.get(name), TOO_GOOD.get(name)
        if value is not None and limit is not None and value >= limit:
            return [
                f"validation {name} is {value:.4f}, which looks too good to be true: unless the "
                f"task is this easy, a feature may leak the target. Check the data phase's "
                f"leakage audit ({audit}) and list a leaking column under exclude in the data "
                "section of mlwizard.toml"
            ]
    return []
