"""Reading the user's data through DuckDB, with one-line errors for bad files.

Paths and values are always passed to DuckDB as arguments, never formatted into SQL; column names
from users' files go through `quote_ident`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mlwizard.core.errors import BadInputError

if TYPE_CHECKING:
    from mlwizard.core.config import Config
    from mlwizard.core.workspace import Workspace

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
SUPPORTED = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))

NUMERIC_TYPES = frozenset(
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
        "FLOAT",
        "DOUBLE",
    }
)


def quote_ident(name: str) -> str:
    """Quote a column name for SQL, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def is_numeric_type(duckdb_type: str) -> bool:
    return duckdb_type in NUMERIC_TYPES or duckdb_type.startswith("DECIMAL")


def connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_table(
    con: duckdb.DuckDBPyConnection, path: Path, na_values: Sequence[str] = ("",)
) -> duckdb.DuckDBPyRelation:
    """A relation over a CSV or Parquet file; raises `BadInputError` naming the file."""
    if not path.exists():
        raise BadInputError(f"{path}: file not found")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | PARQUET_SUFFIXES:
        raise BadInputError(f"{path}: unsupported file type '{suffix}' (supported: {SUPPORTED})")
    try:
        if suffix in PARQUET_SUFFIXES:
            relation = con.read_parquet(str(path))
        else:
            relation = con.read_csv(str(path), na_values=list(na_values))
        columns = relation.columns
        has_rows = bool(relation.limit(1).fetchall())
    except duckdb.Error as exc:
        kind = "Parquet" if suffix in PARQUET_SUFFIXES else "CSV"
        raise BadInputError(f"{path}: cannot be read as {kind}: {_first_line(exc)}") from None
    if not columns or not has_rows:
        raise BadInputError(f"{path}: the file has no data rows")
    return relation


def open_source(
    con: duckdb.DuckDBPyConnection, ws: Workspace, config: Config
) -> tuple[duckdb.DuckDBPyRelation, str]:
    """The configured source as a relation, and a label naming it in messages."""
    path = ws.source_path(config)
    return read_table(con, path, config.data.na_values), str(path)


def source_fingerprint(ws: Workspace, config: Config) -> str:
    """A hash of the source's content: what makes a new data version."""
    path = ws.source_path(config)
    return ws.file_hash(path) if path.is_file() else "missing"


def column_types(relation: duckdb.DuckDBPyRelation) -> dict[str, str]:
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}


def require_column(relation: duckdb.DuckDBPyRelation, column: str, path: Path | str) -> None:
    if column not in relation.columns:
        shown = ", ".join(relation.columns[:12]) + (" ..." if len(relation.columns) > 12 else "")
        raise BadInputError(
            f"{path}: target column '{column}' not found (columns: {shown}); "
            "pass --target with one of them"
        )
