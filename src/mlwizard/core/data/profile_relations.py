"""Profile statistics over several columns, on the sample: correlations between numeric columns,
each feature's association with the target, and missingness patterns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlwizard.core.contract.tasks import MAX_INTEGER_CLASSES
from mlwizard.core.data.profile_columns import MAX_LEVELS, Column, SampledColumn

CORRELATION_COLUMNS = 40  # numeric columns in the correlation matrix
TOP_PAIRS = 20
MISSING_PATTERNS = 10


def pairwise_pearson(matrix: np.ndarray) -> np.ndarray:
    """Pearson correlations between the columns of `matrix`, each pair over the rows where both
    are finite (pairwise-complete), in five matrix products instead of a loop over pairs.
    NaN where a pair has fewer than three rows or no variance."""
    present = np.isfinite(matrix)
    weights = present.astype(np.float64)
    counts = np.maximum(present.sum(axis=0), 1)
    centred = np.where(present, matrix, 0.0)
    centred = np.where(present, centred - centred.sum(axis=0) / counts, 0.0)
    n = weights.T @ weights
    sums = centred.T @ weights  # [i, j]: sum of column i over rows where i and j are present
    squares = (centred * centred).T @ weights
    products = centred.T @ centred
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = products - sums * sums.T / n
        variance = squares - sums * sums / n
        scale = variance * variance.T
        result = covariance / np.sqrt(scale)
    tiny = 1e-12 * np.maximum(squares * squares.T, 1e-300)
    result[(n < 3) | ~(scale > tiny)] = np.nan
    return np.clip(result, -1.0, 1.0)


def correlations(
    columns: list[Column], sampled: dict[str, SampledColumn], target: str | None
) -> dict[str, Any]:
    numeric = [c.name for c in columns if c.numeric]
    chosen = numeric[:CORRELATION_COLUMNS]
    if target in numeric and target not in chosen:
        chosen = [*chosen[:-1], target]
    result: dict[str, Any] = {
        "method": "pearson",
        "on": "sample",
        "columns": chosen,
        "of_columns": len(numeric),
        "matrix": [],
        "top_pairs": [],
    }
    if len(chosen) < 2:
        return result
    matrix = pairwise_pearson(np.column_stack([sampled[n].numbers for n in chosen]))
    result["matrix"] = [[_rounded(v) for v in row] for row in matrix]
    pairs: list[dict[str, Any]] = [
        {"a": chosen[i], "b": chosen[j], "r": _rounded(matrix[i, j])}
        for i in range(len(chosen))
        for j in range(i + 1, len(chosen))
        if np.isfinite(matrix[i, j])
    ]
    pairs.sort(key=lambda pair: (-abs(pair["r"]), pair["a"], pair["b"]))
    result["top_pairs"] = pairs[:TOP_PAIRS]
    return result


def _rounded(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def target_profile(
    columns: list[Column], sampled: dict[str, SampledColumn], target: str, task: str | None
) -> dict[str, Any]:
    """Each feature's association with the target, one measure per pair of kinds, all in [0, 1].

    Numeric target: Pearson's r with a numeric feature (score |r|), the correlation ratio η of the
    target across a categorical feature's levels. Class target: η of a numeric feature across the
    classes, bias-corrected Cramér's V with a categorical feature. For two binary variables or a
    binary target and a numeric feature all of them equal |r|, so scores compare across kinds.
    η is adjusted for the number of groups (as R² is), so that a many-level feature does not
    score high by chance. Missing categories form a level of their own; rows with a missing
    target, or a missing numeric feature, are left out.
    """
    info = sampled[target]
    regression = info.column.numeric and (
        task == "regression" or (task is None and np.unique(info.finite).size > MAX_INTEGER_CLASSES)
    )
    keep = ~info.missing
    if regression:
        y = info.values[keep] if info.values is not None else np.empty(0)
        classes: list[str] = []
        codes = np.empty(0, dtype=np.int64)
    else:
        codes, classes = _class_codes(info, keep)
        y = np.empty(0)
    scores = []
    for c in columns:
        if c.name == target or c.kind == "datetime":
            continue
        feature = sampled[c.name]
        if regression and c.numeric:
            measure, value = "pearson", _pearson(feature.numbers[keep], y)
            score = abs(value) if value is not None else None
        elif regression:
            levels, _ = feature.codes()
            measure, value = "correlation_ratio", _correlation_ratio(levels[keep], y)
            score = value
        elif c.numeric:
            x = feature.numbers[keep]
            finite = np.isfinite(x)
            measure, value = "correlation_ratio", _correlation_ratio(codes[finite], x[finite])
            score = value
        else:
            levels, _ = feature.codes()
            measure, value = "cramers_v", _cramers_v(levels[keep], codes)
            score = value
        scores.append(
            {
                "column": c.name,
                "measure": measure,
                "value": _rounded(value) if value is not None else None,
                "score": _rounded(score) if score is not None else None,
            }
        )
    scores.sort(key=lambda s: (s["score"] is None, -float(s["score"] or 0.0), str(s["column"])))
    return {
        "name": target,
        "task": "regression"
        if regression
        else (task if task in ("binary", "multiclass") else "classification"),
        "rows": int(keep.sum()),
        "classes": classes,
        "association": scores,
    }


def _class_codes(info: SampledColumn, keep: np.ndarray) -> tuple[np.ndarray, list[str]]:
    if info.values is not None:
        values = info.values[keep]
        unique, codes = np.unique(values, return_inverse=True)
        labels = [f"{v:g}" for v in unique]
        if len(labels) > MAX_LEVELS:
            counts = np.bincount(codes)
            top = np.argsort(-counts, kind="stable")[:MAX_LEVELS]
            mapping = np.full(len(labels), MAX_LEVELS)
            mapping[top] = np.arange(MAX_LEVELS)
            codes, labels = mapping[codes], [labels[i] for i in top] + ["(other)"]
        return codes.astype(np.int64), labels
    codes, labels = info.codes()
    used = sorted(
        np.unique(codes[keep]).tolist(), key=lambda i: (labels[i] == "(other)", labels[i])
    )
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[codes[keep]], [labels[i] for i in used]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return None
    value = pairwise_pearson(np.column_stack([x[both], y[both]]))[0, 1]
    return float(value) if np.isfinite(value) else None


def _correlation_ratio(groups: np.ndarray, y: np.ndarray) -> float | None:
    """η: the share of y's spread explained by the group means, adjusted for the group count."""
    finite = np.isfinite(y)
    groups, y = groups[finite], y[finite]
    n = y.size
    if n < 3:
        return None
    counts = np.bincount(groups)
    sums = np.bincount(groups, weights=y)
    used = counts > 0
    k = int(used.sum())
    mean = y.mean()
    total = float(((y - mean) ** 2).sum())
    if total <= 0 or n <= k:
        return None
    between = float((sums[used] ** 2 / counts[used]).sum() - n * mean * mean)
    eta2 = min(max(between / total, 0.0), 1.0)
    adjusted = 1 - (1 - eta2) * (n - 1) / (n - k)
    return math.sqrt(max(adjusted, 0.0))


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cramér's V with Bergsma's (2013) bias correction."""
    n = a.size
    if n < 3:
        return None
    width = int(b.max()) + 1  # both are small non-negative codes: count, then drop empty levels
    table = np.bincount(a * width + b, minlength=(int(a.max()) + 1) * width).reshape(-1, width)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0].astype(np.float64)
    ka, kb = table.shape
    if ka < 2 or kb < 2:
        return None
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    phi2 = max(chi2 / n - (ka - 1) * (kb - 1) / (n - 1), 0.0)
    ka_c = ka - (ka - 1) ** 2 / (n - 1)
    kb_c = kb - (kb - 1) ** 2 / (n - 1)
    denominator = min(ka_c - 1, kb_c - 1)
    return math.sqrt(min(phi2 / denominator, 1.0)) if denominator > 0 else None


def missingness(
    columns: Sequence[Column], sampled: dict[str, SampledColumn], scale: float
) -> dict[str, Any]:
    """The commonest combinations of missing columns (NULL, or NaN in a numeric column)."""
    with_missing = [c.name for c in columns if sampled[c.name].missing.any()]
    with_missing.sort(key=lambda n: -int(sampled[n].missing.sum()))
    result: dict[str, Any] = {"on": "sample", "columns": with_missing, "patterns": []}
    if not columns:
        return result
    sample_rows = len(sampled[columns[0].name].missing)
    if not sample_rows:
        return result
    if not with_missing:
        result["patterns"] = [{"missing": [], "count": round(sample_rows * scale), "fraction": 1.0}]
        return result
    flags = np.column_stack([sampled[n].missing for n in with_missing])
    packed = np.packbits(flags, axis=1)
    unique, first, counts = np.unique(packed, axis=0, return_index=True, return_counts=True)
    order = sorted(range(len(unique)), key=lambda i: (-counts[i], first[i]))
    result["patterns"] = [
        {
            "missing": [n for n, flag in zip(with_missing, flags[first[i]], strict=True) if flag],
            "count": round(int(counts[i]) * scale),
            "fraction": round(int(counts[i]) / sample_rows, 6),
        }
        for i in order[:MISSING_PATTERNS]
    ]
    result["distinct_patterns"] = len(unique)
    return result
