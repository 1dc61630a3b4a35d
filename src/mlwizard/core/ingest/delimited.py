"""CSV and TSV through DuckDB's reader, plus the checks its sniffer does not make.

DuckDB detects the delimiter, quoting, header and types from a sample. On its own it would read a
ragged file as one text column, an unterminated quote as a literal character, rename duplicate
columns (`a`, `a_1`) and trim spaces around header names. The checks here turn the first three
into one-line errors and keep header names exactly as written.

Types: the sniffer may choose numbers, dates and times, never BOOLEAN (`TYPE_CANDIDATES`): a
`Yes`/`No` or `True`/`False` column stays text, so its values come back as written, whatever the
file format (mlwizard's own inference calls it boolean). A `;`- or tab-separated file whose
numbers are written with decimal commas (`1,5;2,7`) is read with `decimal=','` when that turns
text columns into numbers.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import duckdb

from mlwizard.core.ingest.common import (
    Snapshot,
    check_unique_names,
    first_line,
    read_and_count,
    shown,
)
from mlwizard.core.kernel.errors import BadInputError

SAMPLE_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
TYPE_CANDIDATES = ("BIGINT", "DOUBLE", "TIME", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "VARCHAR")
NUMERIC_SNIFFED = frozenset({"BIGINT", "DOUBLE"})
UTF8_HINT = (
    "re-save it as UTF-8 (Excel: Save As 'CSV UTF-8'), or convert it, "
    "e.g. `iconv -f {source} -t utf-8 in.csv > out.csv`"
)
MAGIC = (
    (b"PAR1", "a Parquet file: rename it to .parquet"),
    (b"PK\x03\x04", "a zip archive such as an Excel workbook: if it is one, rename it to .xlsx"),
    (b"SQLite format 3\x00", "a SQLite database: rename it to .db and set [data] table"),
    (b"\x1f\x8b", "gzip-compressed data: rename it to .csv.gz"),
)


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote: str  # "" when the file has no quoting
    escape: str
    skip_rows: int
    header: bool
    columns: tuple[str, ...]  # as DuckDB names them
    decimal: str = "."  # "," for decimal commas


def is_compressed(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def read_delimited(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    label: str,
    na_values: Sequence[str],
    snapshot: Snapshot | None = None,
) -> duckdb.DuckDBPyRelation:
    """A relation over one or more CSV/TSV files, every row checked to parse (and copied into
    `snapshot` by that same read, when given)."""
    for path in paths:
        check_text(path)
    dialect = sniff(con, paths[0])
    check_shape(paths[0], dialect)
    headers = [header_names(path, dialect) for path in paths]
    options: dict[str, Any] = {
        "delimiter": dialect.delimiter,
        "header": dialect.header,
        "na_values": list(na_values),
        "auto_type_candidates": list(TYPE_CANDIDATES),
    }
    if dialect.decimal != ".":
        options["decimal"] = dialect.decimal
    if headers[0] is not None and all(h == headers[0] for h in headers):
        options["names"] = list(headers[0])
    elif len(paths) > 1:
        options["union_by_name"] = True  # the files' headers differ: align columns by name
    relation, rows = _scan(con, paths, options, label, snapshot)
    if rows == 0:
        what = f"has a header ({shown(relation.columns)}) but" if dialect.header else "has"
        raise BadInputError(f"{label}: {what} no data rows")
    return relation


# -- checks on the raw bytes -------------------------------------------------------------------


def check_text(path: Path) -> None:
    """Refuse empty, binary and non-UTF-8 files before DuckDB guesses at them."""
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: the file is empty (0 bytes); export the data again")
    if is_compressed(path):
        return
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise BadInputError(f"{path}: binary data, not CSV text; it looks like {what}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        raise BadInputError(f"{path}: UTF-16 text, not UTF-8; {UTF8_HINT.format(source='utf-16')}")
    if b"\x00" in head:
        raise BadInputError(
            f"{path}: binary data, not CSV text; export the table as CSV and point --data at it"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) == SAMPLE_BYTES and exc.start >= len(head) - 3:
            return  # a character cut in two by the end of the sample
        line = head.count(b"\n", 0, exc.start) + 1
        byte = head[exc.start]
        raise BadInputError(
            f"{path}: not UTF-8 text (byte 0x{byte:02X} on line {line}); "
            + UTF8_HINT.format(source="latin1")
        ) from None


def _looks_utf16(head: bytes) -> bool:
    sample = head[:512]
    half = len(sample) // 2
    if half < 2:
        return False
    return max(sample[0::2].count(0), sample[1::2].count(0)) >= 0.9 * half


# -- dialect and shape -------------------------------------------------------------------------


def sniff(con: duckdb.DuckDBPyConnection, path: Path) -> Dialect:
    candidates = list(TYPE_CANDIDATES)
    try:
        row = _sniffed(con, path, auto_type_candidates=candidates)
        delimiter = row[0]
        decimal = "."
        if delimiter in (";", "\t", "|") and _numeric(row) < len(row[5]):
            commas = _sniffed(con, path, auto_type_candidates=candidates, decimal_separator=",")
            if _numeric(commas) > _numeric(row):
                row, decimal = commas, ","
    except duckdb.Error as exc:
        raise BadInputError(f"{path}: {csv_problem(exc)}") from None
    delimiter, quote, escape, skip_rows, header, columns = row

    def none_if_empty(value: str) -> str:
        return "" if value == "(empty)" else value

    return Dialect(
        delimiter=delimiter,
        quote=none_if_empty(quote),
        escape=none_if_empty(escape),
        skip_rows=int(skip_rows),
        header=bool(header),
        columns=tuple(c["name"] for c in columns),
        decimal=decimal,
    )


def _sniffed(con: duckdb.DuckDBPyConnection, path: Path, **options: Any) -> tuple[Any, ...]:
    named = "".join(f", {key} := ${key}" for key in options)
    return tuple(
        con.execute(
            "SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Columns "
            f"FROM sniff_csv($path{named})",
            {"path": str(path), **options},
        ).fetchall()[0]
    )


def _numeric(row: tuple[Any, ...]) -> int:
    return sum(c["type"] in NUMERIC_SNIFFED for c in row[5])


def check_shape(path: Path, dialect: Dialect) -> None:
    """Find what DuckDB's sniffer tolerates silently: ragged rows and unclosed quotes."""
    with _open_text(path) as handle:
        head = handle.read(SAMPLE_BYTES)
    first = head.split("\n", 1)[0]
    if len(dialect.columns) == 1:
        counts = {d: first.count(d) for d in DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d])
        if counts[delimiter]:
            _raise_if_ragged(path, delimiter)
    if not dialect.quote and len(dialect.delimiter) == 1:
        opens_quote = re.compile(f'(^|\n|{re.escape(dialect.delimiter)})"')
        if opens_quote.search(head):
            _raise_if_unclosed_quote(path, dialect.delimiter)


