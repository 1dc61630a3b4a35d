"""The model phase's training stage: reuse finished runs, then train the rest in worker processes
under the time budget, streaming each result as it arrives.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import METRICS, Direction
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.core.model import (
    candidates,
    executors,
    insurance,
    runcache,
    sampling,
    schedule,
    worker_entry,
)
from mlwizard.core.model.budget import Budget, finish_reserve, job_deadline, refit_reserve
from mlwizard.core.model.candidates import BASELINE, FAMILIES, START_ORDER
from mlwizard.core.model.jobs import RunResult, TrainJob
from mlwizard.core.model.leaderboard import RunLog
from mlwizard.core.model.metrics import check_metric

SPLIT_NAMES = ("train", "valid", "test")
STEPS = ("train", "choose", "refit", "evaluate")  # reported to the shells (`finish` goes on)
# Caps the configurations each family's search tries (tests, quick looks); part of the run key.
TRIALS_ENV = "MLWIZARD_TUNING_TRIALS"


@dataclass(frozen=True)
class Planned:
    name: str
    key: str
    configs: tuple[dict[str, Any], ...]
    files: runcache.RunFiles


def run_phase(ctx: PhaseContext, started: float) -> PhaseResult:
    settings = ctx.config.model
    seed = ctx.config.project.seed
    discovery = ctx.upstream["discovery"].metrics
    paths = {name: ctx.require("data", name) for name in (*SPLIT_NAMES, "schema")}
    schema = Schema.load(paths["schema"])
    metric: str = discovery["metric"]
    check_metric(schema.task, metric)
    direction: Direction = discovery.get("metric_direction") or METRICS[schema.task][metric]
    names = _candidate_names(settings.candidates)
    seconds = float(ctx.time_budget if ctx.time_budget is not None else settings.time_budget)
    reserve = finish_reserve(seconds, _eval_rows(ctx, paths), len(names))
    budget = Budget(seconds, started, reserve + refit_reserve(seconds, settings.refit_full))
    strategy, column = _split(ctx)

    out_dir = ctx.register("candidates", ctx.artifact("candidates"))  # one cached run each
    out_dir.mkdir(parents=True, exist_ok=True)
    train, sample = sampling.prepare(ctx, paths["train"], schema, seed, seconds, settings.workers)
    files = {"train": train, "valid": paths["valid"], "schema": paths["schema"]}
    data_hash = {n: ctx.workspace.file_hash(path) for n, path in files.items()}
    balance = _class_balance(ctx)
    skewed = schema.task == "regression" and _skewed(paths["train"], schema.target)
    categorical = bool(schema.categorical)
    planned = {
        name: _plan(
            name,
            schema.task,
            seed,
            metric,
            strategy,
            column,
            data_hash,
            out_dir,
            balance,
            skewed,
            categorical,
        )
        for name in names
    }
    steps = ctx.steps(*STEPS)
    steps.begin("train")
    log = RunLog(ctx, metric, seed)
    log.total = len(names)
    results: dict[str, RunResult] = {}
    for name in names:
        cached = runcache.load(planned[name].files, seconds)
        if cached is not None:
            results[name] = log.record(cached, reused=True)

    to_train = [n for n in START_ORDER if n in planned and n not in results]
    executor = executors.resolve(ctx.executor or settings.executor)
    workers, threads = executor.plan(settings.workers, len(to_train))
    to_train = _start_order(to_train, train, schema, workers, budget)
    if to_train:
        ctx.message(
            f"training {len(to_train)} candidate(s) ({', '.join(to_train)}) on "
            f"{executor.description}, within a time budget of {seconds:g}s "
            f"({budget.reserve:.1f}s of it kept for the final evaluation); tuning by "
            f"{_cv_words(schema.task, strategy, column)} on the training split",
            workers=workers,
            threads=threads,
        )
    trainer = _Trainer(ctx, planned, results, log, budget, workers, threads, executor)
    job_fields = {
        "train": train,  # the split, or a sample of it when it is too large
        "valid": paths["valid"],
        "schema": paths["schema"],
        "seed": seed,
        "metric": metric,
        "direction": direction,
        "split_strategy": strategy,
        "split_column": column,
    }
    cover = insurance.Insurance(
        [
            insurance.quick_job(
                trainer.make_job(n, time.monotonic(), job_fields),
                runcache.run_key(full=planned[n].key, quick=True),
            )
            for n in insurance.insured(to_train, budget)
        ]
    ).start()
    unfinished = trainer.run(to_train, job_fields)
    if any(n in cover.names for n in unfinished) and not ctx.cancel.is_set():
        cover.wait(until=budget.training_deadline + budget.reserve / 2)
    for name in unfinished:
        if name in cover.results and not ctx.cancel.is_set():
            results[name] = log.record(cover.results[name])
        elif ctx.cancel.is_set():
            results[name] = log.record(RunResult(name, "cancelled", "cancelled"))
        else:
            reason = (
                "still training when the time budget ran out"
                if name in trainer.started
                else "not started before the time budget ran out"
            )
            results[name] = log.record(RunResult(name, "skipped", reason))
    ctx.check_cancelled()

    if not ctx.cancel.is_set() and not any(r.finished for r in results.values()):
        cover.wait(until=budget.end - insurance.END_MARGIN_S)
        raise QualityGateError(
            insurance.nothing_finished([results[n] for n in names], budget, cover.took())
        )
    from mlwizard.core.model.finish import Inputs, finish

    inputs = Inputs(
        schema=schema,
        paths=paths,
        metric=metric,
        direction=direction,
        seed=seed,
        budget=budget,
        workers=workers,
        threads=threads,
        log=log,
        ordered=[results[name] for name in names],
        split={"strategy": strategy, "column": column},
        steps=steps,
    )
    outcome = finish(ctx, inputs)
    if sample is not None:
        outcome.metrics["training_sample"] = sample.to_dict()
    kept = {planned[n].files.result.stem for n in names}
    kept |= {Path(r.onnx).stem for r in inputs.ordered if r.onnx}  # the ensemble
    runcache.prune(out_dir, kept)
    runcache.prune(out_dir / insurance.INSURED_DIR, kept)
    return outcome


class _Trainer:
    """Feeds the pool: each job gets its share of the budget when it starts; each result is
    recorded (experiment store, message) the moment it arrives."""

    def __init__(
        self,
        ctx: PhaseContext,
        planned: dict[str, Planned],
        results: dict[str, RunResult],
        log: RunLog,
        budget: Budget,
        workers: int,
        threads: int,
        executor: executors.Executor,
    ) -> None:
        self.ctx, self.planned, self.results, self.log = ctx, planned, results, log
        self.budget, self.workers, self.threads = budget, workers, threads
        self.executor = executor
        self.started: set[str] = set()
        self.running_until: dict[str, float] = {}
        self.queue: list[str] = []
        self.job_fields: dict[str, Any] = {}

    def run(self, to_train: list[str], job_fields: dict[str, Any]) -> list[str]:
        """Train `to_train` in order; returns those not finished."""
        if not to_train:
            return []
        self.queue, self.job_fields = list(to_train), job_fields
        # The parent is idle while workers train: load what the final evaluation needs meanwhile.
        threading.Thread(target=_preload, daemon=True).start()
        return self.executor.run_jobs(
            worker_entry.run,
            to_train,
            self.make_job,
            workers=self.workers,
            threads=self.threads,
            deadline=self.budget.training_deadline,
            cancel=self.ctx.cancel,
            on_done=self.on_done,
            on_start=self.on_start,
        )

    def make_job(self, name: str, now: float, job_fields: dict[str, Any] | None = None) -> TrainJob:
        queued = [FAMILIES[n].weight for n in self.queue if n not in self.started and n != name]
        deadline = job_deadline(
            now,
            self.budget.training_deadline,
            self.workers,
            FAMILIES[name].weight,
            queued,
            list(self.running_until.values()),
        )
        planned = self.planned[name]
        return TrainJob(
            candidate=name,
            key=planned.key,
            out_dir=planned.files.result.parent,
            configs=planned.configs,
            threads=self.threads,
            budget_s=self.budget.seconds,
            share_s=deadline - now,
            hard_deadline=self.budget.training_deadline,
            **(job_fields or self.job_fields),
        )

    def on_start(self, name: str, job: TrainJob) -> None:
        self.started.add(name)
        self.running_until[name] = time.monotonic() + job.share_s
        share = f"{job.share_s:.1f}" if job.share_s < 10 else f"{job.share_s:.0f}"
        text = f"{name}: started (its share of the time budget: {share}s)"
        started = ev.CandidateStarted(name, job.share_s)
        self.ctx.emit(ev.Event(self.ctx.phase, "message", text, payload=started))

    def on_done(self, name: str, result: RunResult | None, error: str | None) -> None:
        self.running_until.pop(name, None)
        if result is None and (self.ctx.cancel.is_set() or _interrupted(error)):
            result = RunResult(name, "cancelled", "cancelled")
        elif result is None:
            result = RunResult(name, "failed", f"worker error: {error}"[:300])
        self.ctx.library_warnings.extend(result.library_warnings)
        result.library_warnings = []
        self.results[name] = self.log.record(result)


def _interrupted(error: str | None) -> bool:
    """A worker stopped by Ctrl-C reports a KeyboardInterrupt, not a failure of the model."""
    return bool(error) and str(error).split(":", 1)[0] in {"KeyboardInterrupt", "CancelledError"}


def _plan(
    name: str,
    task: str,
    seed: int,
    metric: str,
    strategy: str,
    column: str,
    data_hash: dict[str, str],
    out_dir: Path,
    class_balance: dict[str, float] | None = None,
    skewed: bool = False,
    categorical: bool = False,
) -> Planned:
    trials = FAMILIES[name].trials
    cap = os.environ.get(TRIALS_ENV, "").strip()
    if cap.isdigit() and trials:
        trials = max(1, min(trials, int(cap)))
    imbalanced = candidates.imbalanced(class_balance)
    configs = tuple(
        candidates.sample_params(name, task, seed, trials, imbalanced, skewed, categorical)
    )
    key = runcache.run_key(
        candidate=name,
        configs=configs,
        trials=trials,
        data=data_hash,
        seed=seed,
        metric=metric,
        split={"strategy": strategy, "column": column},
    )
    return Planned(name, key, configs, runcache.RunFiles.of(out_dir, name, key))


def _preload() -> None:
    """Load the final evaluation's code (and skl2onnx, for an ensemble's export)."""
    for module in ("mlwizard.core.model.finish", "skl2onnx"):
        importlib.import_module(module)


def _start_order(
    names: list[str], train: Path, schema: Schema, workers: int, budget: Budget
) -> list[str]:
    """The jobs in the order they start (`schedule`): longest first when the budget holds."""
    if workers <= 1 or len(names) <= workers:
        return names
    import pyarrow.parquet as pq

    from mlwizard.core.discovery.feasibility import contention

    return schedule.order(
        names,
        rows=pq.ParquetFile(train).metadata.num_rows,
        features=len(schema.features),
        workers=workers,
        seconds=budget.training_deadline - time.monotonic(),
        slowdown=contention(extra=workers),
    )


def _skewed(train: Path, target: str) -> bool:
    """Whether the regression target is long-tailed (a log scale joins the search)."""
    import pyarrow.parquet as pq

    column = pq.read_table(train, columns=[target]).column(0)
    return candidates.skewed(column.to_numpy(zero_copy_only=False))


def _class_balance(ctx: PhaseContext) -> dict[str, float] | None:
    """The training split's class shares, from the data phase's report (classifiers)."""
    splits = ctx.upstream["data"].metrics.get("splits") or {}
    train = splits.get("train") if isinstance(splits, dict) else None
    return train.get("class_balance") if isinstance(train, dict) else None


def _eval_rows(ctx: PhaseContext, paths: dict[str, Path]) -> int:
    """Validation and test rows, from the data phase's report (else the Parquet footers)."""
    splits = ctx.upstream["data"].metrics.get("splits") or {}
    try:
        return sum(int(splits[n]["rows"]) for n in ("valid", "test"))
    except (KeyError, TypeError, ValueError):
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(paths[n]).metadata.num_rows for n in ("valid", "test"))


def _split(ctx: PhaseContext) -> tuple[str, str]:
    """The strategy the data phase actually split with, and its column (if any)."""
    split = ctx.config.split
    strategy = ctx.upstream["data"].metrics.get("split_strategy") or split.strategy
    column = {"time": split.time_column, "group": split.group_column}.get(strategy, "")
    return strategy, column


def _cv_words(task: str, strategy: str, column: str) -> str:
    if strategy == "group" and column:
        return f"group k-fold on '{column}'"
    if strategy == "time" and column:
        return f"time-ordered folds on '{column}'"
    return "shuffled k-fold" if task == "regression" else "stratified k-fold"


def _candidate_names(configured: tuple[str, ...]) -> list[str]:
    """Configured candidates, deduplicated; the baseline always runs (the success criterion
    compares against it when no threshold is set)."""
    names = list(dict.fromkeys(configured))
    candidates.check_names(names)
    return names if BASELINE in names else [BASELINE, *names]
