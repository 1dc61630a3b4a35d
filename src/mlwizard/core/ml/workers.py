"""A spawn process pool that runs jobs with bounded threads, a deadline, and cancellation.

Measured on 2 cores (shared/TOOLING_NOTES.md): pool workers with default OpenMP threads ran
HistGradientBoosting 7x slower (fork) or hung (spawn). Every worker is limited to
cores // workers threads, and the start method is spawn: forking after the parent has run a fit
left hung children.

This module imports only the standard library at the top: a spawn worker unpickles
`limit_threads` before anything else, so the environment limits are set before numpy or
scikit-learn load their thread pools.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_S = 0.2  # how often cancellation and the deadline are checked while waiting

OnDone = Callable[[str, Any, str | None], None]  # key, result (None on error), error


def plan(requested: int, jobs: int) -> tuple[int, int]:
    """(workers, threads per worker) for `requested` workers (0: one per core)."""
    cores = os.cpu_count() or 1
    workers = max(1, min(requested or cores, jobs))
    return workers, max(1, cores // workers)


def limit_threads(threads: int) -> None:
    """Pool initializer: cap OpenMP/BLAS threads in this worker process."""
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # for any library the environment came too late for


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: dict[str, Any],
    *,
    workers: int,
    threads: int,
    deadline: float,
    cancel: threading.Event,
    on_done: OnDone,
) -> list[str]:
    """Run `fn(job)` for each job in worker processes, calling `on_done` as each one finishes.

    Stops waiting when `cancel` is set or `time.monotonic()` passes `deadline`; jobs not finished
    by then are cancelled or their workers terminated. Returns their keys, in submission order.
    """
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=limit_threads,
        initargs=(threads,),
    )
    futures: dict[Future[Any], str] = {}
    pending: set[Future[Any]] = set()
    try:
        futures = {executor.submit(fn, job): key for key, job in jobs.items()}
        order = {key: index for index, key in enumerate(jobs)}
        pending = set(futures)
        while pending and not cancel.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = min(POLL_S, remaining)
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: order[futures[f]]):
                try:
                    result, error = future.result(), None
                except Exception as exc:  # a crashed worker or an error inside fn
                    result, error = None, f"{type(exc).__name__}: {exc}"
                on_done(futures[future], result, error)
    finally:
        if pending:
            _stop(executor, pending)
        else:
            executor.shutdown(wait=True)
    return [key for future, key in futures.items() if future in pending]


def _stop(executor: ProcessPoolExecutor, pending: set[Future[Any]]) -> None:
    """Cancel queued jobs and terminate the workers still running one.

    `ProcessPoolExecutor` cannot interrupt a running job before Python 3.14
    (`terminate_workers`), so its own worker processes are terminated directly.
    """
    for future in pending:
        future.cancel()
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=True, cancel_futures=True)
    for process in processes:
        process.join(timeout=5)