def _raise_if_ragged(path: Path, delimiter: str) -> None:
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        expected = None
        for row in reader:
            if not row:
                continue
            if expected is None:
                expected = len(row)
            elif len(row) != expected:
                raise BadInputError(
                    f"{path}: line {reader.line_num} has {len(row)} fields where the header has "
                    f"{expected}; fix that row (a value containing '{_shown_char(delimiter)}' "
                    "must be quoted)"
                )


def _raise_if_unclosed_quote(path: Path, delimiter: str) -> None:
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as exc:
            if "end of data" in str(exc) or "EOF" in str(exc):
                raise BadInputError(
                    f"{path}: line {start} opens a quoted value that is never closed; "
                    'fix the quoting on that row (a " inside a value is written "")'
                ) from None


def _shown_char(delimiter: str) -> str:
    return "\\t" if delimiter == "\t" else delimiter


# -- header names ------------------------------------------------------------------------------


def header_names(path: Path, dialect: Dialect) -> tuple[str, ...] | None:
    """The header exactly as written (DuckDB trims spaces); None to keep DuckDB's names.

    Refuses duplicate names: DuckDB would silently rename the second one.
    """
    if not dialect.header or len(dialect.delimiter) != 1:
        return None
    options: dict[str, Any] = {"delimiter": dialect.delimiter}
    if not dialect.quote:
        options["quoting"] = csv.QUOTE_NONE
    else:
        options["quotechar"] = dialect.quote
        if dialect.escape and dialect.escape != dialect.quote:
            options.update(escapechar=dialect.escape, doublequote=False)
    with _open_text(path) as handle:
        for _ in range(dialect.skip_rows):
            handle.readline()
        record = next(csv.reader(handle, **options), [])
    if len(record) != len(dialect.columns):
        return None
    names = tuple(
        raw if raw.strip() else duck for raw, duck in zip(record, dialect.columns, strict=True)
    )
    check_unique_names(str(path), names)
    return names


@contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    if is_compressed(path):
        with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
            yield handle
    else:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            yield handle


# -- the full read -----------------------------------------------------------------------------


def _read(
    con: duckdb.DuckDBPyConnection, paths: Sequence[Path], options: dict[str, Any]
) -> duckdb.DuckDBPyRelation:
    files: str | list[str] = str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]
    return con.read_csv(files, **options)


def _scan(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    options: dict[str, Any],
    label: str,
    snapshot: Snapshot | None,
) -> tuple[duckdb.DuckDBPyRelation, int]:
    try:
        return read_and_count(lambda o: _read(con, paths, o), options, snapshot)
    except duckdb.Error as exc:
        raise BadInputError(f"{_failing_file(exc, label)}: {csv_problem(exc)}") from None


def _failing_file(exc: BaseException, label: str) -> str:
    found = re.search(r"^\s*file = (.+)$", str(exc), re.MULTILINE)
    return found.group(1).strip() if found else label


def csv_problem(exc: BaseException) -> str:
    """DuckDB's many-line CSV error as one actionable sentence."""
    text = str(exc)
    found = re.search(r"CSV Error on Line: (\d+)", text)
    line = found.group(1) if found else "?"
    if "not utf-8 encoded" in text.lower():
        return f"not UTF-8 text (invalid bytes on line {line}); " + UTF8_HINT.format(
            source="latin1"
        )
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if columns:
        expected, got = columns.groups()
        return (
            f"line {line} has {got} fields where the header has {expected}; fix that row "
            "(a value containing the delimiter must be quoted)"
        )
    if "unterminated quote" in text.lower():
        return (
            f"line {line} has a quoted value that is never closed; fix the quoting on that row "
            '(a " inside a value is written "")'
        )
    convert = re.search(r'converting column "(.*)"\. Could not convert string "(.*)" to', text)
    if convert:
        column, value = convert.groups()
        return f"line {line}: column '{column}' holds '{value}', which cannot be read"
    return f"cannot be read as CSV: {first_line(exc)}"
