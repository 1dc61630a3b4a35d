"""Parity: does the exported model predict what the native pipeline predicts? One home for the
tolerances and the record, used by the model phase (every candidate, every split) and by deploy
(the generated service on the test split).

Parity depends on which rows are checked (a tree threshold rounded to float32 can flip only the
rows that sit on it), so a model is checked on every split's features (no labels are read, so
this is no leak), on edge rows at both sides of each tree threshold (`trees.edge_rows`) and on
rows holding each category of a target-encoded input and one never seen
(`target_encoding.category_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwizard.core.contract.schema import Schema

if TYPE_CHECKING:  # deploy imports this module; scikit-learn and pandas load when a check runs
    import pandas as pd
    from sklearn.pipeline import Pipeline

PROBA_TOLERANCE = 1e-4  # absolute, on class probabilities
REGRESSION_TOLERANCE = 1e-4  # relative: allowed diff = tol * (1 + max |prediction|)
MAX_ROWS_PER_SPLIT = 20_000  # enough to catch a bad conversion; bounded time on big splits


@dataclass(frozen=True)
class Parity:
    """How closely the exported model reproduces the native pipeline on some rows."""

    rows: int
    max_abs_diff: float  # over class probabilities, or regression values
    tolerance: float
    label_agreement: float | None = None  # classifiers: share of rows with the same label
    splits: dict[str, float | None] = field(default_factory=dict)  # max diff per rows checked

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.max_abs_diff <= self.tolerance  # False for NaN

    @property
    def worst_split(self) -> str:
        known = {k: v for k, v in self.splits.items() if v is not None}
        return max(known, key=lambda k: known[k]) if known else ""

    @property
    def reason(self) -> str:
        if self.ok:
            return ""
        if self.rows == 0:
            return "parity not checked: no rows"
        where = f" (worst on {self.worst_split} rows)" if len(self.splits) > 1 else ""
        return (
            f"ONNX output differs from the pipeline by {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:.3g}) on {self.rows} rows{where}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: non-finite differences become None."""
        return {
            "rows": self.rows,
            "max_abs_diff": _finite(self.max_abs_diff),
            "tolerance": self.tolerance,
            "label_agreement": self.label_agreement,
            "ok": self.ok,
            "splits": dict(self.splits),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def compare_probabilities(
    native: np.ndarray, exported: np.ndarray, same_labels: np.ndarray | None = None
) -> Parity:
    """Class probabilities [N, C] side by side; `same_labels`: per row, whether labels agree."""
    rows = len(native)
    if rows == 0:
        return Parity(0, float("nan"), PROBA_TOLERANCE)
    agreement = float(np.mean(same_labels)) if same_labels is not None else None
    diff = _max_diff(np.asarray(native, np.float64), np.asarray(exported, np.float64))
    return Parity(rows, diff, PROBA_TOLERANCE, agreement)


def compare_values(native: np.ndarray, exported: np.ndarray) -> Parity:
    """Regression values [N] side by side; the tolerance scales with the values' size."""
    native = np.asarray(native, dtype=np.float64).ravel()
    if native.size == 0:
        return Parity(0, float("nan"), REGRESSION_TOLERANCE)
    tolerance = REGRESSION_TOLERANCE * (1.0 + float(np.max(np.abs(native))))
    diff = _max_diff(native, np.asarray(exported, dtype=np.float64).ravel())
    return Parity(len(native), diff, tolerance)


def merge(parts: dict[str, Parity]) -> Parity:
    """One record over several sets of rows: the worst difference against the tightest
    tolerance, labels agreement weighted by rows, each set's own difference kept."""
    checked = {name: p for name, p in parts.items() if p.rows}
    if not checked:
        tolerance = min((p.tolerance for p in parts.values()), default=PROBA_TOLERANCE)
        return Parity(0, float("nan"), tolerance, splits={n: None for n in parts})
    rows = sum(p.rows for p in checked.values())
    agreements = [(p.label_agreement, p.rows) for p in checked.values()]
    agreement = (
        sum(a * n for a, n in agreements if a is not None) / rows
        if all(a is not None for a, _ in agreements)
        else None
    )
    return Parity(
        rows,
        max(p.max_abs_diff for p in checked.values()),
        min(p.tolerance for p in checked.values()),
        agreement,
        splits={name: _finite(p.max_abs_diff) for name, p in checked.items()},
    )


def check_parity(
    pipeline: Pipeline, model: bytes | Path, frame: pd.DataFrame, schema: Schema
) -> Parity:
    """Compare the native pipeline's predictions with the ONNX model's on `frame`."""
    from sklearn.base import is_classifier

    from mlwizard.core.export.onnx_export import make_session, predict_onnx

    if len(frame) == 0:
        tolerance = PROBA_TOLERANCE if is_classifier(pipeline) else REGRESSION_TOLERANCE
        return Parity(0, float("nan"), tolerance)
    outputs = predict_onnx(make_session(model), frame, schema)
    if not is_classifier(pipeline):
        return compare_values(pipeline.predict(frame), outputs["variable"])
    labels = np.asarray(outputs["label"]).ravel()
    native_labels = np.asarray(pipeline.predict(frame)).ravel()  # CatBoost's is [N, 1]
    same = labels == native_labels if labels.shape == native_labels.shape else None
    return compare_probabilities(pipeline.predict_proba(frame), outputs["probabilities"], same)


def check_export(
    pipeline: Pipeline, model: bytes | Path, frames: dict[str, pd.DataFrame], schema: Schema
) -> Parity:
    """Parity on each named set of `feature_frame` rows, on the trees' edge rows and on the
    target encodings' category rows.

    Each set is capped at MAX_ROWS_PER_SPLIT rows (its first rows: deterministic).
    """
    from mlwizard.core.export import target_encoding, trees

    parts = {
        name: check_parity(pipeline, model, frame.head(MAX_ROWS_PER_SPLIT), schema)
        for name, frame in frames.items()
    }
    base = next((f for f in frames.values() if len(f)), None)
    if base is not None:
        edges = trees.edge_rows(pipeline, schema, base.head(256))
        if len(edges):
            parts["edges"] = check_parity(pipeline, model, edges, schema)
        categories = target_encoding.category_rows(pipeline, schema, base.head(256))
        if len(categories):
            parts["categories"] = check_parity(pipeline, model, categories, schema)
    return merge(parts)
