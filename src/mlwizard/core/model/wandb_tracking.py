"""Mirror experiment-store runs to Weights & Biases, offline: `[model] wandb_project = "name"`.

An optional extra (`pip install 'mlwizard[wandb]'`). Runs are written where W&B writes offline
runs, `<project>/wandb/offline-run-*`, and uploaded later by the user (`wandb sync
<project>/wandb/offline-run-*`): training never waits on a network. `WANDB_MODE` in the
environment is respected when set (`online` logs straight to the server the user is logged in
to); unset, the mode is `offline`.

One W&B run per mlwizard run, grouped by phase run: the parameters as its config, numeric
metrics (validation, fit time, per-fold scores as steps) as history and summary, the status,
deployability, reason, data fingerprint and seed in the summary, and the ONNX model as a `model`
artifact. `wandb.init` takes seconds (it starts W&B's service process), so runs are logged on one
background thread in recorded order, like the MLflow tracker's; Python waits for it at exit.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from pathlib import Path
from typing import Any

from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model.tracking import _flat_items, _flat_numbers, _jsonable, _text

INSTALL_HINT = "pip install 'mlwizard[wandb]'"
_LOCK = threading.Lock()
_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlwizard-wandb")
        return _EXECUTOR


def flush_all(timeout: float | None = None) -> None:
    """Wait until every run submitted so far is written (one thread: first in, first out)."""
    _executor().submit(lambda: None).result(timeout)


def wandb_installed() -> bool:
    try:
        return importlib.util.find_spec("wandb") is not None
    except (ImportError, ValueError):
        return False


class WandbTracker:
    def __init__(self, project: str, root: Path) -> None:
        if not wandb_installed():
            raise BadInputError(
                f"[model] wandb_project = {project!r} but wandb is not installed: {INSTALL_HINT}"
            )
        self.project = project
        self.root = root
        self.mode: Any = os.environ.get("WANDB_MODE") or "offline"
        self._pending: list[Future[str]] = []

    def submit_run(self, row: dict[str, Any]) -> None:
        future = _executor().submit(self.log_run, _jsonable(row))
        with _LOCK:
            self._pending.append(future)

    def flush(self, timeout: float | None = None) -> Exception | None:
        """Wait for the runs submitted so far; return the first failure, if any."""
        with _LOCK:
            pending, self._pending = self._pending, []
        done, not_done = wait_for(pending, timeout=timeout)
        for future in pending:
            error = future.exception() if future in done else None
            if isinstance(error, Exception):
                return error
        if not_done:
            return TimeoutError(f"{len(not_done)} W&B run(s) still being written after {timeout}s")
        return None

    def log_run(self, row: dict[str, Any]) -> str:
        """Write one recorded run; returns the W&B run id."""
        import wandb

        settings = wandb.Settings(
            mode=self.mode, silent=True, console="off", x_disable_stats=True, x_disable_meta=True
        )
        run = wandb.init(
            project=self.project,
            dir=str(self.root),
            name=row.get("candidate"),
            group=row.get("phase_run_id"),
            job_type="candidate",
            config={k: _text(v) for k, v in _flat_items(row.get("params"))},
            tags=[str(row.get("status"))],
            reinit="create_new",
            settings=settings,
        )
        try:
            metrics = dict(_flat_numbers(row.get("metrics")))
            if isinstance(row.get("duration_s"), int | float):
                metrics["duration_s"] = float(row["duration_s"])
            scores = ((row.get("metrics") or {}).get("cv") or {}).get("scores") or []
            for step, score in enumerate(scores):  # the chosen configuration's folds
                if isinstance(score, int | float):
                    run.log({"cv.score": float(score)}, step=step)
            run.summary.update(metrics)
            for key in ("candidate", "status", "deployable", "reason", "data_fingerprint", "seed"):
                if row.get(key) is not None:
                    run.summary[key] = row[key]
            run.summary["mlwizard_run_id"] = row.get("run_id")
            onnx = (self.root / row["onnx_path"]) if row.get("onnx_path") else None
            if onnx is not None and onnx.is_file():
                artifact = wandb.Artifact(f"{row['candidate']}-onnx", type="model")
                artifact.add_file(str(onnx), name="model.onnx")
                run.log_artifact(artifact)
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.finish()
        return str(run.id)
