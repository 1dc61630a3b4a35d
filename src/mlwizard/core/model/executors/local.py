"""The default executor: a spawn process pool on this machine (`model.workers`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlwizard.core.model import workers as pool
from mlwizard.core.model.executors.base import MakeJob, OnDone, OnStart


class LocalExecutor:
    description = "local"

    def plan(self, requested: int, jobs: int) -> tuple[int, int]:
        workers, threads = pool.plan(requested, jobs)
        self.description = f"{workers} worker process(es), {threads} thread(s) each"
        return workers, threads

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
        return pool.run_jobs(
            fn,
            keys,
            make_job,
            workers=workers,
            threads=threads,
            deadline=deadline,
            cancel=cancel,
            on_done=on_done,
            on_start=on_start,
        )
