"""The model phase for clustering and anomaly detection: the same worker pool, time budget, run
cache, experiment store and leaderboard as the supervised phase, with its own families.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import UNSUPERVISED_CANDIDATES
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model import runcache
from mlwizard.core.model.budget import Budget, finish_reserve, job_deadline
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import RunLog
from mlwizard.core.model.unsupervised import worker
from mlwizard.core.model.unsupervised.worker import WEIGHTS, UnsupervisedJob
from mlwizard.core.model.workers import plan, run_jobs

SPLITS = ("train", "valid", "test", "schema")


def run_phase(ctx: PhaseContext, started: float) -> PhaseResult:
    discovery = ctx.upstream["discovery"].metrics
    paths = {name: _data_artifact(ctx, name) for name in SPLITS}
    schema = Schema.load(paths["schema"])
    task, metric, seed = schema.task, discovery["metric"], ctx.config.project.seed
    names = list(UNSUPERVISED_CANDIDATES[task])
    settings = ctx.config.model
    seconds = float(ctx.time_budget if ctx.time_budget is not None else settings.time_budget)
    rows = sum(
        int((ctx.upstream["data"].metrics.get("splits") or {}).get(n, {}).get("rows", 0))
        for n in ("valid", "test")
    )
    budget = Budget(seconds, started, finish_reserve(seconds, rows, len(names)))
    out_dir = ctx.register("candidates", ctx.artifact("candidates"))  # one cached run each
    out_dir.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = {
        "task": task,
        "train": paths["train"],
        "valid": paths["valid"],
        "schema": paths["schema"],
        "out_dir": out_dir,
        "seed": seed,
        "clusters": int(discovery.get("clusters") or 0),
        "contamination": discovery.get("contamination"),
        "anomaly_class": discovery.get("anomaly_class"),
    }
    data_hash = {n: ctx.workspace.file_hash(paths[n]) for n in ("train", "valid", "schema")}
    keys = {
        name: runcache.run_key(
            candidate=name,
            data=data_hash,
            metric=metric,
            **{
                k: v
                for k, v in fields.items()
                if k in ("task", "seed", "clusters", "contamination", "anomaly_class")
            },
        )
        for name in names
    }
    log = RunLog(ctx, metric, seed)
    results: dict[str, RunResult] = {}
    for name in names:
        cached = runcache.load(runcache.RunFiles.of(out_dir, name, keys[name]), seconds)
        if cached is not None:
            results[name] = log.record(cached, reused=True)
    to_train = [n for n in names if n not in results]
    workers, threads = plan(settings.workers, len(to_train))
    if to_train:
        ctx.message(
            f"training {len(to_train)} {task} candidate(s) ({', '.join(to_train)}) in {workers} "
            f"worker process(es) within a time budget of {seconds:g}s",
            workers=workers,
            threads=threads,
        )
    running: dict[str, float] = {}

    def make_job(name: str, now: float) -> UnsupervisedJob:
        queued = [
            WEIGHTS[n] for n in to_train if n not in running and n != name and n not in results
        ]
        end = job_deadline(
            now, budget.training_deadline, workers, WEIGHTS[name], queued, list(running.values())
        )
        return UnsupervisedJob(
            candidate=name,
            key=keys[name],
            threads=threads,
            budget_s=seconds,
            share_s=end - now,
            hard_deadline=budget.training_deadline,
            **fields,
        )

    def on_start(name: str, job: UnsupervisedJob) -> None:
        running[name] = time.monotonic() + job.share_s
        ctx.message(f"{name}: started", candidate=name, started=True)

    def on_done(name: str, result: RunResult | None, error: str | None) -> None:
        running.pop(name, None)
        if result is None:
            result = RunResult(name, "failed", f"worker error: {error}"[:300])
        results[name] = log.record(result)

    unfinished = []
    if to_train:
        unfinished = run_jobs(
            worker.run,
            to_train,
            make_job,
            workers=workers,
            threads=threads,
            deadline=budget.training_deadline,
            cancel=ctx.cancel,
            on_done=on_done,
            on_start=on_start,
        )
    for name in unfinished:
        if ctx.cancel.is_set():
            results[name] = log.record(RunResult(name, "cancelled", "cancelled"))
        else:
            results[name] = log.record(RunResult(name, "skipped", "the time budget ran out"))
    ctx.check_cancelled()

    from mlwizard.core.model.unsupervised.finish import finish

    outcome = finish(ctx, schema, paths, [results[n] for n in names], log, budget, workers)
    runcache.prune(out_dir, {runcache.RunFiles.of(out_dir, n, keys[n]).result.stem for n in names})
    return outcome


def _data_artifact(ctx: PhaseContext, name: str) -> Path:
    try:
        path = ctx.upstream_artifact("data", name)
    except KeyError:
        raise BadInputError(f"the data phase recorded no '{name}' artifact; rerun it") from None
    if not path.is_file():
        raise BadInputError(f"{path}: missing; rerun the data phase (`mlwizard run --phase data`)")
    return path
