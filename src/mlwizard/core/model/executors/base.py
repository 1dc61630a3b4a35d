"""The `Executor` protocol and the callbacks it takes (standard library only)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

OnDone = Callable[[str, Any, str | None], None]  # key, result (None on error), error
MakeJob = Callable[[str, float], Any]  # key, time.monotonic() now -> job
OnStart = Callable[[str, Any], None]


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
