"""The service's request log: NDJSON, one line per model per scored row.

Each line: {"ts", "request_id", "model": "champion"|"challenger", "version", "served",
"features": {raw row}, "prediction", "probabilities": {label: p} or null}. Monitoring reads the
served lines' features with DuckDB; the shadow evaluation pairs both models' lines per request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.kernel.errors import BadInputError

LOG_SUFFIXES = (".ndjson", ".jsonl", ".log")
REQUIRED = ("request_id", "model", "served", "features")


def is_request_log(path: Path) -> bool:
    """A file whose first line is a request-log entry."""
    if path.suffix.lower() not in LOG_SUFFIXES or not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return False
                return isinstance(first, dict) and all(k in first for k in REQUIRED)
    return False


def served_rows(con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyRelation:
    """The answered requests (one row each): request_id and the raw feature columns."""
    try:
        relation = con.sql(
            "SELECT request_id, unnest(features) FROM read_json(?, format='newline_delimited') "
            "WHERE served",
            params=[str(path)],
        )
        relation.limit(1).fetchall()
    except duckdb.Error as exc:
        raise BadInputError(f"{path}: not a readable request log ({exc})") from None
    return relation


def entries(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, parsed; a damaged line names its number."""
    found = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise BadInputError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(entry, dict) or any(k not in entry for k in REQUIRED):
                raise BadInputError(
                    f"{path}:{number}: not a request-log entry (needs {', '.join(REQUIRED)})"
                )
            found.append(entry)
    return found
