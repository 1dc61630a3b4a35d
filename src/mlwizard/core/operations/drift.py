"""Reference statistics and PSI drift, computed by DuckDB in one scan per dataset.

A feature's bins are fixed from the reference data: deciles for numerics, the most frequent values
(plus "other") for categoricals, and a bin for missing values in both. Counting a dataset into those
bins is one aggregate query with bound parameters for every edge and value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.contract.schema import Schema
from mlwizard.core.sql import quote_ident

DECILES = [i / 10 for i in range(1, 10)]
TOP_CATEGORIES = 20
PSI_FLOOR = 1e-4  # keeps an empty bin from making PSI infinite
PSI_WARN, PSI_ALERT = 0.1, 0.25  # the usual reading: < 0.1 stable, 0.1–0.25 moderate, > 0.25 major


def reference_bins(con: duckdb.DuckDBPyConnection, path: Path, schema: Schema) -> dict[str, Any]:
    """Bin definitions per feature, from the reference data."""
    relation = con.read_parquet(str(path))
    exprs = []
    for i, feature in enumerate(schema.features):
        col = quote_ident(feature.name)
        if feature.kind == "numeric":
            exprs.append(f"quantile_cont({col}, {DECILES}) AS q{i}")
        else:
            exprs.append(f"approx_top_k({col}, {TOP_CATEGORIES}) AS q{i}")
    row = relation.aggregate(", ".join(exprs)).fetchall()[0]
    bins: dict[str, Any] = {}
    for feature, value in zip(schema.features, row, strict=True):
        if feature.kind == "numeric":
            edges = sorted({float(v) for v in (value or []) if v is not None})
            bins[feature.name] = {"kind": "numeric", "edges": edges}
        else:
            bins[feature.name] = {"kind": "categorical", "values": [v for v in value or [] if v]}
    return bins


def _bin_filters(name: str, spec: dict[str, Any]) -> tuple[list[str], list[Any], list[str]]:
    """SQL filters (with their parameters) for each bin of one feature, and the bins' labels."""
    col = quote_ident(name)
    filters, params, labels = [f"{col} IS NULL"], [], ["missing"]
    if spec["kind"] == "numeric":
        edges = spec["edges"]
        lower: float | None = None
        for edge in [*edges, None]:
            conditions, bound = [], []
            if lower is not None:
                conditions.append(f"{col} > ?")
                bound.append(lower)
            if edge is not None:
                conditions.append(f"{col} <= ?")
                bound.append(edge)
            filters.append(" AND ".join(conditions) or f"{col} IS NOT NULL")
            params += bound
            labels.append(
                f"({lower if lower is not None else '-inf'}, {edge if edge is not None else 'inf'}]"
            )
            lower = edge
    else:
        for value in spec["values"]:
            filters.append(f"{col} = ?")
            params.append(value)
            labels.append(str(value))
        filters.append(f"{col} IS NOT NULL AND NOT list_contains(?, {col})")
        params.append(spec["values"])
        labels.append("other")
    return filters, params, labels


def bin_counts(
    con: duckdb.DuckDBPyConnection, path: Path, bins: dict[str, Any]
) -> dict[str, dict[str, int]]:
    """Count the rows of a Parquet file into each feature's bins, in one scan."""
    exprs: list[str] = []
    params: list[Any] = []
    layout: list[tuple[str, list[str]]] = []
    for name, spec in bins.items():
        filters, bound, labels = _bin_filters(name, spec)
        exprs += [f"count(*) FILTER (WHERE {f})" for f in filters]
        params += bound
        layout.append((name, labels))
    row = con.execute(f"SELECT {', '.join(exprs)} FROM read_parquet(?)", [*params, str(path)])
    fetched = row.fetchone()
    assert fetched is not None  # an aggregate always returns one row
    values = iter(fetched)
    return {name: {label: int(next(values)) for label in labels} for name, labels in layout}


def psi(reference: dict[str, int], current: dict[str, int]) -> float:
    ref_total = sum(reference.values()) or 1
    cur_total = sum(current.values()) or 1
    total = 0.0
    for label in reference:
        expected = max(reference[label] / ref_total, PSI_FLOOR)
        actual = max(current.get(label, 0) / cur_total, PSI_FLOOR)
        total += (actual - expected) * math.log(actual / expected)
    return total


def psi_noise_floor(reference: dict[str, int], current: dict[str, int]) -> float:
    """The PSI that sampling alone gives when nothing drifted.

    For small differences PSI behaves like a chi-square divergence, whose expectation between two
    samples of one distribution is about (bins - 1) * (1/n_reference + 1/n_current). On a few
    hundred rows that is comparable to the usual thresholds, so levels are judged above it.
    """
    bins = sum(1 for label in reference if reference[label] or current.get(label, 0))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if not n_ref or not n_cur:
        return 0.0
    return max(bins - 1, 0) * (1 / n_ref + 1 / n_cur)


def drift_level(value: float, noise_floor: float = 0.0) -> str:
    """stable / moderate / major by the usual PSI thresholds, counted above the noise floor."""
    excess = value - noise_floor
    return "major" if excess > PSI_ALERT else "moderate" if excess > PSI_WARN else "stable"
