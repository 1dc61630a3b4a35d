"""The Dask distributed executor: candidate jobs on a scheduler's workers (`dask://HOST:PORT`).

- Slots: one job per worker thread (`dask worker --nthreads N`); each job gets the cores of its
  host divided by the job slots on that host as its thread limit (OpenMP/BLAS, `threadpoolctl`).
- Data: each distinct input file (train, valid, schema) is scattered to every worker once
  (`broadcast`), before the first job; jobs carry references to it (see `executors.remote`).
- Results: each job's result and model files come back as bytes and are written into the project
  by this process, the same files the local pool leaves, result last.
- Cancel and the hard deadline: queued jobs are cancelled, and the workers still running a job
  are ended (their nanny starts them again): a Python thread cannot be interrupted, and the budget
  is a promise. A cluster shared with other work should give mlwizard its own workers.

Needs the optional `dask[distributed]` (`pip install 'mlwizard[dask]'`), on the workers too,
with mlwizard itself.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model import runcache
from mlwizard.core.model.executors import remote
from mlwizard.core.model.executors.base import MakeJob, OnDone, OnStart
from mlwizard.core.model.jobs import RunResult

CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.1


class DaskExecutor:
    def __init__(self, spec: str) -> None:
        self.address = "tcp://" + spec[len("dask://") :] if spec.startswith("dask://") else spec
        self.description = f"the Dask cluster at {self.address}"
        self.client: Any = None

    # -- planning ----------------------------------------------------------------------------
    def plan(self, requested: int, jobs: int) -> tuple[int, int]:
        if jobs == 0:
            return 1, 1
        workers = self._workers()
        slots = sum(w["nthreads"] for w in workers.values())
        cores = self.client.run(os.cpu_count)  # each worker's host
        per_host: Counter[str] = Counter()  # job slots on each host
        for w in workers.values():
            per_host[w["host"]] += w["nthreads"]
        threads = min(
            max(1, (cores.get(addr) or 1) // per_host[w["host"]]) for addr, w in workers.items()
        )
        running = max(1, min(requested or slots, slots, jobs))
        self.description = (
            f"{running} job slot(s) of {len(workers)} Dask worker(s) at {self.address}, "
            f"{threads} thread(s) each"
        )
        return running, threads

    def _workers(self) -> dict[str, Any]:
        if self.client is None:
            self.client = _connect(self.address)
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if not workers:
            self.close()
            raise BadInputError(
                f"[model] executor: the Dask scheduler at {self.address} has no workers; start "
                f"some (`dask worker {self.address}`)"
            )
        return dict(workers)

    # -- running -----------------------------------------------------------------------------
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
        if self.client is None:
            self._workers()
        client = self.client
        shipped: dict[str, Any] = {}  # content hash -> scattered future
        queue = list(keys)
        running: dict[Any, tuple[str, Any]] = {}  # future -> (key, job)
        try:
            while (queue or running) and not cancel.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                while queue and len(running) < workers:
                    key = queue.pop(0)
                    job = make_job(key, now)
                    if on_start is not None:
                        on_start(key, job)
                    blobs = {n: self._ship(shipped, getattr(job, n)) for n in remote.INPUTS}
                    future = client.submit(
                        remote.run,
                        fn,
                        job,
                        blobs,
                        deadline - time.monotonic(),
                        time.time(),
                        key=f"mlwizard-{job.candidate}-{uuid.uuid4().hex[:12]}",
                        pure=False,
                        retries=0,
                    )
                    running[future] = (key, job)
                time.sleep(POLL_S)
                done = [f for f in running if f.done()]
                for future in sorted(done, key=lambda f: keys.index(running[f][0])):
                    key, job = running.pop(future)
                    try:
                        result, error = _bring_back(job, future.result()), None
                    except Exception as exc:  # the job raised, or its worker died
                        result, error = None, f"{type(exc).__name__}: {exc}"
                    on_done(key, result, error)
        finally:
            self._stop(list(running))
        unfinished = {key for key, _ in running.values()} | set(queue)
        return [key for key in keys if key in unfinished]

    def _ship(self, shipped: dict[str, Any], path: Path) -> Any:
        blob = Path(path).read_bytes()
        digest = hashlib.sha256(blob).hexdigest()
        if digest not in shipped:
            shipped[digest] = self.client.scatter(blob, broadcast=True, hash=False)
        return shipped[digest]

    def _stop(self, futures: list[Any]) -> None:
        """Cancel what is queued; end the workers still running one of these jobs."""
        client = self.client
        if client is None:
            return
        try:
            if futures:
                ours = {f.key for f in futures}
                busy = [w for w, tasks in client.processing().items() if ours & set(tasks)]
                client.cancel(futures, force=True)
                if busy:
                    client.run(_end_worker, workers=busy, on_error="ignore")
        finally:
            self.close()

    def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            client.close(timeout=5)


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise BadInputError(
            f"[model] executor = {address}: Dask is not installed; `pip install 'mlwizard[dask]'`"
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BadInputError(
            f"[model] executor: cannot reach the Dask scheduler at {address} ({exc}); start "
            'it (`dask scheduler`) or set [model] executor = "local"'
        ) from None


def _bring_back(job: Any, answer: dict[str, Any]) -> RunResult:
    """Write the run's files into the project, where the local pool would have written them."""
    result: RunResult = answer["result"]
    files = runcache.RunFiles.of(job.out_dir, job.candidate, job.key)
    for name in remote.OUTPUTS:
        blob = answer["files"].get(name)
        if blob is not None:
            atomic.write_bytes(getattr(files, name), blob)
            setattr(result, name, str(getattr(files, name)))
    result.worker = answer["worker"]
    if answer["saved"]:
        runcache.save(files, result)  # last: marks the run finished
    return result


def _end_worker() -> None:
    """Runs on a worker: exit in a moment (after answering); its nanny starts a fresh worker."""
    threading.Timer(0.05, os._exit, args=(1,)).start()
