"""A per-column profile computed in one aggregate scan of the source."""

from __future__ import annotations

from typing import Any

import duckdb

from mlwizard.core.sources import is_numeric_type, quote_ident

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_K = 5


def _column_expressions(index: int, name: str, numeric: bool) -> list[str]:
    col = quote_ident(name)
    exprs = [
        f"count({col}) AS c{index}_count",
        f"approx_count_distinct({col}) AS c{index}_distinct",
    ]
    if numeric:
        quantiles = ", ".join(map(str, QUANTILES))
        exprs += [
            f"min({col})::DOUBLE AS c{index}_min",
            f"max({col})::DOUBLE AS c{index}_max",
            f"avg({col})::DOUBLE AS c{index}_mean",
            f"stddev_samp({col})::DOUBLE AS c{index}_std",
            f"approx_quantile({col}::DOUBLE, [{quantiles}]) AS c{index}_quantiles",
        ]
    else:
        exprs.append(f"approx_top_k({col}::VARCHAR, {TOP_K}) AS c{index}_top")
    return exprs


def profile_relation(relation: duckdb.DuckDBPyRelation) -> dict[str, Any]:
    """Rows and, per column: type, nulls, distinct (approximate), numeric stats or top values."""
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    exprs = ["count(*) AS n_rows"]
    for index, (name, kind) in enumerate(types.items()):
        exprs += _column_expressions(index, name, is_numeric_type(kind))
    cursor = relation.aggregate(", ".join(exprs))
    values = dict(zip(cursor.columns, cursor.fetchall()[0], strict=True))
    rows = values["n_rows"]
    columns: dict[str, Any] = {}
    for index, (name, kind) in enumerate(types.items()):
        stats = {
            k.removeprefix(f"c{index}_"): v for k, v in values.items() if k.startswith(f"c{index}_")
        }
        present = stats.pop("count")
        entry: dict[str, Any] = {
            "type": kind,
            "numeric": is_numeric_type(kind),
            "nulls": rows - present,
            "null_fraction": round((rows - present) / rows, 6) if rows else 0.0,
            "distinct": min(stats.pop("distinct"), present),
        }
        if "quantiles" in stats:
            stats["quantiles"] = dict(
                zip(map(str, QUANTILES), stats["quantiles"] or [], strict=False)
            )
        entry.update(stats)
        columns[name] = entry
    return {"rows": rows, "columns": columns}
