"""Semantic column types, and how each becomes one of the model's two feature kinds.

A column's semantic type (numeric, categorical, boolean, datetime, text, identifier) is inferred
from its DuckDB type, the profile and the audit scan, and can be overridden in `[data] types`.
The model and the service understand four feature kinds, so:

- numeric -> numeric; categorical and boolean -> categorical (booleans as 'true'/'false');
- text spelled like booleans (`Yes`/`No`, `Y`/`N`, `True`/`False`) is categorical: its values
  reach the model, the service and the predictions exactly as the source wrote them. Only a
  column typed BOOLEAN by its format (Parquet, JSON `true`) is boolean;
- datetime -> datetime (seconds since 1970; the model's graph derives calendar parts) and text
  -> text (the graph derives n-gram weights): see `engineered_kind`;
- identifier -> not a feature by default (the audit says why); a column the user keeps anyway
  becomes numeric (numeric identifiers) or categorical (string identifiers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlwizard.core.contract.schema import FeatureKind
from mlwizard.core.kernel.config import ColumnType
from mlwizard.core.sql import (
    FLOAT_TYPES,
    is_boolean_type,
    is_integer_type,
    is_numeric_type,
    is_temporal_type,
    quote_ident,
)

if TYPE_CHECKING:
    from mlwizard.core.data.audit.scan import ColumnScan, TableScan

IDENTIFIER_MIN_ROWS = 50  # below this, "every value unique" says little
DISTINCT_KEY_MIN_ROWS = 10  # strings distinct in every one of at least this many rows: a key
IDENTIFIER_DISTINCT_RATIO = 0.95  # distinct / present values (the profile's count is approximate)
DENSE_RANGE_SLACK = 1.05  # unique integers spanning at most this × their count: a row number
TEXT_DISTINCT_RATIO = 0.5  # free text: mostly distinct values ...
TEXT_MIN_LENGTH = 20.0  # ... averaging this many characters, most holding a space,
TEXT_SPACE_SHARE = 0.5
TEXT_LONG_LENGTH = 50.0  # ... or this long whatever they hold
MOSTLY_NUMERIC = 0.9  # strings written as numbers at least this often are inferred numeric

# Names that say "key": id, ID, user_id, USER_ID, userId, order-no, uuid, guid, pk, ...
_ID_NAME = re.compile(
    r"(?i:(?:^|[_\-\s.])(?:id|ids|uuid|guid|key|pk|idx|no|nr)$|^(?:id|uuid|guid)(?:[_\-\s.]|$))"
    r"|[a-z0-9](?:Id|ID|Uuid|UUID|Key|No|Nr)$",
)


def looks_like_id_name(name: str) -> bool:
    return bool(_ID_NAME.search(name.strip()))


def infer_type(name: str, stats: Mapping[str, Any], scan: ColumnScan, rows: int) -> ColumnType:
    """The semantic type of one column from its profile entry and audit scan."""
    duckdb_type = stats["type"]
    present = rows - stats["nulls"]
    if is_boolean_type(duckdb_type):
        return "boolean"
    if is_temporal_type(duckdb_type):
        return "datetime"
    if duckdb_type == "UUID":
        return "identifier"
    if is_numeric_type(duckdb_type):
        return _numeric_type(name, stats, present)
    if present and MOSTLY_NUMERIC * present <= scan.numeric_values < present:
        return "numeric"  # a few stray strings among numbers: the audit reports them
    if _free_text(stats, scan, present):
        return "text"
    if _unique(stats, present) or _all_distinct(stats, present):
        return "identifier"
    return "categorical"


def infer_types(
    profile: Mapping[str, Any], scan: TableScan, overrides: Mapping[str, ColumnType]
) -> dict[str, ColumnType]:
    """Every column's semantic type: `[data] types` overrides first, inference for the rest."""
    return {
        name: overrides.get(name) or infer_type(name, stats, scan.columns[name], profile["rows"])
        for name, stats in profile["columns"].items()
    }


def default_kind(column_type: ColumnType) -> FeatureKind | None:
    """The feature kind a column of this type becomes, or None: not a feature unless kept."""
    if column_type == "numeric":
        return "numeric"
    if column_type in ("categorical", "boolean"):
        return "categorical"
    return engineered_kind(column_type)


def engineered_kind(column_type: ColumnType) -> FeatureKind | None:
    """Datetime and free-text columns: features whose parts the model's graph derives."""
    if column_type == "datetime":
        return "datetime"
    if column_type == "text":
        return "text"
    return None


