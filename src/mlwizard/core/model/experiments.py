"""The project's experiment store: every candidate run, in an embedded DuckDB file.

Only the phase's parent process writes, one short connection per run, so a reader (the TUI, a
notebook, `mlwizard experiments`) holds the file lock only briefly; a connection that meets
another process's lock retries for a few seconds. Values are always bound, never formatted into
SQL.

The schema only grows: opening a store adds the columns and tables a newer mlwizard knows, so a
file written by an older version keeps working (old rows read NULL in the new columns), and
reading a file from a newer version ignores columns it does not know.

When an MLflow tracking URI is configured (argument, or `MLFLOW_TRACKING_URI`), every recorded
run is mirrored to MLflow too, on a background thread (see `tracking.py`): the DuckDB row is
written at once, and gets its MLflow run id, or the error that prevented it, when logging is done.
`ExperimentStore.flush()` waits for that and raises the first failure.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from mlwizard.core.contract.tasks import METRICS, Direction
from mlwizard.core.kernel.errors import MlwizardError
from mlwizard.core.kernel.formatting import utc_now
from mlwizard.core.kernel.versions import package_versions

if TYPE_CHECKING:
    from mlwizard.core.model.tracking import MlflowTracker

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
    # Added after the first release: plain types only, so that ALTER TABLE can add them.
    "cv_folds": "JSON",  # one dict of metrics per fold, in fold order
    "artifacts": "JSON",  # artifact name -> path relative to the project root
    "package_versions": "JSON",  # filled by the store when the row carries none
    "recorded_at": "TIMESTAMPTZ",  # filled by the store
    "mlflow_run_id": "VARCHAR",  # filled by the store when runs are mirrored to MLflow ...
    "tracking_error": "VARCHAR",  # ... or why that failed
}
_JSON_COLUMNS = {"params", "metrics", "cv_folds", "artifacts", "package_versions"}

# What a model phase run chose, when the phase reports it (`record_choice`).
CHOICES_TABLE = "phase_runs"
CHOICE_COLUMNS: dict[str, str] = {
    "phase_run_id": "VARCHAR PRIMARY KEY",
    "chosen_run_id": "VARCHAR",
    "chosen_candidate": "VARCHAR",
    "metric": "VARCHAR",
    "direction": "VARCHAR",
    "test": "JSON",
    "recorded_at": "TIMESTAMPTZ",
    # Added with experiment hypotheses (issue 12): what the run set out to test, on which data,
    # the chosen settings, and the next hypotheses its error analysis proposed.
    "hypothesis": "VARCHAR",
    "data_fingerprint": "VARCHAR",
    "params": "JSON",
    "proposals": "JSON",
}
SCHEMA = {TABLE: COLUMNS, CHOICES_TABLE: CHOICE_COLUMNS}

_MIGRATION_LOCK = threading.Lock()
LOCK_WAIT_S = 10.0  # how long a connection waits for another process's lock
MIN_ID_PREFIX = 4


@cache
def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _base_type(kind: str) -> str:
    return kind.split()[0]


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


# -- the file --------------------------------------------------------------------------------------
@contextmanager
def _open(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection with the schema brought up to date.

    Read-write even for reads: within one process DuckDB refuses a read-only connection while a
    read-write one is open (the TUI reads while its worker thread trains).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.05
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise MlwizardError(f"experiment store {path} cannot be opened: {exc}") from None
            if time.monotonic() > deadline:
                raise MlwizardError(
                    f"experiment store {path} is busy: another mlwizard process holds it; "
                    "try again when it has finished"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        except duckdb.Error as exc:
            raise MlwizardError(f"experiment store {path} cannot be opened: {exc}") from None
    try:
        with _MIGRATION_LOCK:  # the MLflow thread may open the store while the phase does
            _migrate(con)
        yield con
    finally:
        con.close()


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables; add missing columns (new columns are nullable, without defaults)."""
    for table, columns in SCHEMA.items():
        spec = ", ".join(f"{_ident(name)} {kind}" for name, kind in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {_ident(table)} ({spec})")
        existing = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema()",
                [table],
            ).fetchall()
        }
        for name, kind in columns.items():
            if name not in existing:
                con.execute(
                    f"ALTER TABLE {_ident(table)} ADD COLUMN {_ident(name)} {_base_type(kind)}"
                )


