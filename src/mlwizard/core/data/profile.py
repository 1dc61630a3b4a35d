"""Column profiles of a DuckDB relation.

`profile_dataset` is the exploratory profile behind the data phase and its reports, in one scan
of the source whatever its size (two when the table is small):

- exact, from every row: rows, nulls, non-finite values, min, max, mean, standard deviation, and
  distinct counts (HyperLogLog; counted exactly when the sample holds every row);
- from a seeded sample drawn in the same scan: quantiles, histograms, top values with counts,
  correlations between numeric columns, each feature's association with the target, and
  missingness patterns. Counts from the sample are scaled to the full row count.

The sample is the `sample_rows` rows with the smallest `hash(seed, every column)`: a uniform random
sample that does not depend on thread scheduling or file order, found in the same aggregate as the
statistics with `arg_min(row, hash, n)`. Only rows under a hash threshold are packed into structs
for it (a tenth of the rows at the default size), which is what keeps the scan near the cost of
parsing the file. A table too small to fill the sample through that threshold is sampled again,
exactly, with `ORDER BY hash LIMIT n`: the same rows the single scan would have kept.

Measured on 5M rows x 20 columns (docs/benchmarks.md): an earlier design with a reservoir sample
and a second full scan for exact histograms took 2.6-2.8x a bare scan; this one about 2x.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlwizard.core.contract.tasks import MAX_INTEGER_CLASSES
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.sql import is_float_type, is_numeric_type, is_temporal_type, quote_ident

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_K = 5

PROFILE_VERSION = 1
SAMPLE_ROWS = 100_000
SAMPLE_CELLS = 10_000_000  # a wide table gets fewer sample rows: rows x columns stays under this
PREFILTER_ROWS = 1_000_000  # the hash threshold lets through sample_rows rows of a table this long
HISTOGRAM_BINS = 20
TOP_VALUES = 10
MAX_LEVELS = 50  # categories (or classes) kept per column for association; the rest pool as one
CORRELATION_COLUMNS = 40  # numeric columns in the correlation matrix
TOP_PAIRS = 20
MISSING_PATTERNS = 10
SAMPLED_STATISTICS = (
    "quantiles",
    "histograms",
    "top values",
    "correlations",
    "target association",
    "missingness",
)


# --- the quick one-scan profile -------------------------------------------------------------


# --- the exploratory profile -----------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    type: str
    kind: str  # "numeric", "datetime" or "categorical"

    @property
    def numeric(self) -> bool:
        return self.kind == "numeric"

    @property
    def floating(self) -> bool:
        """May hold NaN or infinity, which are kept out of min/max/mean/std/histograms."""
        return is_float_type(self.type)

    @property
    def ident(self) -> str:
        return quote_ident(self.name)


def _kind(duckdb_type: str) -> str:
    if is_numeric_type(duckdb_type):
        return "numeric"
    if is_temporal_type(duckdb_type):
        return "datetime"
    return "categorical"


def _float(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def profile_dataset(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    target: str | None = None,
    task: str | None = None,
    seed: int = 0,
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """The exploratory profile of `relation`, which must belong to `con`.

    `profile["columns"]` has, per column: type, numeric, nulls, null_fraction, distinct, min,
    max, mean, std, quantiles, top (the commonest values), histograms, top values with counts
    and more; `correlations`, `target` and `missingness` describe the columns
    together; `sample` says how many rows the sampled statistics rest on. `task` is "regression",
    "binary", "multiclass" or None (inferred from the target).
    """
    if sample_rows < 1:
        raise ValueError("sample_rows must be at least 1")
    columns = [
        _Column(i, name, str(kind), _kind(str(kind)))
        for i, (name, kind) in enumerate(zip(relation.columns, relation.types, strict=True))
    ]
    if target is not None and target not in relation.columns:
        raise BadInputError(f"target column '{target}' is not in the data")
    size = max(1, min(int(sample_rows), SAMPLE_CELLS // max(len(columns), 1)))
    view = f"__mlwizard_profile_{uuid.uuid4().hex}"
    relation.create_view(view, replace=False)
    try:
        scan, sample = _scan(con, view, columns, int(seed), size)
        rows = scan["n_rows"]
        if sample.num_rows < min(size, rows):  # too few rows under the threshold: draw exactly
            sample = _bottom_k(con, view, columns, int(seed), size)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {quote_ident(view)}")

    complete = sample.num_rows == rows
    scale = rows / sample.num_rows if sample.num_rows else 0.0
    sampled = {c.name: _SampledColumn.of(c, sample.column(c.index)) for c in columns}
    profile_columns = {
        c.name: _column_profile(c, scan, sampled[c.name], rows, scale, complete) for c in columns
    }
    return {
        "version": PROFILE_VERSION,
        "rows": rows,
        "columns": profile_columns,
        "sample": {
            "rows": sample.num_rows,
            "of_rows": rows,
            "fraction": round(sample.num_rows / rows, 6) if rows else 0.0,
            "complete": complete,
            "method": "bottom-k by hash(seed, row)",
            "seed": int(seed),
            "statistics": list(SAMPLED_STATISTICS),
        },
        "correlations": _correlations(columns, sampled, target),
        "target": _target_profile(columns, sampled, target, task) if target else None,
        "missingness": _missingness(columns, sampled, scale),
    }


def _row_hash(view: str, columns: list[_Column], alias: str) -> str:
    """`view` with one more column, `alias`: a seeded hash of the whole row (seed: `$1`)."""
    every = ", ".join(f"v.{c.ident}" for c in columns)
    return f"(SELECT v.*, hash($1::BIGINT, {every}) AS {alias} FROM {quote_ident(view)} AS v)"


def _packed_row(columns: list[_Column]) -> str:
    """The row as the sample keeps it: numeric columns as DOUBLE, the rest as VARCHAR."""
    return (
        "struct_pack("
        + ", ".join(
            f"c{c.index} := {c.ident}::{'DOUBLE' if c.numeric else 'VARCHAR'}" for c in columns
        )
        + ")"
    )


def _scan(
    con: duckdb.DuckDBPyConnection, view: str, columns: list[_Column], seed: int, size: int
) -> tuple[dict[str, Any], pa.Table]:
    """One aggregate over every row: the exact statistics, and the sample's rows among those
    whose hash falls under a threshold that a table of `PREFILTER_ROWS` rows would fill."""
    alias = quote_ident(f"__mlwizard_hash_{uuid.uuid4().hex}")
    params: list[Any] = [seed % 2**63, min(2**64 - 1, (2**64 // PREFILTER_ROWS) * size)]
    exprs = ["count(*) AS n_rows"]
    for c in columns:
        x, p = c.ident, f"c{c.index}_"
        exprs += [f"count({x}) AS {p}present", f"approx_count_distinct({x}) AS {p}distinct"]
        if c.numeric:
            value = f"(CASE WHEN isfinite({x}) THEN {x}::DOUBLE END)" if c.floating else x
            exprs += [
                f"count({value}) AS {p}finite",
                f"min({value})::DOUBLE AS {p}min",
                f"max({value})::DOUBLE AS {p}max",
                f"avg({value})::DOUBLE AS {p}mean",
                f"stddev_samp({value})::DOUBLE AS {p}std",
            ]
        elif c.kind == "datetime":
            exprs += [f"min({x})::VARCHAR AS {p}min", f"max({x})::VARCHAR AS {p}max"]
    under = f"{alias} < $2::UBIGINT"
    exprs.append(
        f"arg_min(CASE WHEN {under} THEN {_packed_row(columns)} END, {alias}, {int(size)}) "
        f"FILTER (WHERE {under}) AS sample"
    )
    source = _row_hash(view, columns, alias)
    result = con.sql(f"SELECT {', '.join(exprs)} FROM {source}", params=params).to_arrow_table()
    values = {name: result.column(name)[0].as_py() for name in result.column_names[:-1]}
    packed = result.column("sample")[0]
    rows = packed.values if packed.is_valid else pa.array([], packed.type.value_type)
    return values, _unpack(rows, columns)


def _bottom_k(
    con: duckdb.DuckDBPyConnection, view: str, columns: list[_Column], seed: int, size: int
) -> pa.Table:
    """The same sample as `_scan` keeps, drawn on its own: the `size` smallest row hashes."""
    alias = quote_ident(f"__mlwizard_hash_{uuid.uuid4().hex}")
    sql = (
        f"SELECT {_packed_row(columns)} AS row FROM {_row_hash(view, columns, alias)} "
        f"ORDER BY {alias} LIMIT {int(size)}"
    )
    rows = con.sql(sql, params=[seed % 2**63]).to_arrow_table().column("row").combine_chunks()
    return _unpack(rows, columns)


def _unpack(rows: pa.Array, columns: list[_Column]) -> pa.Table:
    if not len(columns):
        return pa.table({})
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    return pa.table({f"c{c.index}": rows.field(f"c{c.index}") for c in columns})


def _numpy(array: pa.Array) -> np.ndarray:
    """A copy where needed (nulls, booleans); pyarrow imports pandas on the first call."""
    return np.asarray(array.to_numpy(zero_copy_only=False))


@dataclass
class _SampledColumn:
    """One column of the sample, as NumPy (numeric) or Arrow strings (the rest)."""

    column: _Column
    values: np.ndarray | None  # float64 with NaN for missing; numeric columns only
    strings: pa.Array | None  # the other columns
    missing: np.ndarray  # NULL, or NaN in a numeric column
    distinct: int  # distinct non-null values in the sample

    @classmethod
    def of(cls, column: _Column, data: pa.ChunkedArray | pa.Array) -> _SampledColumn:
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
        distinct = pc.count_distinct(data, mode="only_valid").as_py()
        if column.numeric:
            values = _numpy(data.cast(pa.float64())).astype(np.float64)  # nulls become NaN
            return cls(column, values, None, np.isnan(values), distinct)
        return cls(column, None, data, _numpy(pc.is_null(data)), distinct)

    @property
    def numbers(self) -> np.ndarray:
        """The values of a numeric column."""
        assert self.values is not None, f"{self.column.name} is not numeric"
        return self.values

    @property
    def finite(self) -> np.ndarray:
        return self.numbers[np.isfinite(self.numbers)]

    def codes(self, max_levels: int = MAX_LEVELS) -> tuple[np.ndarray, list[str]]:
        """Category codes: the `max_levels` commonest values, then "(other)" and "(missing)"."""
        assert self.strings is not None
        encoded = pc.dictionary_encode(self.strings)
        indices = _numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64)
        counts = np.bincount(indices[indices >= 0], minlength=len(encoded.dictionary))
        kept = _commonest(encoded.dictionary, counts, max_levels)
        mapping = np.full(len(counts) + 1, len(kept), dtype=np.int64)  # default: other
        mapping[kept] = np.arange(len(kept))
        mapping[-1] = len(kept) + 1  # index -1: missing
        labels = encoded.dictionary.take(pa.array(kept, pa.int64())).to_pylist()
        return mapping[indices], [*labels, "(other)", "(missing)"]


def _commonest(values: pa.Array, counts: np.ndarray, k: int) -> list[int]:
    """Positions of the `k` largest counts (ties by value), in that order, in C++ not Python."""
    table = pa.table({"counts": pa.array(counts, pa.int64()), "values": values})
    order = pc.sort_indices(table, sort_keys=[("counts", "descending"), ("values", "ascending")])
    return [i for i in order[:k].to_pylist() if counts[i] > 0]


def _column_profile(
    c: _Column,
    scan: dict[str, Any],
    info: _SampledColumn,
    rows: int,
    scale: float,
    complete: bool,
) -> dict[str, Any]:
    p = f"c{c.index}_"
    present = scan[p + "present"]
    entry: dict[str, Any] = {
        "type": c.type,
        "numeric": c.numeric,
        "kind": c.kind,
        "nulls": rows - present,
        "null_fraction": round((rows - present) / rows, 6) if rows else 0.0,
        # The sample holds every row: count exactly (HyperLogLog is off by a few percent).
        "distinct": info.distinct if complete else min(scan[p + "distinct"], present),
        "distinct_approximate": not complete,
    }
    if c.numeric:
        entry.update(_numeric_stats(c, scan, info, present, complete))
    else:
        if c.kind == "datetime":
            entry["min"], entry["max"] = scan[p + "min"], scan[p + "max"]
        top = _top_values(info, scale)
        entry["top"] = [t["value"] for t in top[:TOP_K]]
        entry["top_counts"] = top
    return entry


def _numeric_stats(
    c: _Column, scan: dict[str, Any], info: _SampledColumn, present: int, complete: bool
) -> dict[str, Any]:
    p = f"c{c.index}_"
    finite = info.finite
    quantiles = np.quantile(finite, QUANTILES).tolist() if finite.size else [None] * len(QUANTILES)
    low, high = _float(scan[p + "min"]), _float(scan[p + "max"])
    n = scan[p + "finite"]
    return {
        "non_finite": present - n,
        "min": low,
        "max": high,
        "mean": _float(scan[p + "mean"]),
        "std": _float(scan[p + "std"]),
        "quantiles": {str(q): _float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": _histogram(c, finite, low, high, n, complete),
    }


def _histogram(
    c: _Column,
    values: np.ndarray,
    low: float | None,
    high: float | None,
    total: int,
    complete: bool,
) -> dict[str, Any] | None:
    """Equal-width bins over [min, max] (one per integer for a narrow integer column), counted on
    the sample and scaled to the column's `total` finite values. NumPy's bins: [a, b), the last
    [a, b]."""
    if not total or low is None or high is None:
        return None
    integer = not is_float_type(c.type) and not c.type.startswith("DECIMAL")
    per_integer = integer and high - low < HISTOGRAM_BINS
    if per_integer:
        edges = [low, *(k + 0.5 for k in range(int(low), int(high))), high]
    elif low == high:
        edges = [low, high]
    else:
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1).tolist()
    counts = [total] if len(edges) == 2 else _scaled(np.histogram(values, edges)[0], total)
    if counts is None:
        return None
    return {"edges": edges, "counts": counts, "per_integer": per_integer, "estimated": not complete}


def _scaled(counts: np.ndarray, total: int) -> list[int] | None:
    """`counts` scaled to sum to `total` exactly, the largest remainders taking the rounding;
    None when the sample saw none of the values it should stand for."""
    have = int(counts.sum())
    if have == total:
        return [int(c) for c in counts]
    if not have:
        return None
    exact = counts * (total / have)
    scaled = np.floor(exact).astype(np.int64)
    short = total - int(scaled.sum())
    scaled[np.argsort(-(exact - scaled), kind="stable")[:short]] += 1
    return [int(c) for c in scaled]


def _top_values(info: _SampledColumn, scale: float) -> list[dict[str, Any]]:
    assert info.strings is not None
    counted = pc.value_counts(info.strings.drop_null())
    values, counts = counted.field("values"), counted.field("counts")
    chosen = pa.array(_commonest(values, _numpy(counts), TOP_VALUES), pa.int64())
    top = zip(values.take(chosen).to_pylist(), counts.take(chosen).to_pylist(), strict=True)
    sample_rows = len(info.missing)
    return [
        {
            "value": value,
            "count": round(count * scale),
            "fraction": round(count / sample_rows, 6) if sample_rows else 0.0,
        }
        for value, count in top
    ]


# --- statistics over several columns, on the sample ------------------------------------------


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


def _correlations(
    columns: list[_Column], sampled: dict[str, _SampledColumn], target: str | None
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


def _target_profile(
    columns: list[_Column], sampled: dict[str, _SampledColumn], target: str, task: str | None
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


def _class_codes(info: _SampledColumn, keep: np.ndarray) -> tuple[np.ndarray, list[str]]:
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


def _missingness(
    columns: Sequence[_Column], sampled: dict[str, _SampledColumn], scale: float
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
