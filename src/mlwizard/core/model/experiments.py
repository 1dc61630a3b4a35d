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
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from mlwizard.core.contract.tasks import METRICS, Direction
from mlwizard.core.kernel.errors import BadInputError, MlwizardError
from mlwizard.core.kernel.formatting import utc_now
from mlwizard.core.kernel.versions import package_versions

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace
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
    return {row["phase_run_id"]: _decode(row, ("test",)) for row in rows}


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
    ) -> None:
        """Remember which candidate a phase run chose, and its test scores.

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


# -- reading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    """One candidate run as recorded, plus what the listing derives: the metric the phase run
    ranked by, this run's validation score on it, and whether the phase run chose it."""

    run_id: str
    phase_run_id: str
    candidate: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cv_folds: list[dict[str, Any]] | None = None
    duration_s: float | None = None
    data_fingerprint: str | None = None
    seed: int | None = None
    started_at: datetime | None = None
    recorded_at: datetime | None = None
    deployable: bool | None = None
    reason: str | None = None
    onnx_path: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    package_versions: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    tracking_error: str | None = None
    metric: str | None = None
    score: float | None = None
    chosen: bool = False

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def validation(self) -> dict[str, Any]:
        value = (self.metrics or {}).get("validation")
        return value if isinstance(value, dict) else {}

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class PhaseRun:
    """The runs of one model phase run, and what it chose."""

    phase_run_id: str
    runs: list[RunRow]  # recorded order
    metric: str | None = None
    direction: Direction | None = None
    chosen_run_id: str | None = None
    test: dict[str, Any] | None = None
    current: bool = False  # the run behind the project's current model checkpoint
    error: str | None = None  # why the model phase failed, when this run was the failed one

    @property
    def started_at(self) -> datetime | None:
        times = [r.started_at for r in self.runs if r.started_at is not None]
        return min(times) if times else None

    @property
    def chosen(self) -> RunRow | None:
        return next((r for r in self.runs if r.run_id == self.chosen_run_id), None)

    def ranked(self) -> list[RunRow]:
        """Finished runs best first (no score last; ties keep recorded order), then the others
        in recorded order. The chosen run is not always first: a better one may not export."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        done = [r for r in self.runs if r.status == "done"]
        done.sort(key=lambda r: (r.score is None, sign * (r.score or 0.0)))
        return done + [r for r in self.runs if r.status != "done"]

    def to_json(self) -> dict[str, Any]:
        chosen = self.chosen
        return _jsonable(
            {
                "phase_run_id": self.phase_run_id,
                "started_at": self.started_at,
                "current": self.current,
                "metric": self.metric,
                "direction": self.direction,
                "chosen_run_id": self.chosen_run_id,
                "chosen_candidate": chosen.candidate if chosen else None,
                "test": self.test,
                "error": self.error,
                "runs": [r.to_json() for r in self.ranked()],
            }
        )


@dataclass
class Comparison:
    """Runs side by side: each metric (dotted names: `validation.roc_auc`, `cv.mean`) and each
    parameter as one list of values, in `runs` order."""

    runs: list[RunRow]
    metrics: dict[str, list[Any]]
    params: dict[str, list[Any]]
    differing_params: list[str]

    def to_json(self) -> dict[str, Any]:
        return _jsonable(
            {
                "runs": [r.to_json() for r in self.runs],
                "metrics": self.metrics,
                "params": self.params,
                "differing_params": self.differing_params,
            }
        )


def direction_of(metric: str) -> Direction | None:
    for by_metric in METRICS.values():
        if metric in by_metric:
            return by_metric[metric]
    return None


def store_path(workspace: Workspace) -> Path:
    return workspace.state_dir / STORE_FILE


def list_phase_runs(workspace: Workspace, limit: int | None = None) -> list[PhaseRun]:
    """Phase runs, latest first (at most `limit`), each with its runs and what it chose."""
    path = store_path(workspace)
    rows = _read_runs(path)
    choices = _read_choices(path) if rows else {}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["phase_run_id"], []).append(row)

    checkpoint = workspace.read_checkpoint("model")
    current = checkpoint.metrics if checkpoint and checkpoint.status == "done" else {}
    discovery = workspace.read_checkpoint("discovery")
    fallback_metric = (discovery.metrics.get("metric") if discovery else None) or None

    phase_runs = []
    for phase_run_id, group in grouped.items():
        choice = choices.get(phase_run_id, {})
        is_current = current.get("phase_run_id") == phase_run_id
        metric = choice.get("metric") or (current.get("metric") if is_current else None)
        metric = metric or fallback_metric
        direction = choice.get("direction") or (
            current.get("metric_direction") if is_current else None
        )
        direction = direction or (direction_of(metric) if metric else None)
        chosen_name = choice.get("chosen_candidate") or (
            current.get("best_model") if is_current else None
        )
        chosen = choice.get("chosen_run_id")
        if chosen is None and chosen_name and metric:
            picked = _pick(group, chosen_name, metric, direction)
            chosen = picked["run_id"] if picked else None
        runs = [_row(r, metric, r["run_id"] == chosen) for r in group]
        test = choice.get("test") or (current.get("test") if is_current else None)
        phase_runs.append(
            PhaseRun(phase_run_id, runs, metric, direction, chosen, test, current=is_current)
        )
    phase_runs.sort(key=lambda p: p.started_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    _attach_failure(phase_runs, checkpoint)
    return phase_runs[:limit] if limit else phase_runs


def list_runs(
    workspace: Workspace, phase_run_id: str | None = None, latest_only: bool = False
) -> list[RunRow]:
    """Runs of every phase run (latest phase run first; recorded order within one), of one
    phase run, or of the latest one only."""
    phase_runs = list_phase_runs(workspace)
    if phase_run_id is not None:
        phase_runs = [p for p in phase_runs if p.phase_run_id == phase_run_id]
    elif latest_only:
        phase_runs = phase_runs[:1]
    return [run for p in phase_runs for run in p.runs]


def compare_runs(workspace: Workspace, ids: Iterable[str]) -> Comparison:
    """Runs side by side, by id or unique id prefix (at least 4 characters)."""
    every = list_runs(workspace)
    runs = [_resolve(every, wanted) for wanted in ids]
    if not runs:
        raise BadInputError("name at least one run id to compare")
    metrics: dict[str, list[Any]] = {"duration_s": [r.duration_s for r in runs]}
    flat = [dict(_leaves(r.metrics)) for r in runs]
    for name in _union(flat):
        metrics[name] = [values.get(name) for values in flat]
    params = {name: [r.params.get(name) for r in runs] for name in _union(r.params for r in runs)}
    differing = [name for name, values in params.items() if len({_key(v) for v in values}) > 1]
    return Comparison(runs, metrics, params, differing)


def _resolve(runs: list[RunRow], wanted: str) -> RunRow:
    wanted = wanted.strip().lower()
    if len(wanted) < MIN_ID_PREFIX:
        raise BadInputError(f"run id '{wanted}' is too short: give at least {MIN_ID_PREFIX} chars")
    matches = [r for r in runs if r.run_id.startswith(wanted)]
    if not matches:
        raise BadInputError(f"no run with id '{wanted}' (see `mlwizard experiments`)")
    if len(matches) > 1:
        raise BadInputError(f"run id '{wanted}' is ambiguous: give more characters")
    return matches[0]


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


def _row(raw: dict[str, Any], metric: str | None, chosen: bool) -> RunRow:
    known = {f.name for f in fields(RunRow)}
    values = {k: v for k, v in raw.items() if k in known}
    for name in ("params", "metrics", "artifacts", "package_versions"):
        if values.get(name) is None:
            values[name] = {}
    return RunRow(**values, metric=metric, score=_score(raw.get("metrics"), metric), chosen=chosen)


def _attach_failure(phase_runs: list[PhaseRun], checkpoint: Any) -> None:
    """A failed model phase leaves no phase run id; it belongs to the latest phase run when that
    one started after the failed phase did."""
    if not phase_runs or checkpoint is None or checkpoint.status != "failed":
        return
    latest = phase_runs[0]
    try:
        phase_started = datetime.fromisoformat(checkpoint.started_at)
    except (TypeError, ValueError):
        return
    if latest.started_at is not None and latest.started_at >= phase_started:
        latest.error = checkpoint.error


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Scalar leaves of nested dicts under dotted names (lists, like per-fold scores, left out)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}{key}.")
    elif prefix and not isinstance(value, list | tuple):
        yield prefix[:-1], value


def _union(dicts: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for d in dicts for name in d))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