def kept_kind(column_type: ColumnType, duckdb_type: str) -> FeatureKind:
    """The feature kind of a column the user keeps although its type is not a feature."""
    kind = default_kind(column_type)
    if kind is not None:
        return kind
    if column_type == "datetime" or is_numeric_type(duckdb_type):
        return "numeric"
    return "categorical"


def feature_expression(name: str, duckdb_type: str, column_type: ColumnType, kind: str) -> str:
    """SQL turning a source column into its feature value (DOUBLE or VARCHAR), aliased to it."""
    col = quote_ident(name)
    if kind in ("numeric", "datetime"):  # datetimes as seconds since 1970
        expr = _numeric_expression(col, duckdb_type, column_type)
    elif column_type == "boolean":
        expr = _boolean_expression(col, duckdb_type)
    else:
        expr = f"{col}::VARCHAR"
    return f"{expr} AS {col}"


def time_expression(name: str, duckdb_type: str) -> str:
    """SQL for a time split column: as it is when temporal or numeric, else read as TIMESTAMP."""
    col = quote_ident(name)
    if is_temporal_type(duckdb_type) or is_numeric_type(duckdb_type):
        return col
    return f"TRY_CAST({col}::VARCHAR AS TIMESTAMP) AS {col}"


def _numeric_expression(col: str, duckdb_type: str, column_type: ColumnType) -> str:
    if is_temporal_type(duckdb_type):
        return f"epoch({col})::DOUBLE"
    if is_boolean_type(duckdb_type):
        return f"{col}::INTEGER::DOUBLE"
    if column_type == "datetime":  # strings the user declared datetime and kept
        return f"epoch(TRY_CAST({col}::VARCHAR AS TIMESTAMP))::DOUBLE"
    if duckdb_type in FLOAT_TYPES:  # infinities would break training: read them as missing
        return f"CASE WHEN isinf({col}) THEN NULL ELSE {col}::DOUBLE END"
    if is_numeric_type(duckdb_type):
        return f"{col}::DOUBLE"
    value = f"TRY_CAST({col}::VARCHAR AS DOUBLE)"
    return f"CASE WHEN isinf({value}) THEN NULL ELSE {value} END"


def _boolean_expression(col: str, duckdb_type: str) -> str:
    if is_boolean_type(duckdb_type):
        return f"{col}::VARCHAR"  # 'true' / 'false'
    if is_numeric_type(duckdb_type):
        return f"({col} <> 0)::VARCHAR"
    return f"coalesce(TRY_CAST({col}::VARCHAR AS BOOLEAN)::VARCHAR, {col}::VARCHAR)"


def _unique(stats: Mapping[str, Any], present: int) -> bool:
    """(Nearly) every value distinct, on enough rows for that to mean something."""
    return present >= IDENTIFIER_MIN_ROWS and (
        stats["distinct"] >= IDENTIFIER_DISTINCT_RATIO * present
    )


def _all_distinct(stats: Mapping[str, Any], present: int) -> bool:
    """Strings distinct in every row of a small table (mtcars' car names): a key, not a
    category; no level would be seen twice. Exact only where the count is exact."""
    return (
        present >= DISTINCT_KEY_MIN_ROWS
        and not stats.get("distinct_approximate", True)
        and stats["distinct"] == present
    )


def _numeric_type(name: str, stats: Mapping[str, Any], present: int) -> ColumnType:
    """Integers named like a key are codes: unique ones identify rows, repeated ones (store_id)
    label groups; unique integers densely filling their range are row numbers."""
    if not is_integer_type(stats["type"]):
        return "numeric"
    unique = _unique(stats, present)
    if looks_like_id_name(name):
        return "identifier" if unique else "categorical"
    low, high = stats.get("min"), stats.get("max")
    dense = low is not None and high is not None and high - low + 1 <= DENSE_RANGE_SLACK * present
    return "identifier" if unique and dense else "numeric"


def _free_text(stats: Mapping[str, Any], scan: ColumnScan, present: int) -> bool:
    if not present or stats["distinct"] < TEXT_DISTINCT_RATIO * present:
        return False
    length = scan.avg_length or 0.0
    return length >= TEXT_LONG_LENGTH or (
        length >= TEXT_MIN_LENGTH and scan.space_share >= TEXT_SPACE_SHARE
    )
