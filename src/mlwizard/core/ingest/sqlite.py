"""SQLite files through Python's `sqlite3` (read-only) into Arrow, then into DuckDB.

DuckDB's `sqlite` extension downloads at run time. The ADBC SQLite driver is 4x faster but fixes
each column's type from its first batch and fails when a later row's value has another type, which
SQLite allows (measured in docs/decisions/0001-duckdb-extensions-offline.md). Here each chunk's
types are inferred by Arrow and the chunks are unified at the end: integers and reals become
floats, anything mixed with text becomes text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mlwizard.core.ingest.common import check_unique_names, load_arrow, shown
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.sql import quote_ident

CHUNK_ROWS = 65_536
SQLITE_MAGIC = b"SQLite format 3\x00"


def read_sqlite(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, query: str
) -> tuple[duckdb.DuckDBPyRelation, str]:
    """The table or query's rows as a DuckDB relation, and a label naming them."""
    check_database_file(path)
    with closing(_connect(path)) as db:
        statement, label = _statement(db, path, table, query)
        try:
            cursor = db.execute(statement)
            names = [d[0] for d in cursor.description or ()]
            check_unique_names(label, names)
            data = _to_arrow(names, cursor)
        except sqlite3.Error as exc:
            raise BadInputError(f"{label}: the query failed: {exc}; fix [data] query") from None
    if data.num_rows == 0:
        raise BadInputError(f"{label}: no data rows")
    return load_arrow(con, data), label


def check_database_file(path: Path) -> None:
    if not path.is_file():
        raise BadInputError(f"{path}: SQLite database file not found")
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BadInputError(
                f"{path}: not a SQLite database (no SQLite header); check the path in [data] source"
            )


def _connect(path: Path) -> sqlite3.Connection:
    """Read-only: a query cannot change the user's database."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def table_names(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def _statement(db: sqlite3.Connection, path: Path, table: str, query: str) -> tuple[str, str]:
    try:
        tables = table_names(db)
    except sqlite3.Error as exc:
        raise BadInputError(f"{path}: cannot be read as a SQLite database ({exc})") from None
    if table and query:
        raise BadInputError(f"{path}: set [data] table or [data] query, not both")
    if query:
        return query.strip().rstrip(";"), f"{path} (query)"
    if not table:
        raise BadInputError(
            f"{path}: set [data] table to one of: {shown(tables) or 'none, the file has no tables'}"
            " (or [data] query)"
        )
    if table not in tables:
        raise BadInputError(
            f"{path}: no table '{table}' (tables: {shown(tables) or 'none'}); "
            "set [data] table to one of them"
        )
    return f"SELECT * FROM {quote_ident(table)}", f"{path} [table {table}]"


# -- rows to Arrow -----------------------------------------------------------------------------


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[Any]]:
    while rows := cursor.fetchmany(CHUNK_ROWS):
        yield rows


def _to_arrow(names: Sequence[str], cursor: sqlite3.Cursor) -> pa.Table:
    columns: list[list[pa.Array]] = [[] for _ in names]
    for rows in _chunks(cursor):
        for index, values in enumerate(zip(*rows, strict=True)):
            columns[index].append(_array(values))
    return pa.Table.from_arrays([_unify(chunks) for chunks in columns], names=list(names))


def _array(values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _as_text(values)


def _as_text(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def _unify(chunks: list[pa.Array]) -> pa.ChunkedArray:
    kinds = {chunk.type for chunk in chunks} - {pa.null()}
    if not kinds:
        kind = pa.string()  # no value at all: an empty text column
    elif len(kinds) == 1:
        kind = kinds.pop()
    elif kinds <= {pa.int64(), pa.float64()}:
        kind = pa.float64()
    else:
        kind = pa.string()
    return pa.chunked_array([_cast(chunk, kind) for chunk in chunks], type=kind)


def _cast(chunk: pa.Array, kind: pa.DataType) -> pa.Array:
    if chunk.type == kind:
        return chunk
    if kind == pa.string() and chunk.type != pa.null():
        return _as_text(chunk.to_pylist())
    return chunk.cast(kind)
