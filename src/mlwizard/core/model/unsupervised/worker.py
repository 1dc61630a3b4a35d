"""One clustering or anomaly run, inside a worker process: choose its size (clusters) or
contamination, fit on the training split, score on validation, export to ONNX, check parity, save.

Like the supervised runs (`training.py`), a run receives paths only, never reads the test split,
and writes its result file last (`runcache`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwizard.core.model.jobs import RunResult

WEIGHTS = {  # relative share of the workers' time
    "kmeans": 1.0,
    "minibatch_kmeans": 0.6,
    "gaussian_mixture": 1.2,
    "isolation_forest": 1.0,
    "robust_distance": 0.8,
}


@dataclass(frozen=True)
class UnsupervisedJob:
    candidate: str
    key: str
    task: str  # clustering | anomaly
    train: Path
    valid: Path
    schema: Path
    out_dir: Path
    seed: int
    clusters: int  # 0: chosen on a sample
    contamination: float | None  # None: estimated from the training rows
    anomaly_class: Any  # the label value that marks an anomaly (evaluation only), or None
    threads: int
    budget_s: float
    share_s: float
    hard_deadline: float


def run(job: UnsupervisedJob) -> RunResult:
    """The pool's entry point (light: the training code loads in the worker)."""
    return _train(job)


def _train(job: UnsupervisedJob) -> RunResult:
    import joblib
    import numpy as np
    import pandas as pd

    from mlwizard.core.contract.features import feature_frame
    from mlwizard.core.contract.schema import Schema
    from mlwizard.core.export.onnx_export import ExportError
    from mlwizard.core.export.unsupervised_onnx import check_parity, export_unsupervised
    from mlwizard.core.kernel import atomic
    from mlwizard.core.model import runcache
    from mlwizard.core.model.unsupervised import families as fam

    start = time.perf_counter()
    deadline = min(job.hard_deadline, time.monotonic() + job.share_s)
    result = RunResult(job.candidate, "failed", key=job.key, budget_s=job.budget_s)
    schema = Schema.load(job.schema)
    train, valid = pd.read_parquet(job.train), pd.read_parquet(job.valid)
    x_train, x_valid = feature_frame(train, schema), feature_frame(valid, schema)
    try:
        fit_start = time.perf_counter()
        if job.task == "clustering":
            k, trials = job.clusters, list[dict[str, Any]]()
            if not k:
                # Choosing k may use about half the run's share; the final fit needs the rest.
                k, trials = fam.choose_k(
                    job.candidate,
                    schema,
                    x_train,
                    job.seed,
                    time.monotonic() + (deadline - time.monotonic()) / 2,
                )
            pipeline = fam.fit(fam.pipeline(job.candidate, schema, job.seed, k=k), x_train)
            labels = pipeline.predict(x_valid)
            z_valid = pipeline[:-1].transform(x_valid)
            validation: dict[str, Any] = fam.cluster_scores(z_valid, labels, job.seed)
            result.clusters = k
            result.search = {
                "planned": len(trials),
                "tried": len(trials),
                "trials": trials,
                "stopped": "",
            }
            result.params = {"n_clusters": k}
            if job.candidate == "gaussian_mixture":
                validation["bic"] = round(float(pipeline[-1].bic(z_valid)), 4)
        else:
            contamination = job.contamination or fam.estimate_contamination(x_train, schema)
            pipeline = fam.fit(
                fam.pipeline(job.candidate, schema, job.seed, contamination=contamination), x_train
            )
            scores = fam.anomaly_scores(pipeline, x_valid)
            truth = None
            if schema.target and job.anomaly_class is not None:
                truth = np.array([str(v) == str(job.anomaly_class) for v in valid[schema.target]])
            validation = fam.anomaly_metrics(truth, scores)
            validation["flagged_share"] = round(float(np.mean(pipeline.predict(x_valid) == -1)), 6)
            result.contamination = round(float(contamination), 6)
            result.contamination_source = "config" if job.contamination else "estimated"
            result.params = {"contamination": round(float(contamination), 6)}
        result.fit_s = round(time.perf_counter() - fit_start, 3)
    except Exception as exc:  # a model failing on this data is a result, not a crash
        result.reason = f"training failed: {type(exc).__name__}: {exc}"[:300]
        return _finish(result, start)
    result.validation = validation
    result.status = "done"
    result.complete = True
    files = runcache.RunFiles.of(job.out_dir, job.candidate, job.key)
    with atomic.atomic_path(files.joblib) as tmp:
        joblib.dump(pipeline, tmp)
    result.joblib = str(files.joblib)
    exported = time.perf_counter()
    try:
        model = export_unsupervised(pipeline, schema, x_valid)
    except ExportError as exc:
        result.reason = exc.reason
    else:
        atomic.write_bytes(files.onnx, model)
        result.onnx = str(files.onnx)
        parity = check_parity(pipeline, model, x_valid, schema)
        result.parity = parity.to_dict()
        result.deployable = parity.ok
        result.reason = parity.reason
    result.export_s = round(time.perf_counter() - exported, 3)
    _finish(result, start)
    runcache.save(files, result)
    return result


def _finish(result: RunResult, start: float) -> RunResult:
    result.duration_s = round(time.perf_counter() - start, 3)
    return result
