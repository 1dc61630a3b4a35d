"""Score rows with a registered bundle's own predictor, and judge its metrics with a bootstrap.

Rows are scored by the `predictor.py` inside the bundle (what the service runs), so monitoring
and the champion/challenger gate see the predictions production sees. Metrics come from the model
phase's `metrics.evaluate`; the bootstrap gives each one an interval, so "worse" and "better"
mean "beyond what resampling the same rows gives".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mlwizard.core.contract.schema import Schema
from mlwizard.core.model.metrics import score as metric_score

BOOTSTRAP_REPS = 300
BOOTSTRAP_MAX_ROWS = 5000  # a larger sample is subsampled (once, seeded) before resampling
CONFIDENCE = 0.95
MIN_SLICE_ROWS = 30
MAX_SLICES = 5  # per feature: its most frequent reference categories
PREDICTION_BINS = [i / 10 for i in range(1, 10)]


@dataclass
class Scored:
    """Predictions of one model on some rows, with their labels and slice columns if known."""

    prediction: list[Any] = field(default_factory=list)
    proba: np.ndarray | None = None  # [N, C], classifiers
    labels: list[Any] | None = None
    slices: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prediction)


def score_batches(
    batches: Iterable[pa.RecordBatch],
    schema: Schema,
    predictor: Any,
    label_column: str | None = None,
    slice_columns: Iterable[str] = (),
) -> Scored:
    """Score batches whose columns are the features (as training saw them), plus the labels."""
    slice_names = list(slice_columns)
    scored = Scored(labels=[] if label_column else None, slices={n: [] for n in slice_names})
    probas: list[np.ndarray] = []
    for batch in batches:
        names = batch.schema.names
        columns: dict[str, Any] = {}
        numeric = {f.name for f in schema.numeric} | {
            n for n, k in schema.raw_inputs.items() if k == "number"
        }
        for name in schema.request_columns:  # raw: the predictor derives what features.py does
            if name not in names and name in schema.raw_inputs:
                continue  # a raw column only features.py reads, which these rows lack
            column = batch.column(names.index(name))
            if name in numeric:
                columns[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                columns[name] = column.to_pylist()
        result = predictor.predict_columns(columns)
        scored.prediction += list(result["prediction"])
        if result["proba"] is not None:
            probas.append(np.asarray(result["proba"], dtype=np.float64))
        if label_column and scored.labels is not None:
            scored.labels += batch.column(names.index(label_column)).to_pylist()
        for name in slice_names:
            scored.slices[name] += batch.column(names.index(name)).to_pylist()
    if probas:
        scored.proba = np.concatenate(probas)
    return scored


def prediction_bins(scored: Scored, schema: Schema) -> dict[str, Any]:
    """The bins of the prediction distribution: classes (cluster ids, anomaly flags), or deciles
    of predicted values."""
    if schema.task == "clustering":
        ids = sorted({str(v) for v in scored.prediction}, key=lambda v: (len(v), v))
        return {"kind": "categorical", "values": ids}
    if schema.task == "anomaly":
        return {"kind": "categorical", "values": ["False", "True"]}
    if schema.task != "regression":
        return {"kind": "categorical", "values": [str(c) for c in schema.classes or []]}
    values = np.asarray(scored.prediction, dtype=np.float64)
    values = values[np.isfinite(values)]
    edges = sorted(set(np.quantile(values, PREDICTION_BINS).tolist())) if values.size else []
    return {"kind": "numeric", "edges": edges}


def prediction_counts(scored: Scored, spec: dict[str, Any]) -> dict[str, int]:
    if spec["kind"] == "categorical":
        counts = dict.fromkeys(spec["values"], 0)
        for label in scored.prediction:
            key = str(label)
            counts[key if key in counts else "other"] = counts.get(key, 0) + 1
        return counts
    values = np.asarray(scored.prediction, dtype=np.float64)
    index = np.searchsorted(np.asarray(spec["edges"]), values, side="left")
    return {f"bin {i}": int(np.sum(index == i)) for i in range(len(spec["edges"]) + 1)}


def targets(labels: list[Any], schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Encoded labels (class ids, or float values) and the mask of rows that have a usable one."""
    if schema.task == "regression":
        y = np.array([np.nan if v is None else float(v) for v in labels], dtype=np.float64)
        return y, np.isfinite(y)
    lookup = {str(c): i for i, c in enumerate(schema.classes or [])}
    ids = np.array([lookup.get(str(v), -1) if v is not None else -1 for v in labels])
    return ids.astype(np.int64), ids >= 0


def model_output(scored: Scored, schema: Schema) -> np.ndarray:
    if schema.task == "regression":
        return np.asarray(scored.prediction, dtype=np.float64)
    assert scored.proba is not None
    return scored.proba


