"""Checks of the `[data]` and `[split]` configuration against the source's columns."""

from __future__ import annotations

from typing import Any

from mlwizard.core import sql
from mlwizard.core.data.audit.scan import TableScan
from mlwizard.core.ingest.sources import column_hint
from mlwizard.core.kernel.config import ColumnType, Config
from mlwizard.core.kernel.errors import BadInputError


def check_config(config: Config, duckdb_types: dict[str, str], path: str) -> str:
    """Columns named in [data] and [split] must exist; returns the split column ('' if none)."""
    data = config.data
    named = [("types", list(data.types)), ("keep", data.keep), ("exclude", data.exclude)]
    for key, columns in named:
        for column in columns:
            if column not in duckdb_types:
                raise BadInputError(
                    f"[data] {key}: column '{column}' is not in {path}"
                    f"{column_hint(column, list(duckdb_types))}; remove it from the list"
                )
    both = sorted(set(data.keep) & set(data.exclude))
    if both:
        raise BadInputError(
            f"[data] keep and exclude both list '{both[0]}'; remove it from one of them"
        )
    strategy = config.split.strategy
    if strategy not in ("time", "group"):
        return ""
    key = f"{strategy}_column"
    column = getattr(config.split, key)
    if not column:
        raise BadInputError(
            f'[split] strategy = "{strategy}" needs [split] {key}: the column to split on'
        )
    if column not in duckdb_types:
        raise BadInputError(
            f"[split] {key} = '{column}' is not a column of {path}"
            f"{column_hint(column, list(duckdb_types))}"
        )
    if column == data.target:
        raise BadInputError(f"[split] {key} = '{column}' is the target; choose another column")
    if strategy == "time":
        _check_time_type(column, duckdb_types[column], data.types.get(column))
    return column


def _check_time_type(column: str, duckdb_type: str, override: str | None) -> None:
    readable = sql.is_temporal_type(duckdb_type) or sql.is_numeric_type(duckdb_type)
    if not readable and not (override == "datetime" and sql.is_string_like(duckdb_type)):
        raise BadInputError(
            f"[split] time_column '{column}' is {duckdb_type}, not a date/time or number; "
            f'set [data] types = {{ "{column}" = "datetime" }} if it holds dates'
        )


def check_numeric_overrides(
    overrides: dict[str, ColumnType], profile: dict[str, Any], scan: TableScan
) -> None:
    """A string column declared numeric must hold some numbers (the rest are read as missing)."""
    for column, kind in overrides.items():
        stats = profile["columns"][column]
        present = profile["rows"] - stats["nulls"]
        if kind != "numeric" or not sql.is_string_like(stats["type"]) or not present:
            continue
        if scan.columns[column].numeric_values == 0:
            raise BadInputError(
                f"[data] types: column '{column}' is set to numeric but none of its values is "
                "a number; remove the override or fix the column"
            )
