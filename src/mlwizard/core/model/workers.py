"""A spawn process pool that runs jobs with bounded threads, a deadline, and cancellation.

Measured on 2 cores (shared/TOOLING_NOTES.md): pool workers with default OpenMP threads ran
HistGradientBoosting 7x slower (fork) or hung (spawn). Every worker is limited to
cores // workers threads, and the start method is spawn: forking after the parent has run a fit
left hung children.

Jobs are submitted only as workers free up, so each job is built (and given its deadline) at the
moment it can start. A worker whose parent dies (`kill -9`) exits within a second instead of
finishing its job as an orphan.

The tail is elastic: once nothing is queued, the jobs still running may use the cores the idle
workers leave (`threads_now`, read by a job before each fit from a value the parent shares with
its workers). Without it the sweep ended with one job fitting on one thread beside an idle core.
The families whose fits release the GIL (CatBoost, the forests) take those cores as fold fits
side by side rather than as more threads per fit (`training.lanes`): CatBoost on a 4k-row table
ran its folds 1.04x faster on 2 threads than on 1, and 1.5x faster as 2 fits at once.

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
from concurrent.futures.process import BrokenProcessPool
from typing import Any

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_S = 0.1  # how often cancellation and the deadline are checked while waiting
ORPHAN_CHECK_S = 0.5
TERMINATE_GRACE_S = 0.2  # after SIGTERM, before SIGKILL

OnDone = Callable[[str, Any, str | None], None]  # key, result (None on error), error
MakeJob = Callable[[str, float], Any]  # key, time.monotonic() now -> job
OnStart = Callable[[str, Any], None]


_ALLOWANCE: Any = None  # in a pool worker: the threads each running job may use now (shared)


def plan(requested: int, jobs: int) -> tuple[int, int]:
    """(workers, threads per worker) for `requested` workers (0: one per core)."""
    cores = os.cpu_count() or 1
    workers = max(1, min(requested or cores, jobs))
    return workers, max(1, cores // workers)


def limit_threads(threads: int, parent: int | None = None, allowance: Any = None) -> None:
    """Pool initializer: cap OpenMP/BLAS threads in this worker, and exit if `parent` dies.

    `allowance`: the parent's shared value of threads a running job may use now (`threads_now`).
    """
    global _ALLOWANCE
    _ALLOWANCE = allowance
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # for any library the environment came too late for
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def threads_now(share: int) -> int:
    """The threads a job whose share is `share` may use for its next fit: more than its share
    when nothing is queued and other workers sit idle (only in a pool worker; else `share`)."""
    if _ALLOWANCE is None:
        return share
    return max(share, int(_ALLOWANCE.value))


def in_pool() -> bool:
    """Whether this process is one of the pool's workers."""
    return _ALLOWANCE is not None


def tail_threads(threads: int, running: int, queued: int) -> int:
    """Threads per running job: the pool's share while jobs wait, else the cores split among
    the jobs still running."""
    if queued or running <= 0:
        return threads
    return max(threads, (os.cpu_count() or 1) // running)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(1)


def run_jobs(
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
    """Run `fn(make_job(key, now))` for each key in worker processes, in order, at most `workers`
    at a time, calling `on_done` as each one finishes.

    Stops when `cancel` is set or `time.monotonic()` passes `deadline`; running jobs are then
    terminated. Returns the keys not finished (running or never started), in order.
    """
    context = multiprocessing.get_context("spawn")
    allowance = context.Value("i", threads, lock=False)  # one int, written by this process only
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=limit_threads,
        initargs=(threads, os.getpid(), allowance),
    )
    queue = list(keys)
    running: dict[Future[Any], str] = {}
    keys_of: dict[Future[Any], str] = {}
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
                try:
                    future = executor.submit(fn, job)
                    running[future] = keys_of[future] = key
                except BrokenProcessPool as exc:  # a worker died: report, do not hang
                    on_done(key, None, f"BrokenProcessPool: {exc}")
            allowance.value = tail_threads(threads, len(running), len(queue))
            done, _ = wait(
                set(running), timeout=min(POLL_S, deadline - now), return_when=FIRST_COMPLETED
            )
            finished = sorted(done, key=lambda f: keys.index(running[f]))
            for future in finished:
                running.pop(future)
            if finished:
                allowance.value = tail_threads(threads, len(running), len(queue))
            for future in finished:
                key = keys_of[future]
                try:
                    result, error = future.result(), None
                except Exception as exc:  # a crashed worker or an error inside fn
                    result, error = None, f"{type(exc).__name__}: {exc}"
                on_done(key, result, error)
    finally:
        # Idle workers are terminated too: a graceful exit of a process that has loaded
        # scikit-learn, CatBoost and skl2onnx took 3 s on a busy 2-core machine.
        _stop(executor, set(running))
    unfinished = set(running.values()) | set(queue)
    return [key for key in keys if key in unfinished]


def _stop(executor: ProcessPoolExecutor, pending: set[Future[Any]]) -> None:
    """Cancel queued jobs and end the workers (running a job or idle) without waiting long.

    `ProcessPoolExecutor` cannot interrupt a running job before Python 3.14
    (`terminate_workers`), so its worker processes are terminated directly (SIGTERM: Python's
    default action ends them at once), killed if still alive after a short grace, and reaped on
    a background thread: tearing down a large process on a loaded machine is not the phase's time.
    """
    for future in pending:
        future.cancel()
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    end = time.monotonic() + TERMINATE_GRACE_S
    for process in processes:
        process.join(timeout=max(0.0, end - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
    threading.Thread(
        target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
    ).start()
