"""What the pool tests hand the spawn workers: module-level functions, importable in a child."""

from __future__ import annotations

import os
import time
from typing import Any

from mlwizard.core.model.jobs import TrainJob

WAIT_S = 60.0  # how long a job waits to see the thread allowance change (not a speed bound)
SHORT = "short"


def train_and_report(job: TrainJob) -> tuple[int, str, int]:
    """Train `job` as the pool does; (this worker's pid, the run's status, the reads of the
    splits this process has made so far)."""
    from mlwizard.core.model import training, worker_entry

    result = worker_entry.run(job)
    return os.getpid(), result.status, len(training.loads())


def observe_threads(name: str) -> dict[str, Any]:
    """The threads a job with a share of 1 may use: at its start, and (the long job) once the
    short one has ended and this job runs alone, or after `WAIT_S`."""
    from mlwizard.core.model import workers

    first = workers.threads_now(1)
    if name == SHORT:
        return {"name": name, "first": first, "last": first}
    end = time.monotonic() + WAIT_S
    last = first
    while time.monotonic() < end and last < (os.cpu_count() or 1):
        time.sleep(0.05)
        last = workers.threads_now(1)
    return {"name": name, "first": first, "last": last}
