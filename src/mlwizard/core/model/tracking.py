"""Mirror experiment-store runs to MLflow, an optional extra (`pip install 'mlwizard[mlflow]'`).

mlflow is imported only when a tracking URI is configured, and then on one background thread per
tracker: importing it and opening a store take seconds (measured here: import 3-4 s, a new SQLite
store 8 s, an existing one 1.7 s, each run 0.1-0.3 s on a loaded 2-core machine), which would
otherwise come out of the model phase's time budget. The thread starts setting up as soon as the
tracker exists, and logs runs in the order they were recorded. `flush()` waits for it and raises
the first failure; the interpreter also waits for it before exiting. The explicit `MlflowClient` is
used rather than the fluent API (`mlflow.start_run`), whose active run is global state shared
with the user's own code.

One MLflow run per mlwizard run: parameters, numeric metrics (per-fold scores as steps), tags
(candidate, status, deployable, reason, data fingerprint, seed, ids, package versions), the ONNX
model (under `model/`) and the whole recorded row (`mlwizard/run.json`).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlwizard.core.kernel.errors import BadInputError

INSTALL_HINT = "pip install 'mlwizard[mlflow]'"
STATUS = {"done": "FINISHED", "failed": "FAILED", "skipped": "KILLED", "cancelled": "KILLED"}
MAX_VALUE = 500  # parameter and tag values: what any MLflow server accepts
BATCH = 100  # params + tags per log_batch call (MLflow's own limit)
_BAD_KEY = re.compile(r"[^\w\-. /]")
_QUIET_LOGGERS = ("alembic", "mlflow.store.db.utils")

# One logging thread per process, shared by every tracker: runs reach MLflow in recorded order,
# and a long-lived process (the TUI) does not collect idle threads. Python waits for its queue
# before exiting.
_LOCK = threading.Lock()
_EXECUTOR: ThreadPoolExecutor | None = None
_PENDING: set[Future[None]] = set()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlwizard-mlflow")
        return _EXECUTOR


def _wait(futures: list[Future[None]], timeout: float | None) -> Exception | None:
    done, not_done = wait_for(futures, timeout=timeout)
    for future in futures:
        error = future.exception() if future in done else None
        if isinstance(error, Exception):
            return error
    if not_done:
        return TimeoutError(f"{len(not_done)} MLflow call(s) still running after {timeout}s")
    return None


def flush_all(timeout: float | None = None) -> Exception | None:
    """Wait for every tracker's queued logging (a shell about to quit, a test); return the first
    failure, if any."""
    with _LOCK:
        pending = list(_PENDING)
    return _wait(pending, timeout)


def mlflow_installed() -> bool:
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def redact(uri: str) -> str:
    """The URI without user or password, for messages."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class TrackingError(BadInputError):
    """MLflow refused or failed a run; the experiment store kept it."""


OnLogged = Callable[[str, str | None, Exception | None], None]  # run id, MLflow run id, error


