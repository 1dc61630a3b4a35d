"""One candidate's run, inside a worker process: fit, score, export, check parity, save.

The worker receives paths and names only (a `TrainJob`), reads the splits itself, and returns a
small JSON-able dict; models travel as files written atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.base import is_classifier
from threadpoolctl import threadpool_info

from mlwizard.core import atomic
from mlwizard.core.features import feature_frame, target_vector
from mlwizard.core.ml import candidates
from mlwizard.core.ml.metrics import evaluate
from mlwizard.core.ml.onnx_export import ExportError, check_parity, export_pipeline
from mlwizard.core.schema import Schema


@dataclass(frozen=True)
class TrainJob:
    candidate: str
    train: Path
    valid: Path
    schema: Path
    out_dir: Path  # receives <candidate>.onnx and <candidate>.joblib
    seed: int


def new_result(candidate: str, status: str, reason: str = "") -> dict[str, Any]:
    """The shape of a run's result; also used by the parent for runs that never reported."""
    return {
        "candidate": candidate,
        "status": status,  # done | failed | skipped | cancelled
        "deployable": False,
        "reason": reason,
        "started_at": datetime.now(UTC).isoformat(),
        "duration_s": None,
        "fit_s": None,
        "params": {},
        "validation": {},
        "parity": None,
        "onnx": None,
        "joblib": None,
        "threads": None,
    }


def train_candidate(job: TrainJob) -> dict[str, Any]:
    result = new_result(job.candidate, "failed")
    start = time.perf_counter()
    schema = Schema.load(job.schema)
    train, valid = pd.read_parquet(job.train), pd.read_parquet(job.valid)
    x_train, y_train = feature_frame(train, schema), target_vector(train, schema)
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)

    pipeline = candidates.build(job.candidate, schema, job.seed)
    result["params"] = candidates.describe(pipeline)
    try:
        pipeline.fit(x_train, y_train)
    except Exception as exc:  # a model failing on this data is a result, not a crash
        result["reason"] = f"training failed: {type(exc).__name__}: {exc}"[:300]
        return _finish(result, start)
    result["fit_s"] = round(time.perf_counter() - start, 3)
    if is_classifier(pipeline):
        prediction = pipeline.predict_proba(x_valid)
    else:
        prediction = pipeline.predict(x_valid)
    result["validation"] = evaluate(schema.task, y_valid, prediction, len(schema.classes or []))
    result["status"] = "done"

    pickled = job.out_dir / f"{job.candidate}.joblib"
    with atomic.atomic_path(pickled) as tmp:
        joblib.dump(pipeline, tmp)
    result["joblib"] = str(pickled)
    try:
        model = export_pipeline(pipeline, schema, x_valid)
    except ExportError as exc:
        result["reason"] = exc.reason
        return _finish(result, start)
    onnx_path = atomic.write_bytes(job.out_dir / f"{job.candidate}.onnx", model)
    result["onnx"] = str(onnx_path)
    parity = check_parity(pipeline, model, x_valid, schema)
    result["parity"] = parity.to_dict()
    result["deployable"] = parity.ok
    result["reason"] = parity.reason
    return _finish(result, start)


def _finish(result: dict[str, Any], start: float) -> dict[str, Any]:
    result["duration_s"] = round(time.perf_counter() - start, 3)
    # Evidence that the worker's thread limit held: the largest pool any native library used.
    result["threads"] = max((p["num_threads"] for p in threadpool_info()), default=None)
    return result
