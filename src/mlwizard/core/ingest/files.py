"""Self-describing files read by DuckDB's built-in extensions: Parquet and JSON/NDJSON."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.ingest.common import Snapshot, first_line, read_and_count, require_rows
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.sql import quote_ident


def _files(paths: Sequence[Path]) -> str | list[str]:
    return str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]


def read_parquet(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    label: str,
    snapshot: Snapshot | None = None,
) -> duckdb.DuckDBPyRelation:
    for path in paths:  # open each footer alone, so that a damaged file is named
        try:
            con.read_parquet(str(path)).limit(1).fetchall()
        except duckdb.Error as exc:
            raise BadInputError(f"{path}: {parquet_problem(exc)}") from None
    try:
        relation, rows = read_and_count(
            lambda o: con.read_parquet(_files(paths), **o),
            {"union_by_name": len(paths) > 1},
            snapshot,
        )
    except duckdb.Error as exc:
        raise BadInputError(f"{label}: {parquet_problem(exc)}") from None
    require_rows(rows, label, "the Parquet data")
    return relation


def parquet_problem(exc: BaseException) -> str:
    text = str(exc)
    if "magic bytes" in text.lower():
        return (
            "not a valid Parquet file (no Parquet footer: the file is truncated or is not "
            "Parquet); copy or export it again"
        )
    return f"cannot be read as Parquet: {first_line(exc)}"


def read_json(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    label: str,
    snapshot: Snapshot | None = None,
) -> duckdb.DuckDBPyRelation:
    """JSON records: an array of objects or one object per line (NDJSON), detected."""
    for path in paths:
        if path.stat().st_size == 0:
            raise BadInputError(f"{path}: the file is empty (0 bytes); export the data again")
    options: dict[str, Any] = {"records": "true"}
    try:
        relation, rows = read_and_count(lambda o: _read_json(con, paths, o), options, snapshot)
    except duckdb.Error as exc:
        raise BadInputError(f"{label}: {json_problem(exc)}") from None
    require_rows(rows, label, "the JSON data")
    return relation


def _read_json(
    con: duckdb.DuckDBPyConnection, paths: Sequence[Path], options: dict[str, Any]
) -> duckdb.DuckDBPyRelation:
    relation = con.read_json(_files(paths), **options)
    # A key whose values mix types comes back as JSON text ('"x"', '1'): unquote the scalars.
    exprs = [
        f"{quote_ident(name)} ->> '$' AS {quote_ident(name)}"
        if str(kind) == "JSON"
        else quote_ident(name)
        for name, kind in zip(relation.columns, relation.types, strict=True)
    ]
    return relation.select(", ".join(exprs))


def json_problem(exc: BaseException) -> str:
    text = str(exc)
    if "expected records" in text:
        return 'the JSON holds plain values, not records; write one object per record: {"col": 1}'
    malformed = re.search(r"at byte \d+ in line (\d+): ([^\n]*)", text)
    if malformed:
        line, reason = malformed.groups()
        return (
            f"not valid JSON (line {line}: {reason.strip().rstrip('.')}); fix it, or export "
            "one JSON object per line (NDJSON)"
        )
    return f"cannot be read as JSON: {first_line(exc)}"
