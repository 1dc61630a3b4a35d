"""Excel workbooks through fastexcel (Rust calamine) into Arrow, then into DuckDB.

DuckDB's `excel` extension downloads at run time; fastexcel ships as a wheel and returns Arrow.
Types are inferred over every row (`schema_sample_rows=None`): with fastexcel's default of 1,000
rows, a text cell further down a number column silently became null.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mlwizard.core.ingest.common import check_unique_names, first_line, load_arrow, shown
from mlwizard.core.kernel.errors import BadInputError

MAX_EXACT_INTEGER = 2**53
# fastexcel logs a warning through Python logging for columns with no typed cell; the column is
# still read (as text). Without a handler, Python would print it on stderr.
logging.getLogger("fastexcel").addHandler(logging.NullHandler())


def read_excel(
    con: duckdb.DuckDBPyConnection, path: Path, sheet: str = ""
) -> duckdb.DuckDBPyRelation:
    """The sheet named `sheet` (the first one when empty), its first row as the header."""
    import fastexcel

    try:
        workbook = fastexcel.read_excel(str(path))
    except fastexcel.FastExcelError as exc:
        raise BadInputError(
            f"{path}: cannot be read as an Excel workbook ({first_line(exc)}); "
            "re-save it as .xlsx or export it as CSV"
        ) from None
    names = list(workbook.sheet_names)
    if sheet and sheet not in names:
        raise BadInputError(
            f"{path}: no sheet named '{sheet}' (sheets: {shown(names)}); "
            "set [data] table to one of them"
        )
    if not names:
        raise BadInputError(f"{path}: the workbook has no sheets")
    chosen = sheet or names[0]
    label = f"{path} [sheet {chosen}]"
    try:
        first = workbook.load_sheet(chosen, header_row=None, n_rows=1).to_arrow().to_pylist()
        check_unique_names(label, [str(v) for v in (first or [{}])[0].values() if v is not None])
        table = workbook.load_sheet(chosen, schema_sample_rows=None).to_arrow()
    except fastexcel.FastExcelError as exc:
        raise BadInputError(f"{label}: cannot be read ({first_line(exc)})") from None
    if table.num_columns == 0 or table.num_rows == 0:
        raise BadInputError(f"{label}: the sheet has no data rows below its header")
    return load_arrow(con, _normalise(table))


def _normalise(table: pa.Table) -> pa.Table:
    """Excel stores every number as a float: whole-number columns become integers (as they
    would from a CSV), timestamps become microseconds, and empty columns become text."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_floating(kind) and _whole_numbers(column):
            column = column.cast(pa.int64())
        elif pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz=kind.tz))
        elif pa.types.is_null(kind):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _whole_numbers(column: pa.ChunkedArray) -> bool:
    values = column.drop_null()
    if len(values) == 0:
        return False
    whole = pc.all(pc.equal(pc.floor(values), values)).as_py()
    return bool(whole) and pc.max(pc.abs(values)).as_py() < MAX_EXACT_INTEGER