class MlflowTracker:
    def __init__(self, uri: str, experiment: str, root: Path) -> None:
        if not mlflow_installed():
            raise BadInputError(
                f"MLflow tracking is configured ({redact(uri)}, from [model] tracking_uri or "
                f"MLFLOW_TRACKING_URI) but mlflow is not installed: {INSTALL_HINT}"
            )
        self.uri = uri
        self.experiment = experiment
        self.root = root
        self._client: Any = None
        self._experiment_id: str | None = None
        self._setup_error: Exception | None = None
        self._mlflow_ids: dict[str, str] = {}  # mlwizard run id -> MLflow run id
        self._pending: list[Future[None]] = []
        self._submit(self._warm_up)

    def failed(self, exc: Exception, kept_in: Path) -> TrackingError:
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        return TrackingError(
            f"MLflow tracking at {redact(self.uri)} failed: {type(exc).__name__}: {first_line} "
            f"(the runs are kept in {kept_in}; unset [model] tracking_uri and "
            "MLFLOW_TRACKING_URI to train without MLflow)"
        )

    # -- the queue ---------------------------------------------------------------------------
    def submit_run(self, row: dict[str, Any], on_logged: OnLogged) -> None:
        """Log `row` on the tracker's thread; `on_logged` is called there with the outcome."""

        def task() -> None:
            mlflow_run_id, error = None, None
            try:
                mlflow_run_id = self.log_run(row)
            except Exception as exc:
                error = exc
            on_logged(row["run_id"], mlflow_run_id, error)
            if error is not None:
                raise error

        self._submit(task)

    def submit_choice(self, run_id: str, known_mlflow_id: str | None, test: dict[str, Any]) -> None:
        def task() -> None:
            mlflow_run_id = self._mlflow_ids.get(run_id) or known_mlflow_id
            if mlflow_run_id:
                self.log_choice(mlflow_run_id, test)

        self._submit(task)

    def flush(self, timeout: float | None = None) -> Exception | None:
        """Wait for everything submitted so far; return the first failure, if any."""
        with _LOCK:
            pending, self._pending = self._pending, []
        failure = _wait(pending, timeout)
        with _LOCK:
            self._pending.extend(f for f in pending if not f.done())
        return failure

    def _submit(self, task: Callable[[], None]) -> None:
        future = _executor().submit(task)
        with _LOCK:
            self._pending.append(future)
            _PENDING.add(future)
        future.add_done_callback(_PENDING.discard)

    def _warm_up(self) -> None:
        with suppress(Exception):  # kept in _setup_error, raised for the first run logged
            self._connect()

    # -- set-up ------------------------------------------------------------------------------
    def _connect(self) -> tuple[Any, str]:
        if self._setup_error is not None:
            raise self._setup_error
        if self._client is not None and self._experiment_id is not None:
            return self._client, self._experiment_id
        try:
            return self._open()
        except Exception as exc:
            self._setup_error = exc
            raise

    def _open(self) -> tuple[Any, str]:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        with _quiet():
            client = MlflowClient(tracking_uri=self.uri)
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    experiment_id = client.create_experiment(
                        self.experiment,
                        artifact_location=_artifact_location(self.uri),
                        tags={"mlwizard.project": str(self.root)},
                    )
                except MlflowException:  # another process created it meanwhile
                    found = client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
                    experiment_id = found.experiment_id
            else:
                experiment_id = found.experiment_id
                if found.lifecycle_stage == "deleted":
                    client.restore_experiment(experiment_id)
        self._client, self._experiment_id = client, experiment_id
        return client, experiment_id

    # -- logging -----------------------------------------------------------------------------
    def log_run(self, row: dict[str, Any]) -> str:
        """Log one recorded run; returns the MLflow run id."""
        from mlflow.entities import Metric, Param, RunTag

        client, experiment_id = self._connect()
        start_ms = _millis(row.get("started_at"))
        end_ms = start_ms + int(1000 * (row.get("duration_s") or 0)) if start_ms else None
        run = client.create_run(
            experiment_id, start_time=start_ms, tags=_tags(row), run_name=row["candidate"]
        )
        run_id = run.info.run_id
        try:
            stamp = end_ms or int(time.time() * 1000)
            metrics = [Metric(k, v, stamp, 0) for k, v in _flat_numbers(row.get("metrics"))]
            if isinstance(row.get("duration_s"), int | float):
                metrics.append(Metric("duration_s", float(row["duration_s"]), stamp, 0))
            for step, fold in enumerate(row.get("cv_folds") or []):
                scores = {k: v for k, v in fold.items() if k != "fold"}
                metrics += [Metric(f"cv.{k}", v, stamp, step) for k, v in _flat_numbers(scores)]
            params = [Param(k, _text(v)) for k, v in _flat_items(row.get("params"))]
            for start in range(0, max(len(params), len(metrics), 1), BATCH):
                client.log_batch(
                    run_id,
                    metrics=metrics[start : start + BATCH],
                    params=params[start : start + BATCH],
                )
            versions = row.get("package_versions") or {}
            tags = [RunTag(f"mlwizard.version.{_key(k)}", _text(v)) for k, v in versions.items()]
            if tags:
                client.log_batch(run_id, tags=tags)
            onnx = self._artifact(row.get("onnx_path"))
            if onnx is not None:
                client.log_artifact(run_id, str(onnx), artifact_path="model")
            client.log_dict(run_id, _jsonable(row), "mlwizard/run.json")
        except BaseException:
            client.set_terminated(run_id, "FAILED", end_time=end_ms)
            raise
        client.set_terminated(run_id, STATUS.get(row["status"], "FINISHED"), end_time=end_ms)
        self._mlflow_ids[row["run_id"]] = run_id
        return run_id

    def log_choice(self, mlflow_run_id: str, test: dict[str, Any]) -> None:
        """Tag the chosen run and log its test scores."""
        from mlflow.entities import Metric, RunTag

        client, _ = self._connect()
        stamp = int(time.time() * 1000)
        metrics = [Metric(f"test.{k}", v, stamp, 0) for k, v in _flat_numbers(test)]
        client.log_batch(
            mlflow_run_id, metrics=metrics[:BATCH], tags=[RunTag("mlwizard.chosen", "true")]
        )

    def _artifact(self, relative: str | None) -> Path | None:
        if not relative:
            return None
        path = (self.root / relative).resolve()
        return path if path.is_file() else None


def _tags(row: dict[str, Any]) -> dict[str, str]:
    values = {
        "candidate": row.get("candidate"),
        "status": row.get("status"),
        "deployable": row.get("deployable"),
        "reason": row.get("reason"),
        "data_fingerprint": row.get("data_fingerprint"),
        "seed": row.get("seed"),
        "mlwizard.run_id": row.get("run_id"),
        "mlwizard.phase_run_id": row.get("phase_run_id"),
    }
    return {k: _text(v) for k, v in values.items() if v is not None and v != ""}


def _artifact_location(uri: str) -> str | None:
    """Beside a local SQLite store; otherwise the server's choice. (Left to MLflow, a direct
    SQLite store puts artifacts in `./mlruns` under whatever folder the command ran in.)"""
    if not uri.startswith("sqlite:///"):
        return None
    database = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return (Path(database).resolve().parent / "mlartifacts").as_uri()


def _flat_items(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat_items(v, f"{prefix}{_key(str(k))}.")
    elif prefix:
        yield prefix[:-1], value


def _flat_numbers(value: Any) -> Iterator[tuple[str, float]]:
    """Numeric leaves of nested dicts (lists such as a confusion matrix are left out)."""
    for key, leaf in _flat_items(value):
        if isinstance(leaf, bool) or (isinstance(leaf, int | float) and math.isfinite(leaf)):
            yield key, float(leaf)


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", name)[:250]


def _text(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _millis(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep a new SQLite store's migration chatter off the user's terminal."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
