"""One candidate's run, inside a worker process: tune by cross-validation, refit on the training
split, score on validation, export to ONNX, check parity, save.

The worker receives paths and names only (a `TrainJob`) and never the test split. It reads the
train and validation splits itself and returns a small JSON-able dict; models travel as files
written atomically, and the result file is written last (see `runcache`).

A worker process runs many jobs on the same splits: it reads them once and keeps the latest
(`read_inputs`, keyed by each file's path, size and modification time), so later jobs start
training at once. Each job gets its own shallow copies (copy-on-write), so no job sees another's
changes.

Two deadlines bound a run: its share of the budget (counted from when the worker starts it), which
the search aims to end by, and `hard_deadline`, when the parent terminates the worker. The refit
runs only if it is expected to end, with its export, before the hard deadline; otherwise the
best configuration's fold model (fitted on the most rows) stands in for it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import ExportError, export_pipeline
from mlwizard.core.export.parity import check_export
from mlwizard.core.export.trees import align_thresholds
from mlwizard.core.kernel import atomic
from mlwizard.core.model import candidates, cv, fitting, oof, runcache, tuning, workers
from mlwizard.core.model.jobs import RunResult, TrainJob
from mlwizard.core.model.metrics import evaluate

EXPORT_FIXED_S = 0.3
# Export and parity time as a multiple of the refit's, measured on 20k rows x 10 columns: forests
# write every node (extra trees grow deeper), boosters are compact.
EXPORT_FACTOR = {"random_forest": 1.0, "extra_trees": 3.5}
EXPORT_FACTOR_DEFAULT = 0.5
REFIT_MARGIN = 1.2
# Families whose fits release the GIL and gain little from more threads per fit on the tables
# the sweep measured (CatBoost on ~4k rows; the forests fit with n_jobs=1): in the pool's elastic
# tail they take the idle cores as fold fits side by side instead (`tuning.search`'s lanes).
SIDE_BY_SIDE = frozenset({"catboost", "random_forest", "extra_trees"})


@dataclass(frozen=True)
class Inputs:
    """The splits as a job trains on them."""

    train: pd.DataFrame
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_valid: pd.DataFrame
    y_valid: np.ndarray

    def copy(self) -> Inputs:
        return Inputs(
            self.train.copy(deep=False),
            self.x_train.copy(deep=False),
            self.y_train.copy(),
            self.x_valid.copy(deep=False),
            self.y_valid.copy(),
        )


_CACHE: dict[tuple[Any, ...], Inputs] = {}  # this process's latest splits, one entry
_CACHE_LOCK = threading.Lock()  # a Dask worker runs jobs on threads
_LOADS: list[tuple[Any, ...]] = []  # what this process read from disk, in order (`loads`)
_APPLIED: list[int] = []  # the thread limit last set in this worker


def loads() -> list[tuple[Any, ...]]:
    """The splits this process has read from disk, one entry per read (tests count them)."""
    return list(_LOADS)


def forget() -> None:
    """Drop the kept splits (the parent, after its insurance runs)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _identity(path: Path) -> tuple[Any, ...]:
    stat = os.stat(path)
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


def read_inputs(job: TrainJob, schema: Schema) -> Inputs:
    """The job's splits, read once per process for as long as the files are unchanged."""
    key = (_identity(job.train), _identity(job.valid), _identity(job.schema))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            train, valid = pd.read_parquet(job.train), pd.read_parquet(job.valid)
            cached = Inputs(
                train,
                feature_frame(train, schema),
                target_vector(train, schema),
                feature_frame(valid, schema),
                target_vector(valid, schema),
            )
            _CACHE.clear()  # one set of splits: a worker's memory holds one, as before
            _CACHE[key] = cached
            _LOADS.append(key)
        return cached.copy()


