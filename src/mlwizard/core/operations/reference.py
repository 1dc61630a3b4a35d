"""The reference profile of a model version, taken from its training split at training time.

It holds what monitoring compares production data against: each monitored feature's bins and
counts, its missing rate and known categories, the model's prediction distribution and its
metrics overall and by slice (see `evaluation.py`). Identifier and excluded columns are listed
with the reason they are not monitored: drift on a row key says nothing about the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.data.coltypes import looks_like_id_name
from mlwizard.core.operations.drift import DECILES, TOP_CATEGORIES, count_bins
from mlwizard.core.sql import quote_ident

KNOWN_VALUES_MAX = 1000  # categories remembered to spot new ones; more: no new-category check
ID_DISTINCT_RATIO = 0.5  # a categorical this distinct (distinct / present) is a key, not a feature
ID_MIN_DISTINCT = 20
ID_NAME_DISTINCT_RATIO = 0.2  # ... or this distinct when its name reads like an identifier


def build_reference(
    con: duckdb.DuckDBPyConnection, path: Path, schema: Schema, types: dict[str, str]
) -> dict[str, Any]:
    """Bins, counts, missing rates and known categories of the monitored features of `path`."""
    source, params = "read_parquet(?)", [str(path)]
    shape = _shape(con, source, params, schema.features)
    rows = shape.pop("__rows__")
    not_monitored = {name: f"excluded: {why}" for name, why in schema.excluded.items()}
    bins: dict[str, Any] = {}
    for feature in schema.features:
        stats = shape[feature.name]
        reason = _not_monitored_reason(feature, types.get(feature.name, feature.kind), stats)
        if reason:
            not_monitored[feature.name] = reason
        elif feature.kind == "numeric":
            edges = sorted({float(v) for v in stats["quantiles"] or [] if v is not None})
            bins[feature.name] = {"kind": "numeric", "edges": edges}
        else:
            values = [v for v in stats["top"] or [] if v is not None]
            raw = stats["distinct"] <= KNOWN_VALUES_MAX  # count every value: spot new ones later
            bins[feature.name] = {"kind": "categorical", "values": values, "raw": raw}
    extra: list[tuple[str, list[Any]]] = [
        (f"avg({quote_ident(n)})", []) for n, s in bins.items() if s["kind"] == "numeric"
    ]
    seen: dict[str, dict[str, int]] = {}
    counts, means = count_bins(con, source, params, bins, extra, raw=seen)
    numeric = iter(means)
    features: dict[str, Any] = {}
    for name, spec in bins.items():
        entry = {**spec, "counts": counts[name], "known": None, "mean": None}
        if spec["kind"] == "numeric":
            mean = next(numeric)
            entry["mean"] = None if mean is None else float(mean)
        elif name in seen:
            entry["known"] = sorted(seen[name])
        features[name] = entry
    return {"rows": rows, "features": features, "not_monitored": not_monitored}


def _shape(
    con: duckdb.DuckDBPyConnection, source: str, params: list[Any], features: list[Feature]
) -> dict[str, Any]:
    """One scan: row count, and per feature its quantiles or top values and distinct count."""
    exprs = ["count(*)"]
    for feature in features:
        col = quote_ident(feature.name)
        if feature.kind == "numeric":
            exprs.append(f"approx_quantile({col}, {DECILES})")
        else:
            exprs += [
                f"approx_top_k({col}, {TOP_CATEGORIES})",
                f"approx_count_distinct({col})",
                f"count({col})",
            ]
    values = iter(con.execute(f"SELECT {', '.join(exprs)} FROM {source}", params).fetchall()[0])
    shape: dict[str, Any] = {"__rows__": int(next(values))}
    for feature in features:
        if feature.kind == "numeric":
            shape[feature.name] = {"quantiles": next(values)}
        else:
            top, distinct, present = next(values), next(values), next(values)
            shape[feature.name] = {"top": top, "distinct": int(distinct), "present": int(present)}
    return shape


def _not_monitored_reason(feature: Feature, column_type: str, stats: dict[str, Any]) -> str:
    if column_type == "identifier":
        return "identifier column"
    if feature.kind != "categorical":
        return ""
    distinct, present = stats["distinct"], max(stats["present"], 1)
    ratio = distinct / present
    if (distinct >= ID_MIN_DISTINCT and ratio > ID_DISTINCT_RATIO) or (
        looks_like_id_name(feature.name)
        and distinct >= ID_MIN_DISTINCT / 2
        and ratio > ID_NAME_DISTINCT_RATIO
    ):
        return f"identifier-like: {distinct} distinct values in {present} rows"
    return ""
