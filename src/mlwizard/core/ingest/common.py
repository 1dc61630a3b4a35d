"""Helpers shared by the readers: error text, full-scan checks, the snapshot, Arrow in DuckDB."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.errors import BadInputError, CancelledError
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


@dataclass(frozen=True)
class Snapshot:
    """Where a reader copies the source it reads: a Parquet file, and the connection that then
    reads that file instead of the source (so later scans skip the parsing)."""

    con: duckdb.DuckDBPyConnection
    path: Path

    def take(self, relation: duckdb.DuckDBPyRelation) -> tuple[duckdb.DuckDBPyRelation, int]:
        """`write_snapshot(relation)`, then a relation over the snapshot, and its row count."""
        rows = write_snapshot(relation, self.path)
        return self.con.read_parquet(str(self.path)), rows


def write_snapshot(relation: duckdb.DuckDBPyRelation, path: Path) -> int:
    """Every row of `relation` into the Parquet file `path`, written atomically; the row count.

    The one place a source is copied into its snapshot: the data phase reads the source once,
    and this write is that read (parse errors anywhere in the source surface here)."""
    with atomic.atomic_path(path) as tmp:
        relation.write_parquet(str(tmp), compression="snappy")
    return int(pq.ParquetFile(path).metadata.num_rows)


def read_and_count(
    read: Callable[[dict[str, Any]], duckdb.DuckDBPyRelation],
    options: dict[str, Any],
    snapshot: Snapshot | None = None,
) -> tuple[duckdb.DuckDBPyRelation, int]:
    """Open with `read(options)` and read every row. A value past the sniffer's sample that does
    not fit the type it guessed (`n/a` in a number column) makes DuckDB sniff everything instead.
    DuckDB errors propagate: the caller words them. With `snapshot`, that one read writes the
    snapshot and the relation returned reads it."""

    def consume(relation: duckdb.DuckDBPyRelation) -> tuple[duckdb.DuckDBPyRelation, int]:
        return (relation, count_rows(relation)) if snapshot is None else snapshot.take(relation)

    try:
        return consume(read(options))
    except duckdb.ConversionException:
        return consume(read({**options, "sample_size": -1}))


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


@contextmanager
def interrupt_on(
    con: duckdb.DuckDBPyConnection, cancel: threading.Event, message: str
) -> Iterator[None]:
    """Interrupt the query running on `con` as soon as `cancel` is set; whatever the block then
    raises (DuckDB's interrupt, or a reader's wording of it) becomes `CancelledError(message)`."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.1):
                con.interrupt()
                return

    watcher = threading.Thread(target=watch, name="mlwizard-duckdb-interrupt", daemon=True)
    watcher.start()
    try:
        yield
    except (duckdb.Error, BadInputError, RuntimeError) as exc:
        if cancel.is_set():
            raise CancelledError(message) from None
        raise exc
    finally:
        done.set()
        watcher.join()
