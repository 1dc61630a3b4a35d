"""Tree thresholds where the ONNX graph compares them, and the rows that test them.

An ONNX tree ensemble compares float32 inputs with float32 thresholds; scikit-learn compares
float32 inputs (`feature_frame` casts numerics) with float64 thresholds. Rounding a threshold to
the nearest float32 can move it onto an input value, which then goes the other way: on
load_wine a HistGradientBoosting model matched on validation rows and differed by 0.0016 on test
rows. `align_thresholds` replaces every threshold t with the largest float32 <= t. For a float32
input x, `x <= t` and `x <= that float32` are the same test, so the native model predicts
exactly as before, and the graph's float32 threshold is now exact.

`edge_rows` builds inputs at both sides of every threshold (t and the next float32 up), the
values where a rounding mismatch would show, for the parity check.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.schema import Schema

MAX_EDGE_ROWS = 4096
NUMERIC_PREFIX = "numeric__"  # ColumnTransformer output names of the numeric block (candidates)


def _floor32(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value (NaN and inf unchanged), as float64."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def _tree_nodes(model: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(feature index, threshold view, split mask) per tree of a supported model."""
    nodes = []
    for predictors in getattr(model, "_predictors", None) or []:  # HistGradientBoosting
        for predictor in predictors:
            n = predictor.nodes
            split = ~n["is_leaf"].astype(bool)
            if "is_categorical" in n.dtype.names:
                split &= ~n["is_categorical"].astype(bool)
            nodes.append((n["feature_idx"], n["num_threshold"], split))
    for estimator in getattr(model, "estimators_", None) or []:  # forests
        tree = getattr(estimator, "tree_", None)
        if tree is not None:
            nodes.append((tree.feature, tree.threshold, tree.feature >= 0))
    return nodes


def _pipelines(pipeline: Any) -> list[Any]:
    """The pipelines inside `pipeline` that end in a tree model (itself, or a voting's members)."""
    model = pipeline.steps[-1][1]
    members = getattr(model, "estimators_", None)
    if members and all(hasattr(m, "steps") for m in members):
        return [p for member in members for p in _pipelines(member)]
    return [pipeline]


def align_thresholds(pipeline: Any) -> Any:
    """Snap every tree threshold to float32 in place (see the module's docstring); idempotent.

    Returns `pipeline`. Models without scikit-learn trees (linear, CatBoost, whose borders are
    float32 already) are left as they are.
    """
    for inner in _pipelines(pipeline):
        for _feature, threshold, split in _tree_nodes(inner.steps[-1][1]):
            threshold[split] = _floor32(np.asarray(threshold[split], dtype=np.float64))
    return pipeline


def thresholds_by_input(pipeline: Any) -> dict[str, np.ndarray]:
    """The numeric inputs' split thresholds (sorted, unique), by `Feature.input` name."""
    found: dict[str, list[np.ndarray]] = defaultdict(list)
    for inner in _pipelines(pipeline):
        try:
            names = list(inner[:-1].get_feature_names_out())
        except (AttributeError, ValueError, IndexError):
            continue
        for feature, threshold, split in _tree_nodes(inner.steps[-1][1]):
            index = np.asarray(feature)[split].astype(np.int64)
            values = np.asarray(threshold, dtype=np.float64)[split]
            for j in np.unique(index):
                name = str(names[j]) if 0 <= j < len(names) else ""
                if name.startswith(NUMERIC_PREFIX):
                    found[name[len(NUMERIC_PREFIX) :]].append(values[index == j])
    return {
        name: np.unique(np.concatenate(parts)[np.isfinite(np.concatenate(parts))])
        for name, parts in found.items()
    }


def edge_rows(pipeline: Any, schema: Schema, base: pd.DataFrame) -> pd.DataFrame:
    """`feature_frame` rows with one numeric input set at a threshold or just above it.

    The other inputs come from `base` rows in turn, so the splits are reached along varied
    paths. At most MAX_EDGE_ROWS rows, thresholds sampled evenly when there are more.
    """
    if base.empty:
        return base
    by_input = thresholds_by_input(pipeline)
    edits: list[tuple[str, np.float32]] = []
    for feature in schema.numeric:
        values = by_input.get(feature.input)
        if values is None:
            continue
        at = values.astype(np.float32)
        above = np.nextafter(at, np.float32(np.inf))
        edits.extend((feature.input, v) for pair in zip(at, above, strict=True) for v in pair)
    if not edits:
        return base.iloc[:0]
    if len(edits) > MAX_EDGE_ROWS:
        keep = np.linspace(0, len(edits) - 1, MAX_EDGE_ROWS).round().astype(int)
        edits = [edits[i] for i in keep]
    rows = base.iloc[np.arange(len(edits)) % len(base)].reset_index(drop=True).copy()
    for column in {name for name, _ in edits}:
        mask = np.array([name == column for name, _ in edits])
        values = np.array([v for name, v in edits if name == column], dtype=np.float32)
        series = rows[column].to_numpy(dtype=np.float32, copy=True)
        series[mask] = values
        rows[column] = series
    return rows
