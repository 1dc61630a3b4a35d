"""Where the model phase's candidate jobs run: the `Executor` seam and its engines.

`local` (the default): a spawn process pool on this machine (`model.workers`).
`dask://HOST:PORT`: a Dask distributed scheduler's workers (`executors.dask`; the optional
`mlwizard[dask]` extra). Both run the same `TrainJob`s through the same entry point, report each
job's start and end the same way, stop at the same hard deadline and on cancel, and leave the
same files in the project: the phase does not know which one ran its jobs.

Standard library only at the top: the phase picks its executor before anything heavy loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from mlwizard.core.kernel.errors import BadInputError

OnDone = Callable[[str, Any, str | None], None]  # key, result (None on error), error
MakeJob = Callable[[str, float], Any]  # key, time.monotonic() now -> job
OnStart = Callable[[str, Any], None]
LOCAL = "local"
DASK_SCHEMES = ("dask://", "tcp://", "tls://")


class Executor(Protocol):
    """Runs jobs `fn(make_job(key, now))`, at most `workers` at a time, streaming results."""

    description: str  # for messages: "3 worker process(es)", "the Dask cluster at ..."

    def plan(self, requested: int, jobs: int) -> tuple[int, int]:
        """(jobs run at once, threads per job) for `jobs` jobs; `requested` 0 means all."""
        ...

    def run_jobs(
        self,
        fn: Callable[[Any], Any],
        keys: list[str],
        make_job: MakeJob,
        *,
        workers: int,
        threads: int,
        deadline: float,
        cancel: threading.Event,
        on_done: OnDone,
        on_start: OnStart | None = None,
    ) -> list[str]:
        """Run every key in order until done, `cancel` or `deadline` (time.monotonic()); the
        jobs still running then are stopped. Returns the keys not finished, in order."""
        ...


def resolve(spec: str, where: str = "[model] executor") -> Executor:
    """The executor `spec` names: "" or "local", or "dask://HOST:PORT" (also tcp://, tls://)."""
    value = spec.strip()
    if value in ("", LOCAL):
        from mlwizard.core.model.executors.local import LocalExecutor

        return LocalExecutor()
    if value.startswith(DASK_SCHEMES):
        from mlwizard.core.model.executors.dask import DaskExecutor

        return DaskExecutor(value)
    raise BadInputError(
        f'{where}: \'{value}\' is not an executor (use "local" or "dask://HOST:PORT", the '
        "address of a Dask scheduler)"
    )