def lanes(candidate: str, share: int) -> int:
    """How many of the search's fold fits may run side by side now: one, or in the pool's
    elastic tail as many as the job's share fits into the cores it may use, for the families
    whose fits release the GIL (`SIDE_BY_SIDE`)."""
    if candidate not in SIDE_BY_SIDE:
        return 1
    return max(1, workers.threads_now(share) // max(1, share))


def _threads(candidate: str, share: int) -> int:
    """Threads for the next fit: the job's share, or more in the pool's elastic tail (unless
    the fits run side by side, each on the share); the OpenMP/BLAS limit of a pool worker
    follows."""
    threads = share if lanes(candidate, share) > 1 else workers.threads_now(share)
    if workers.in_pool() and _APPLIED[-1:] != [threads]:
        threadpool_limits(limits=threads)
        _APPLIED[:] = [threads]
    return threads


def train_candidate(job: TrainJob) -> RunResult:
    start = time.perf_counter()
    # The share counts from here: a worker's start-up (imports) is not the job's time.
    deadline = min(job.hard_deadline, time.monotonic() + job.share_s)
    result = RunResult(job.candidate, "failed", key=job.key, budget_s=job.budget_s)
    schema = Schema.load(job.schema)
    n_classes = len(schema.classes or [])
    data = read_inputs(job, schema)
    train, x_train, y_train = data.train, data.x_train, data.y_train
    x_valid, y_valid = data.x_valid, data.y_valid
    family = candidates.FAMILIES[job.candidate]

    def build(params: dict[str, Any], final: bool = False) -> Any:
        # The saved model keeps the job's share (CatBoost stores its thread count and cannot
        # change it once fitted): only the search's fold fits take the elastic tail's threads.
        threads = _threads(job.candidate, job.threads)
        count = job.threads if final else threads
        return candidates.build(job.candidate, schema, job.seed, params, count, rows=len(x_train))

    try:
        if family.trials and job.tune:
            pipeline, refit_s = _tune_and_refit(
                job, deadline, result, build, schema, train, x_train, y_train
            )
        else:
            pipeline = build({}, final=True)
            info = fitting.fit(
                pipeline, family, x_train, y_train, seed=job.seed, deadline=job.hard_deadline
            )
            refit_s, result.complete = info.seconds, True
            result.recipe = recipe(
                {}, "train", job.threads, rounds=info.rounds if info.truncated else None
            )
    except Exception as exc:  # a model failing on this data is a result, not a crash
        result.reason = f"training failed: {type(exc).__name__}: {exc}"[:300]
        return _finish(result, start)
    result.fit_s = round(refit_s, 3)
    align_thresholds(pipeline)  # thresholds where the ONNX graph compares; predictions unchanged
    result.params = candidates.describe(pipeline)
    prediction = fitting.predict(pipeline, x_valid, n_classes)
    result.validation = evaluate(schema.task, y_valid, prediction, n_classes)
    result.status = "done"

    files = runcache.RunFiles.of(job.out_dir, job.candidate, job.key)
    with atomic.atomic_path(files.joblib) as tmp:
        joblib.dump(pipeline, tmp)
    result.joblib = str(files.joblib)
    exported = time.perf_counter()
    try:
        if job.candidate == candidates.BASELINE:  # known: saves loading skl2onnx in the worker
            raise ExportError(f"no ONNX converter for {type(pipeline[-1]).__name__} (skl2onnx)")
        model = export_pipeline(pipeline, schema, x_valid)
    except ExportError as exc:
        result.reason = exc.reason
    else:
        atomic.write_bytes(files.onnx, model)
        result.onnx = str(files.onnx)
        parity = check_export(pipeline, model, {"train": x_train, "valid": x_valid}, schema)
        result.parity = parity.to_dict()
        result.deployable = parity.ok
        result.reason = parity.reason
    result.export_s = round(time.perf_counter() - exported, 3)
    _finish(result, start)
    runcache.save(files, result)
    return result


def _tune_and_refit(
    job: TrainJob,
    deadline: float,
    result: RunResult,
    build: Any,
    schema: Schema,
    train: pd.DataFrame,
    x: pd.DataFrame,
    y: Any,
) -> tuple[Any, float]:
    """The search's best configuration refitted on all training rows, and the refit's seconds."""
    family = candidates.FAMILIES[job.candidate]
    folds = cv.plan(
        train,
        y,
        task=schema.task,
        strategy=job.split_strategy,
        column=job.split_column,
        seed=job.seed,
    )
    described = folds.describe()
    result.cv = described
    k = max(2, len(folds.folds))
    export_factor = EXPORT_FACTOR.get(job.candidate, EXPORT_FACTOR_DEFAULT)

    def refit_s(per_fold: float) -> float:  # all rows instead of (k-1)/k of them, and a margin
        return per_fold * k / (k - 1) * REFIT_MARGIN

    def export_s(refit: float) -> float:
        return EXPORT_FIXED_S + export_factor * refit

    def keep_free(per_fold: float) -> float:
        return refit_s(per_fold) + export_s(refit_s(per_fold))

    found = tuning.search(
        job.candidate,
        list(job.configs),
        folds,
        x,
        y,
        schema_task=schema.task,
        n_classes=len(schema.classes or []),
        metric=job.metric,
        direction=job.direction,
        seed=job.seed,
        build=build,
        deadline=deadline,
        keep_free=keep_free,
        lanes=lambda: lanes(job.candidate, job.threads),
    )
    result.search = {
        "planned": found.planned,
        "tried": len(found.trials),
        "pruned": sum(t.pruned for t in found.trials),
        "stopped": found.stopped,
        "trials": [t.to_dict() for t in found.trials],
    }
    if found.best is None:
        raise RuntimeError("no configuration could be scored: " + (found.stopped or "no folds"))
    best = found.best
    described.update(mean=best.mean, std=round(best.std, 6), scores=best.scores)
    result.search["best"] = best.to_dict()
    if found.best_predictions:
        files = runcache.RunFiles.of(job.out_dir, job.candidate, job.key)
        result.oof = str(oof.save(files.oof, folds.folds, found.best_predictions, y))
    rounds = fitting.refit_rounds(best.rounds) if family.booster else None
    refit = refit_s(float(np.mean(best.fold_s)))
    late = time.monotonic() + refit + export_s(refit) > job.hard_deadline
    if late and found.best_fold_model is not None:
        result.notes.append(
            "no time left to refit on the whole training split: the model is one of the best "
            "configuration's cross-validation fold models"
        )
        result.complete = False
        result.recipe = recipe(
            best.params, "fold", job.threads, fold=found.best_fold, truncated=best.truncated
        )
        return found.best_fold_model, max(best.fold_s)
    pipeline = build(best.params, final=True)
    info = fitting.fit(
        pipeline,
        family,
        x,
        y,
        seed=job.seed,
        deadline=job.hard_deadline - export_s(refit),
        rounds=rounds,
    )
    if info.truncated:
        result.notes.append("the refit's boosting was stopped by the time budget")
    result.complete = found.complete and not info.truncated
    kept = info.rounds if info.truncated else rounds
    result.recipe = recipe(best.params, "train", job.threads, rounds=kept, truncated=info.truncated)
    return pipeline, info.seconds


def recipe(
    params: dict[str, Any],
    fit_on: str,
    threads: int,
    *,
    fold: int | None = None,
    rounds: int | None = None,
    truncated: bool = False,
) -> dict[str, Any]:
    """How the final model was fitted, enough for `reproduce` to fit it again without a clock:
    its configuration, its rows (the training split, or one CV fold) and its boosting rounds
    (None: early stopping decides, as it did)."""
    return {
        "params": {k: candidates.plain(v) for k, v in params.items()},
        "fit_on": fit_on,
        "threads": threads,
        "fold": fold,
        "rounds": rounds,
        "truncated": truncated,
    }


def _finish(result: RunResult, start: float) -> RunResult:
    result.duration_s = round(time.perf_counter() - start, 3)
    # Evidence that the worker's thread limit held: the largest pool any native library used.
    result.threads = max((p["num_threads"] for p in threadpool_info()), default=None)
    return result
