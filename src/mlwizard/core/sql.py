"""SQL identifiers and DuckDB type predicates: one copy, a leaf that imports nothing of mlwizard.

DuckDB spells its types as `DESCRIBE` prints them: REAL arrives as FLOAT, DECIMAL with its
precision, and the temporal types as DATE, TIME, TIMESTAMP and their variants (TIMESTAMP_NS,
TIMESTAMP WITH TIME ZONE, TIME WITH TIME ZONE).
"""

from __future__ import annotations

INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }
)
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES


def quote_ident(name: str) -> str:
    """Quote a column name for SQL, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def is_numeric_type(duckdb_type: str) -> bool:
    return duckdb_type in NUMERIC_TYPES or duckdb_type.startswith("DECIMAL")


def is_float_type(duckdb_type: str) -> bool:
    """May hold NaN and infinities."""
    return duckdb_type in FLOAT_TYPES


def is_integer_type(duckdb_type: str) -> bool:
    return duckdb_type in INTEGER_TYPES


def is_temporal_type(duckdb_type: str) -> bool:
    """DATE, TIME, TIMESTAMP and their variants: `epoch()` turns each into seconds."""
    return duckdb_type.startswith(("DATE", "TIME"))


def is_boolean_type(duckdb_type: str) -> bool:
    return duckdb_type == "BOOLEAN"


def is_string_like(duckdb_type: str) -> bool:
    """Types the audit reads as strings: everything not numeric, boolean or temporal."""
    return not (
        is_numeric_type(duckdb_type)
        or is_boolean_type(duckdb_type)
        or is_temporal_type(duckdb_type)
    )
