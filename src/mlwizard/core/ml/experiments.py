"""The project's experiment store: every candidate run, in an embedded DuckDB file.

Only the phase's parent process writes, one short connection per run, so a reader (the TUI, a
notebook) holds the file lock only briefly. Values are always bound, never formatted into SQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.errors import MlwizardError

STORE_FILE = "experiments.duckdb"
TABLE = "runs"
COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR PRIMARY KEY",
    "phase_run_id": "VARCHAR NOT NULL",
    "candidate": "VARCHAR NOT NULL",
    "status": "VARCHAR NOT NULL",  # done | failed | skipped | cancelled
    "params": "JSON",
    "metrics": "JSON",
    "duration_s": "DOUBLE",
    "data_fingerprint": "VARCHAR",
    "seed": "BIGINT",
    "started_at": "TIMESTAMPTZ",
    "deployable": "BOOLEAN",
    "reason": "VARCHAR",
    "onnx_path": "VARCHAR",
}
_JSON_COLUMNS = {"params", "metrics"}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ExperimentStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise MlwizardError(f"experiment store {self.path} cannot be opened: {exc}") from None
        columns = ", ".join(f"{_ident(name)} {kind}" for name, kind in COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {_ident(TABLE)} ({columns})")
        return con

    def record(self, row: dict[str, Any]) -> None:
        """Insert one run; `row` has the keys of `COLUMNS` (missing ones are NULL)."""
        unknown = row.keys() - COLUMNS.keys()
        if unknown:
            raise ValueError(f"unknown run columns: {sorted(unknown)}")
        names = list(COLUMNS)
        values = [
            json.dumps(row.get(n), default=str) if n in _JSON_COLUMNS else row.get(n) for n in names
        ]
        if isinstance(values[names.index("started_at")], str):
            values[names.index("started_at")] = datetime.fromisoformat(row["started_at"])
        sql = (
            f"INSERT INTO {_ident(TABLE)} ({', '.join(map(_ident, names))}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        with self._connect() as con:
            con.execute(sql, values)

    def runs(self, phase_run_id: str | None = None) -> list[dict[str, Any]]:
        """Runs, oldest first; JSON columns decoded."""
        sql = f"SELECT * FROM {_ident(TABLE)}"
        params: list[Any] = []
        if phase_run_id is not None:
            sql += f" WHERE {_ident('phase_run_id')} = ?"
            params.append(phase_run_id)
        sql += f" ORDER BY {_ident('started_at')}, {_ident('candidate')}"
        with self._connect() as con:
            cursor = con.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        for row in rows:
            for name in _JSON_COLUMNS:
                row[name] = json.loads(row[name]) if row[name] is not None else None
        return rows
