"""Reading the user's data through DuckDB, with one-line errors for bad input.

`[data] source` is a file (CSV/TSV, Parquet, JSON/NDJSON, Excel, SQLite), a glob of files
(`data/*.parquet`), or a database URL (`sqlite:///path.db`, `postgresql://user@host/db`) with
`[data] table` or `[data] query`. For Excel, `table` names the sheet. Remote files
(`s3://bucket/key` or an S3 glob, `https://host/file.csv`: `ingest.remote`) and paginated JSON
APIs (`ingest.api`) are fetched into the project's cache and read like local files. The readers
live in `mlwizard.core.ingest`; they are imported when a source of their kind is read.

Paths and values are always passed to DuckDB as arguments, never formatted into SQL; column names
from users' files go through `quote_ident`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb

from mlwizard.core.ingest.common import Snapshot
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value

if TYPE_CHECKING:
    from mlwizard.core.kernel.config import Config
    from mlwizard.core.kernel.workspace import Workspace

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
COMPRESSED_CSV_SUFFIXES = (".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
FileKind = Literal["csv", "parquet", "json", "excel", "sqlite"]
_KINDS: dict[str, FileKind] = {
    **dict.fromkeys(CSV_SUFFIXES, "csv"),
    **dict.fromkeys(PARQUET_SUFFIXES, "parquet"),
    **dict.fromkeys(JSON_SUFFIXES, "json"),
    **dict.fromkeys(EXCEL_SUFFIXES, "excel"),
    **dict.fromkeys(SQLITE_SUFFIXES, "sqlite"),
}
SUPPORTED = ", ".join(sorted(_KINDS) + list(COMPRESSED_CSV_SUFFIXES))
GLOB_KINDS = ("csv", "parquet", "json")  # kinds a glob of several files may match


DUCKDB_MEMORY_LIMIT = "1GB"  # beyond it DuckDB spills to disk: the data phase's peak stays bounded
# DuckDB's allocator keeps the memory a finished query freed for the next one (~150-250 MB after
# the snapshot write and the profile scan of 2M rows), which then sits beside the rows read into
# Arrow. With its background threads purging, and flushing after every task, that memory goes
# back to the system: the data phase's peak on 2M x 20 fell from 939-964 MB to 789-813 MB with
# no measurable cost in time (docs/benchmarks.md).
DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "memory_limit": DUCKDB_MEMORY_LIMIT,
    "allocator_background_threads": True,
    "allocator_flush_threshold": "1MB",
}


def connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:", config=DUCKDB_CONFIG)


def file_kind(path: Path) -> FileKind | None:
    if path.name.lower().endswith(COMPRESSED_CSV_SUFFIXES):
        return "csv"
    return _KINDS.get(path.suffix.lower())


def read_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    na_values: Sequence[str] = ("",),
    sheet: str = "",
    snapshot: Snapshot | None = None,
) -> duckdb.DuckDBPyRelation:
    """A relation over one data file, every row checked to parse; `BadInputError` names the file.

    `sheet` picks an Excel sheet (the first one by default). With `snapshot`, the one read that
    checks the rows also copies them into the snapshot, and the relation reads the snapshot.
    """
    from mlwizard.core.ingest import delimited, excel, files

    check_file(path)
    kind = file_kind(path)
    if kind == "csv":
        return delimited.read_delimited(con, [path], str(path), na_values, snapshot)
    if kind == "parquet":
        return files.read_parquet(con, [path], str(path), snapshot)
    if kind == "json":
        return files.read_json(con, [path], str(path), snapshot)
    if kind == "excel":
        return _snapshotted(excel.read_excel(con, path, sheet), snapshot)
    if kind == "sqlite":
        raise BadInputError(f"{path}: a SQLite database; set it as [data] source with a table")
    raise BadInputError(
        f"{path}: unsupported file type '{path.suffix.lower()}' (supported: {SUPPORTED})"
    )


def check_file(path: Path) -> None:
    """A path that should be one data file: missing and folders get their own messages."""
    if path.is_dir():
        raise BadInputError(
            f"{path}: a folder, not a file; point at one file in it, or at a glob of its files "
            f"such as '{path / '*.csv'}'"
        )
    if not path.exists():
        raise BadInputError(f"{path}: file not found")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")


def _snapshotted(
    relation: duckdb.DuckDBPyRelation, snapshot: Snapshot | None
) -> duckdb.DuckDBPyRelation:
    """Sources already loaded into DuckDB (Excel, SQLite, PostgreSQL) copied to the snapshot."""
    return relation if snapshot is None else snapshot.take(relation)[0]


# -- the configured source -----------------------------------------------------------------------

SourceKind = Literal["file", "glob", "sqlite", "postgres", "remote", "api"]


@dataclass(frozen=True)
class Source:
    """Where `[data] source` points. `label` names it in messages (never with a password)."""

    kind: SourceKind
    label: str
    path: Path | None = None  # a file, or a SQLite database
    pattern: str = ""  # a glob, relative to the project
    url: str = field(default="", repr=False)  # a database or remote URL, secrets included


def resolve_source(ws: Workspace, config: Config) -> Source:
    raw = config.data.source.strip()
    if not raw:
        ws.source_path(config)  # raises, saying how to set it
    if "://" in raw:
        return _url_source(ws, raw, bool(config.data.api))
    if is_glob(raw):
        return Source("glob", str(ws.root / raw), pattern=raw)
    path = ws.source_path(config)
    if file_kind(path) == "sqlite":
        return Source("sqlite", str(path), path=path)
    return Source("file", str(path), path=path)


def _url_source(ws: Workspace, raw: str, is_api: bool = False) -> Source:
    from mlwizard.core.ingest import postgres, remote

    scheme = raw.split("://", 1)[0].lower()
    if is_api:
        if scheme not in ("http", "https"):
            raise BadInputError(
                f"{ws.config_path}: [data] source: an API's url must be http(s)://, not "
                f"{remote.redact(raw)}"
            )
        return Source("api", remote.redact(raw), url=raw)
    if scheme in remote.SCHEMES:
        return Source("remote", remote.redact(raw), url=raw)
    if scheme in postgres.SCHEMES:
        return Source("postgres", postgres.redact(raw), url=raw)
    if scheme == "sqlite" and raw.startswith("sqlite:///") and len(raw) > len("sqlite:///"):
        path = ws.resolve(raw[len("sqlite:///") :])  # sqlite:///rel.db, sqlite:////abs.db
        return Source("sqlite", str(path), path=path)
    shown = postgres.redact(raw) if scheme.startswith("postgres") else raw.split("?", 1)[0]
    raise BadInputError(
        f"{ws.config_path}: [data] source '{shown}' is not a source mlwizard reads (a file, a glob "
        "such as data/*.parquet, sqlite:///path.db, postgresql://user@host:port/db, "
        "s3://bucket/key or https://host/file.csv)"
    )


def glob_matches(ws: Workspace, pattern: str) -> list[Path]:
    """The files a glob matches, sorted; `**` crosses folders."""
    full = pattern if Path(pattern).is_absolute() else str(ws.root / pattern)
    return sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())


def _read_glob(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    source: Source,
    na_values: Sequence[str],
    snapshot: Snapshot | None,
) -> duckdb.DuckDBPyRelation:
    paths = glob_matches(ws, source.pattern)
    if not paths:
        raise BadInputError(f"{source.label}: no files match; check [data] source")
    return read_files(con, paths, source.label, na_values, snapshot, excel=False)


def read_files(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    label: str,
    na_values: Sequence[str],
    snapshot: Snapshot | None,
    sheet: str = "",
    excel: bool = True,
) -> duckdb.DuckDBPyRelation:
    """Local files of one kind as one relation; messages name them by `label`. One Excel file
    is read too when `excel` (a glob must match CSV, Parquet or JSON files)."""
    from mlwizard.core.ingest import delimited, files
    from mlwizard.core.ingest import excel as excel_reader

    if excel and len(paths) == 1 and file_kind(paths[0]) == "excel":
        return _snapshotted(excel_reader.read_excel(con, paths[0], sheet), snapshot)
    kinds = sorted({str(file_kind(p)) for p in paths})
    if len(kinds) > 1 or kinds[0] not in GLOB_KINDS:
        suffixes = ", ".join(sorted({p.suffix for p in paths}))
        raise BadInputError(
            f"{label}: matches {suffixes or 'unnamed'} files; a glob must match files of one "
            "kind among CSV, Parquet and JSON"
        )
    if kinds[0] == "csv":
        return delimited.read_delimited(con, paths, label, na_values, snapshot)
    if kinds[0] == "parquet":
        return files.read_parquet(con, paths, label, snapshot)
    return files.read_json(con, paths, label, snapshot)


def open_source(
    con: duckdb.DuckDBPyConnection, ws: Workspace, config: Config, snapshot: Path | None = None
) -> tuple[duckdb.DuckDBPyRelation, str]:
    """The configured source as a relation, and a label naming it in messages.

    Every row has been read once: parse errors anywhere in the source are raised here. With
    `snapshot` (a Parquet path), that read copies every row into it and the relation returned
    reads the snapshot: the source is read once, whatever scans follow.
    """
    source = resolve_source(ws, config)
    data = config.data
    target = None if snapshot is None else Snapshot(con, snapshot)
    if source.kind == "postgres":
        from mlwizard.core.ingest.postgres import read_postgres

        relation, label = read_postgres(con, source.url, data.table, data.query)
        return _snapshotted(relation, target), label
    if source.kind == "sqlite":
        from mlwizard.core.ingest.sqlite import read_sqlite

        assert source.path is not None
        relation, label = read_sqlite(con, source.path, data.table, data.query)
        return _snapshotted(relation, target), label
    if source.kind == "glob":
        return _read_glob(con, ws, source, data.na_values, target), source.label
    if source.kind == "remote":
        from mlwizard.core.ingest import remote

        paths = remote.fetch(ws, source.url)
        relation = read_files(con, paths, source.label, data.na_values, target, data.table)
        return relation, source.label
    if source.kind == "api":
        from mlwizard.core.ingest import api, files

        api.check_settings(data.api, f"{ws.config_path}: [data] source")
        path, _ = api.fetch(ws, source.url, data.api)
        return files.read_json(con, [path], source.label, target), source.label
    assert source.path is not None
    relation = read_table(con, source.path, data.na_values, sheet=data.table, snapshot=target)
    return relation, source.label


def source_fingerprint(ws: Workspace, config: Config) -> str:
    """A hash of the source's content: what makes a new data version.

    Files: their content hash (cached by size and mtime). Globs: the sorted (name, hash) list.
    SQLite: the database file (and its write-ahead log). PostgreSQL: a hash of the rows,
    computed on the server. "missing", "invalid" or "unavailable" when it cannot be read: the
    phase then runs, and reading the source says what is wrong.
    """
    try:
        source = resolve_source(ws, config)
    except BadInputError:
        return "invalid"
    if source.kind == "postgres":
        from mlwizard.core.ingest.postgres import fingerprint

        return fingerprint(source.url, config.data.table, config.data.query)
    if source.kind in ("remote", "api"):
        from mlwizard.core.ingest import api, remote

        try:  # the server's version (ETag, Last-Modified), or the content's hash
            if source.kind == "api":
                return api.fetch(ws, source.url, config.data.api)[1]
            return remote.fingerprint(source.url)
        except BadInputError:
            return "unavailable"
    if source.kind == "glob":
        paths = glob_matches(ws, source.pattern)
        if not paths:
            return "missing"
        return hash_value([[ws.relative(p), ws.file_hash(p)] for p in paths])
    assert source.path is not None
    if not source.path.is_file():
        return "missing"
    wal = source.path.with_name(source.path.name + "-wal")
    if source.kind == "sqlite" and wal.is_file():
        return hash_value([ws.file_hash(source.path), ws.file_hash(wal)])
    return ws.file_hash(source.path)


def column_types(relation: duckdb.DuckDBPyRelation) -> dict[str, str]:
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}


def require_column(relation: duckdb.DuckDBPyRelation, column: str, path: Path | str) -> None:
    check_target(relation.columns, column, str(path))


def column_hint(name: str, columns: Sequence[str]) -> str:
    """'; did you mean 'churn'?' when `name` matches a column but for case, else ''."""
    matches = [c for c in columns if c.lower() == name.lower() and c != name]
    return f"; did you mean '{matches[0]}'? (column names are case-sensitive)" if matches else ""


def check_target(columns: Sequence[str], target: str, label: str) -> None:
    """The target must be one of `columns`, exactly as written (the CLI's `new`, the TUI)."""
    if target and target not in columns:
        hint = column_hint(target, columns)
        raise BadInputError(
            f"{label}: target column '{target}' not found"
            + (
                hint
                or f" (columns: {', '.join(columns[:12])}{' ...' if len(columns) > 12 else ''})"
            )
            + ("" if hint else "; pass --target with one of them")
        )


def file_columns(path: Path, sheet: str = "") -> list[str] | None:
    """A data file's column names as written, read from its header or footer (not its rows);
    None for a kind whose columns need a table name (SQLite)."""
    from mlwizard.core.ingest import delimited

    check_file(path)
    kind = file_kind(path)
    con = connect()
    if kind == "csv":
        delimited.check_text(path)
        dialect = delimited.sniff(con, path)
        return list(delimited.header_names(path, dialect) or dialect.columns)
    if kind in ("parquet", "json", "excel"):
        return list(read_table(con, path, sheet=sheet).columns)
    return None


def is_glob(raw: str) -> bool:
    return "*" in raw or "?" in raw


def source_value(root: Path, data: str, cwd: Path | None = None) -> str:
    """What a path given on the command line (or in the TUI) is stored as in `[data] source`.

    One rule for files and globs: a relative path is relative to the working directory; it is
    stored relative to the project when it lies inside it, else absolute. Database URLs are kept
    as given; a folder, a missing file and a glob matching nothing are refused here."""
    if "://" in data:
        return data
    path = Path(data).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if is_glob(data):
        if not [p for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]:
            raise BadInputError(f"{data}: no files match this glob (from {cwd or Path.cwd()})")
    else:
        check_file(path)
    path = Path(os.path.normpath(path))
    try:
        return str(path.relative_to(Path(os.path.normpath(root.resolve()))))
    except ValueError:
        return str(path)
