"""One column of a profile: its kind, its sample (NumPy or Arrow), and the statistics drawn
from that sample (quantiles, histograms, top values), counts scaled to the full row count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlwizard.core.data.audit.scan import NUMBER_PATTERN
from mlwizard.core.sql import is_float_type, is_numeric_type, is_temporal_type, quote_ident

NUMBER_REGEX = f"^(?:{NUMBER_PATTERN})$"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_K = 5
HISTOGRAM_BINS = 20
TOP_VALUES = 10
MAX_LEVELS = 50  # categories (or classes) kept per column for association; the rest pool as one


@dataclass(frozen=True)
class Column:
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


def column_kind(duckdb_type: str) -> str:
    if is_numeric_type(duckdb_type):
        return "numeric"
    if is_temporal_type(duckdb_type):
        return "datetime"
    return "categorical"


def json_float(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def to_numpy(array: pa.Array) -> np.ndarray:
    """A copy where needed (nulls, booleans); pyarrow imports pandas on the first call."""
    return np.asarray(array.to_numpy(zero_copy_only=False))


@dataclass
class SampledColumn:
    """One column of the sample, as NumPy (numeric) or Arrow strings (the rest)."""

    column: Column
    values: np.ndarray | None  # float64 with NaN for missing; numeric columns only
    strings: pa.Array | None  # the other columns
    missing: np.ndarray  # NULL, or NaN in a numeric column
    distinct: int  # distinct non-null values in the sample

    @classmethod
    def of(cls, column: Column, data: pa.ChunkedArray | pa.Array) -> SampledColumn:
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
        distinct = pc.count_distinct(data, mode="only_valid").as_py()
        if column.numeric:
            values = to_numpy(data.cast(pa.float64())).astype(np.float64)  # nulls become NaN
            return cls(column, values, None, np.isnan(values), distinct)
        return cls(column, None, data, to_numpy(pc.is_null(data)), distinct)

    def number_strings(self) -> int:
        """Sampled values written as numbers (text columns): what the audit scan counts."""
        if self.strings is None or not len(self.strings):
            return 0
        text = self.strings.cast(pa.string())
        return int(pc.sum(pc.match_substring_regex(text, NUMBER_REGEX)).as_py() or 0)

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
        indices = to_numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64)
        counts = np.bincount(indices[indices >= 0], minlength=len(encoded.dictionary))
        kept = commonest(encoded.dictionary, counts, max_levels)
        mapping = np.full(len(counts) + 1, len(kept), dtype=np.int64)  # default: other
        mapping[kept] = np.arange(len(kept))
        mapping[-1] = len(kept) + 1  # index -1: missing
        labels = encoded.dictionary.take(pa.array(kept, pa.int64())).to_pylist()
        return mapping[indices], [*labels, "(other)", "(missing)"]


def commonest(values: pa.Array, counts: np.ndarray, k: int) -> list[int]:
    """Positions of the `k` largest counts (ties by value), in that order, in C++ not Python."""
    table = pa.table({"counts": pa.array(counts, pa.int64()), "values": values})
    order = pc.sort_indices(table, sort_keys=[("counts", "descending"), ("values", "ascending")])
    return [i for i in order[:k].to_pylist() if counts[i] > 0]


def column_profile(
    c: Column,
    scan: dict[str, Any],
    info: SampledColumn,
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
        entry["sample_numbers"] = info.number_strings()
        if c.kind == "datetime":
            entry["min"], entry["max"] = scan[p + "min"], scan[p + "max"]
        top = _top_values(info, scale)
        entry["top"] = [t["value"] for t in top[:TOP_K]]
        entry["top_counts"] = top
    return entry


def _numeric_stats(
    c: Column, scan: dict[str, Any], info: SampledColumn, present: int, complete: bool
) -> dict[str, Any]:
    p = f"c{c.index}_"
    finite = info.finite
    quantiles = np.quantile(finite, QUANTILES).tolist() if finite.size else [None] * len(QUANTILES)
    low, high = json_float(scan[p + "min"]), json_float(scan[p + "max"])
    n = scan[p + "finite"]
    return {
        "non_finite": present - n,
        "min": low,
        "max": high,
        "mean": json_float(scan[p + "mean"]),
        "std": json_float(scan[p + "std"]),
        "quantiles": {str(q): json_float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": _histogram(c, finite, low, high, n, complete),
    }


def _histogram(
    c: Column,
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


def _top_values(info: SampledColumn, scale: float) -> list[dict[str, Any]]:
    assert info.strings is not None
    counted = pc.value_counts(info.strings.drop_null())
    values, counts = counted.field("values"), counted.field("counts")
    chosen = pa.array(commonest(values, to_numpy(counts), TOP_VALUES), pa.int64())
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