def _select(path: Path, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with _open(path) as con:
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _decode(row: dict[str, Any], json_columns: Iterable[str]) -> dict[str, Any]:
    for name in json_columns:
        if row.get(name) is not None:
            row[name] = json.loads(row[name])
    for name, value in row.items():
        if isinstance(value, datetime):
            row[name] = value.astimezone(UTC)
    return row


def _folds(metrics: Any) -> list[dict[str, Any]] | None:
    cv = metrics.get("cv") if isinstance(metrics, dict) else None
    scores = cv.get("scores") if isinstance(cv, dict) else None
    if not isinstance(scores, list):
        return None
    return [{"fold": i, "score": score} for i, score in enumerate(scores)]


def _read_runs(path: Path, phase_run_id: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT * FROM {_ident(TABLE)}"
    params: list[Any] = []
    if phase_run_id is not None:
        sql += f" WHERE {_ident('phase_run_id')} = ?"
        params.append(phase_run_id)
    sql += f" ORDER BY {_ident('started_at')}, {_ident('candidate')}, {_ident('run_id')}"
    return [_decode(row, _JSON_COLUMNS) for row in _select(path, sql, params)]


def _read_choices(path: Path) -> dict[str, dict[str, Any]]:
    rows = _select(path, f"SELECT * FROM {_ident(CHOICES_TABLE)}", [])
    return {row["phase_run_id"]: _decode(row, ("test", "params", "proposals")) for row in rows}


# -- writing ---------------------------------------------------------------------------------------
def _project_relative(uri: str, root: Path) -> str:
    """`sqlite:///mlruns.db` in mlwizard.toml means beside the project, not the current folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri.removeprefix(prefix)).resolve())
    return uri


class ExperimentStore:
    """The store of one project. With a tracking URI, runs are mirrored to MLflow as well.

    `tracking_uri` defaults to `MLFLOW_TRACKING_URI` (an empty string counts as unset), so
    `ExperimentStore(path)` tracks to MLflow when the environment says so. `experiment` names
    the MLflow experiment (default: `MLFLOW_EXPERIMENT_NAME`, else the project folder's name).
    `root` is the project root that artifact paths are relative to (default: the folder that
    holds `.mlwizard/`). With a URI, construction starts connecting to MLflow in the background
    (so that it overlaps training): to only read, use `list_runs` and `list_phase_runs`.
    """

    def __init__(
        self,
        path: Path,
        tracking_uri: str | None = None,
        *,
        experiment: str | None = None,
        root: Path | None = None,
    ) -> None:
        self.path = path
        self.root = root if root is not None else path.resolve().parent.parent
        uri = _project_relative(
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""), self.root
        )
        self.tracker: MlflowTracker | None = None
        if uri:
            from mlwizard.core.model.tracking import MlflowTracker

            name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or self.root.name
            self.tracker = MlflowTracker(uri, name, self.root)  # raises if mlflow is missing

    def record(self, row: dict[str, Any]) -> None:
        """Insert one run; `row` has keys of `COLUMNS`. Missing ones are NULL, except those the
        store fills: `recorded_at`, `package_versions`, `artifacts` (from `onnx_path`) and
        `cv_folds` (from the per-fold scores in `metrics["cv"]["scores"]`)."""
        unknown = row.keys() - COLUMNS.keys()
        if unknown:
            raise ValueError(f"unknown run columns: {sorted(unknown)}")
        row = dict(row)
        row["started_at"] = _as_datetime(row.get("started_at"))
        row["recorded_at"] = _as_datetime(row.get("recorded_at")) or utc_now()
        if row.get("package_versions") is None:
            row["package_versions"] = package_versions()
        if row.get("artifacts") is None and row.get("onnx_path"):
            row["artifacts"] = {"onnx": row["onnx_path"]}
        if row.get("cv_folds") is None:
            row["cv_folds"] = _folds(row.get("metrics"))
        names = list(COLUMNS)
        values = [
            json.dumps(row.get(n), default=str) if n in _JSON_COLUMNS else row.get(n) for n in names
        ]
        sql = (
            f"INSERT INTO {_ident(TABLE)} ({', '.join(map(_ident, names))}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        with _open(self.path) as con:
            con.execute(sql, values)
        if self.tracker is not None:
            self.tracker.submit_run(row, self._logged)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the runs recorded so far are in MLflow; raise the first failure as a
        `TrackingError`. Without a tracking URI, returns at once."""
        if self.tracker is None:
            return
        failure = self.tracker.flush(timeout)
        if failure is not None:
            raise self.tracker.failed(failure, kept_in=self.path) from failure

    def _logged(self, run_id: str, mlflow_run_id: str | None, error: Exception | None) -> None:
        """Called on the tracker's thread once a run is in MLflow, or failed to get there."""
        message = None
        if error is not None:
            message = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
        with _open(self.path) as con:
            con.execute(
                f"UPDATE {_ident(TABLE)} SET {_ident('mlflow_run_id')} = ?, "
                f"{_ident('tracking_error')} = ? WHERE {_ident('run_id')} = ?",
                [mlflow_run_id, message[:500] if message else None, run_id],
            )

    def record_choice(
        self,
        phase_run_id: str,
        candidate: str,
        *,
        metric: str,
        direction: Direction | None = None,
        test: dict[str, Any] | None = None,
        hypothesis: str | None = None,
        data_fingerprint: str | None = None,
        params: dict[str, Any] | None = None,
        proposals: list[dict[str, Any]] | None = None,
    ) -> None:
        """Remember which candidate a phase run chose, and its test scores; with the
        experiment's `hypothesis`, data version, chosen `params` and proposed next hypotheses.

        Without this the listing still marks the choice of the run behind the current model
        checkpoint; with it, every phase run keeps its choice. The chosen MLflow run is tagged.
        """
        runs = _read_runs(self.path, phase_run_id)
        chosen = _pick(runs, candidate, metric, direction or direction_of(metric))
        values = {
            "phase_run_id": phase_run_id,
            "chosen_run_id": chosen["run_id"] if chosen else None,
            "chosen_candidate": candidate,
            "metric": metric,
            "direction": direction or direction_of(metric),
            "test": json.dumps(test, default=str) if test is not None else None,
            "recorded_at": utc_now(),
            "hypothesis": hypothesis,
            "data_fingerprint": data_fingerprint,
            "params": json.dumps(params, default=str) if params is not None else None,
            "proposals": json.dumps(proposals, default=str) if proposals is not None else None,
        }
        names = list(values)
        sql = (
            f"INSERT OR REPLACE INTO {_ident(CHOICES_TABLE)} ({', '.join(map(_ident, names))}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        with _open(self.path) as con:
            con.execute(sql, list(values.values()))
        if self.tracker is not None and chosen is not None:
            self.tracker.submit_choice(chosen["run_id"], chosen.get("mlflow_run_id"), test or {})

    def runs(self, phase_run_id: str | None = None) -> list[dict[str, Any]]:
        """Runs as dicts, oldest first; JSON columns decoded."""
        return _read_runs(self.path, phase_run_id)


def direction_of(metric: str) -> Direction | None:
    for by_metric in METRICS.values():
        if metric in by_metric:
            return by_metric[metric]
    return None


def _pick(
    runs: list[dict[str, Any]], candidate: str, metric: str, direction: Direction | None
) -> dict[str, Any] | None:
    """The deployable finished run of `candidate` with the best score (a tuned family may
    record several runs under one name)."""
    options = [
        r for r in runs if r["candidate"] == candidate and r["status"] == "done" and r["deployable"]
    ]
    sign = -1.0 if direction == "maximize" else 1.0

    def key(r: dict[str, Any]) -> tuple[bool, float]:
        score = _score(r.get("metrics"), metric)
        return score is None, sign * (score or 0.0)

    return min(options, key=key) if options else None


def _score(metrics: Any, metric: str | None) -> float | None:
    if not metric or not isinstance(metrics, dict):
        return None
    validation = metrics.get("validation")
    value = validation.get(metric) if isinstance(validation, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
