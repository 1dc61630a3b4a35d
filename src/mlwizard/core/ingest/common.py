"""Helpers shared by the readers: error text, full-scan validation, Arrow into DuckDB."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.sql import quote_ident

_table_ids = itertools.count(1)
_ERROR_PREFIX = re.compile(r"^[A-Za-z ]*(Error|Exception): ")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, without DuckDB's "X Error: " prefix."""
    for line in str(exc).splitlines():
        line = _ERROR_PREFIX.sub("", line.strip())
        if line:
            return line
    return type(exc).__name__


def count_rows(relation: duckdb.DuckDBPyRelation) -> int:
    """Read every value of every column once: parse and type errors anywhere in a file surface
    here, as one `duckdb.Error`, instead of in the middle of a later phase."""
    counts = ["count(*)"] + [f"count({quote_ident(name)})" for name in relation.columns]
    return int(relation.aggregate(", ".join(counts)).fetchall()[0][0])


def read_and_count(
    read: Callable[[dict[str, Any]], duckdb.DuckDBPyRelation], options: dict[str, Any]
) -> tuple[duckdb.DuckDBPyRelation, int]:
    """Open with `read(options)` and read every row. A value past the sniffer's sample that does
    not fit the type it guessed (`n/a` in a number column) makes DuckDB sniff everything instead.
    DuckDB errors propagate: the caller words them."""
    try:
        relation = read(options)
        return relation, count_rows(relation)
    except duckdb.ConversionException:
        relation = read({**options, "sample_size": -1})
        return relation, count_rows(relation)


def require_rows(rows: int, label: str, what: str = "the source") -> None:
    if rows == 0:
        raise BadInputError(f"{label}: {what} has no data rows")


def load_arrow(
    con: duckdb.DuckDBPyConnection,
    data: pa.Table | pa.RecordBatchReader,
    select: Sequence[str] | None = None,
) -> duckdb.DuckDBPyRelation:
    """Copy Arrow data into a DuckDB temporary table and return a relation over it.

    A table rather than a view over the Arrow object: a stream can be read only once, and every
    phase scans its source several times. `select` are SQL expressions over the Arrow columns.
    """
    table = f"mlwizard_source_{next(_table_ids)}"
    view = f"{table}_arrow"
    con.register(view, data)
    try:
        columns = ", ".join(select) if select else "*"
        con.execute(
            f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT {columns} FROM {quote_ident(view)}"
        ).fetchall()
    finally:
        con.unregister(view)
    return con.table(quote_ident(table))


def shown(names: Sequence[str], limit: int = 12) -> str:
    """A short list of names for a message."""
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def check_unique_names(label: str, names: Sequence[str]) -> None:
    """Refuse two columns with one name: DuckDB would rename or reject the second one."""
    seen: dict[str, tuple[int, str]] = {}
    for position, name in enumerate(names, start=1):
        key = name.lower()  # SQL names are case-insensitive: 'Age' and 'age' collide
        if key in seen:
            first_position, first_name = seen[key]
            where = f"columns {first_position} and {position}"
            problem = (
                f"duplicate column name '{name}' ({where})"
                if first_name == name
                else f"column names '{first_name}' and '{name}' ({where}) differ only in case, "
                "which SQL does not tell apart"
            )
            raise BadInputError(
                f"{label}: {problem}; rename one of them so every column name is unique"
            )
        seen[key] = (position, name)
