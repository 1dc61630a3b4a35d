"""What a Dask worker runs for one job: the job's inputs made local, the job, its files sent back.

The parent scatters the job's input files (train, valid, schema) to every worker once, as bytes;
the first job on a worker writes them into the worker's own folder, keyed by content, and every
later job there reuses them. The job's outputs are written into a private folder on the worker
and returned as bytes, so that the parent writes them into the project: the worker needs no
access to the project's disk.

Deadlines travel as seconds left, not as `time.monotonic()` values, which mean nothing on another
machine. Standard library only at the top, like `model.workers`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwizard.core.model.jobs import RunResult, TrainJob

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
INPUTS = ("train", "valid", "schema")
OUTPUTS = ("onnx", "joblib", "oof")
log = logging.getLogger("distributed.worker")  # lands in the worker's own log


def run(
    fn: Callable[[TrainJob], RunResult],
    job: TrainJob,
    blobs: dict[str, bytes],
    seconds_left: float,
    sent_at: float,
) -> dict[str, Any]:
    """Run `fn` on `job` with its inputs on this worker; returns the result and its files."""
    from distributed import get_worker
    from threadpoolctl import threadpool_limits

    worker = get_worker()
    root = Path(worker.local_directory) / "mlwizard"
    folder = root / "data"
    out_dir = root / "runs" / uuid.uuid4().hex
    out_dir.mkdir(parents=True)
    transit = max(0.0, time.time() - sent_at)
    job = dataclasses.replace(
        job,
        train=_materialise(folder, blobs["train"], job.train),
        valid=_materialise(folder, blobs["valid"], job.valid),
        schema=_materialise(folder, blobs["schema"], job.schema),
        out_dir=out_dir,
        hard_deadline=time.monotonic() + seconds_left - transit,
    )
    for name in THREAD_ENV:
        os.environ[name] = str(job.threads)
    log.info(
        "mlwizard: training candidate %s (run %s) on %s",
        job.candidate,
        job.key[:16],
        worker.address,
    )
    try:
        with threadpool_limits(limits=job.threads):
            result = fn(job)
        files = {
            name: Path(path).read_bytes() if (path := getattr(result, name)) else None
            for name in OUTPUTS
        }
        saved = any(out_dir.glob("*.json"))  # the run finished and was saved for reuse
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    log.info(
        "mlwizard: candidate %s %s in %.1fs",
        job.candidate,
        result.status,
        result.duration_s or 0,
    )
    where = f"{worker.address} ({socket.gethostname()}, pid {os.getpid()})"
    return {"result": result, "files": files, "saved": saved, "worker": where}


def _materialise(folder: Path, blob: bytes, original: Path) -> Path:
    """The blob as a file on this worker, written once per content; keeps the original's name
    (its suffix tells readers the format)."""
    digest = hashlib.sha256(blob).hexdigest()[:20]
    path = folder / digest / Path(original).name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    return path