def metric_value(
    schema: Schema, metric: str, y: np.ndarray, output: np.ndarray, threshold: float | None
) -> float | None:
    """One metric, as `metrics.evaluate` defines it; the common ones without computing the rest
    (the bootstrap calls this hundreds of times)."""
    if len(y) == 0:
        return None
    fast = _fast_metric(schema, metric, y, output, threshold)
    if not isinstance(fast, _Slow):
        return fast
    n_classes = len(schema.classes or [])
    return metric_score(schema.task, y, output, n_classes, metric, threshold)


class _Slow:
    """`_fast_metric`'s answer for a metric it has no shortcut for."""


_SLOW = _Slow()


def binary_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC as the Mann–Whitney statistic on average ranks (ties count half), equal to
    scikit-learn's `roc_auc_score` and many times faster for the bootstrap's small samples."""
    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2
    ranks = average_rank[inverse]
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _fast_metric(
    schema: Schema, metric: str, y: np.ndarray, output: np.ndarray, threshold: float | None
) -> float | _Slow | None:
    from sklearn import metrics as skm

    if schema.task == "regression":
        if metric == "r2":
            return float(skm.r2_score(y, output)) if len(y) > 1 else None
        if metric == "rmse":
            return float(np.sqrt(np.mean((y - output) ** 2)))
        if metric == "mae":
            return float(np.mean(np.abs(y - output)))
        return _SLOW
    proba = output / output.sum(axis=1, keepdims=True)
    if metric == "roc_auc" and schema.task == "binary":
        return binary_auc(y, proba[:, 1])
    if metric in ("accuracy", "balanced_accuracy", "f1_macro", "f1"):
        if threshold is not None and proba.shape[1] == 2:
            predicted = (proba[:, 1] >= threshold).astype(np.int64)
        else:
            predicted = np.argmax(proba, axis=1)
        if metric == "accuracy":
            return float(np.mean(predicted == y))
        if metric == "balanced_accuracy":
            return float(skm.balanced_accuracy_score(y, predicted))
        labels = np.arange(proba.shape[1])
        if metric == "f1_macro":
            return float(
                skm.f1_score(y, predicted, labels=labels, average="macro", zero_division=0)
            )
        return float(skm.f1_score(y, predicted, pos_label=1, zero_division=0))
    return _SLOW


def bootstrap_interval(
    schema: Schema,
    metric: str,
    y: np.ndarray,
    output: np.ndarray,
    threshold: float | None,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """The CONFIDENCE interval of the metric over bootstrap resamples of the rows."""
    rng = np.random.default_rng(seed)
    y, output = _capped(y, output, rng)
    values = []
    for _ in range(BOOTSTRAP_REPS):
        index = rng.integers(0, len(y), len(y))
        value = metric_value(schema, metric, y[index], output[index], threshold)
        if value is not None:
            values.append(value)
    if len(values) < BOOTSTRAP_REPS // 2:
        return None, None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _capped(y: np.ndarray, output: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any]:
    if len(y) <= BOOTSTRAP_MAX_ROWS:
        return y, output
    keep = rng.choice(len(y), BOOTSTRAP_MAX_ROWS, replace=False)
    return y[keep], output[keep]


def metrics_by_slice(
    scored: Scored,
    schema: Schema,
    metric: str,
    threshold: float | None,
    slice_values: dict[str, list[str]],
    *,
    intervals: bool = False,
) -> dict[str, Any]:
    """The metric overall and per slice (feature = category), with rows and, if asked, intervals."""
    assert scored.labels is not None
    y, usable = targets(scored.labels, schema)
    output = model_output(scored, schema)

    def one(mask: np.ndarray) -> dict[str, Any]:
        rows = int(mask.sum())
        entry: dict[str, Any] = {"rows": rows, "value": None}
        if rows < MIN_SLICE_ROWS:
            return entry
        entry["value"] = metric_value(schema, metric, y[mask], output[mask], threshold)
        if intervals:
            entry["interval"] = bootstrap_interval(schema, metric, y[mask], output[mask], threshold)
        return entry

    result: dict[str, Any] = {
        "metric": metric,
        "labelled_rows": int(usable.sum()),
        "unlabelled_rows": int((~usable).sum()),
        "overall": one(usable),
        "slices": {},
    }
    for name, values in slice_values.items():
        column = np.array(
            [None if v is None else str(v) for v in scored.slices[name]], dtype=object
        )
        per_value = {}
        for value in values[:MAX_SLICES]:
            entry = one(usable & (column == value))
            if entry["rows"] >= MIN_SLICE_ROWS:
                per_value[value] = entry
        if per_value:
            result["slices"][name] = per_value
    return result
