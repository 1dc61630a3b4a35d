"""Model: train candidate pipelines in worker processes and keep the best deployable one.

Each candidate is fitted on the train split, scored on validation, exported to ONNX and checked
for parity on the validation rows; only an export that reproduces its pipeline is deployable.
The best deployable candidate by the discovery metric is evaluated once on the test split,
through its ONNX model, since that is what will be served. Every run lands in the project's
experiment store.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from mlwizard.core import atomic
from mlwizard.core.errors import BadInputError, MlwizardError
from mlwizard.core.features import feature_frame, target_vector
from mlwizard.core.ml.candidates import BASELINE, check_names
from mlwizard.core.ml.experiments import STORE_FILE, ExperimentStore
from mlwizard.core.ml.metrics import Scores, check_metric, evaluate, is_better, reaches
from mlwizard.core.ml.onnx_export import make_session, predict_onnx
from mlwizard.core.ml.training import TrainJob, new_result, train_candidate
from mlwizard.core.ml.workers import plan, run_jobs
from mlwizard.core.pipeline import PhaseContext, PhaseResult
from mlwizard.core.schema import Schema
from mlwizard.core.tasks import METRICS, Direction

SPLIT_NAMES = ("train", "valid", "test")


def run(ctx: PhaseContext) -> PhaseResult:
    ctx.check_cancelled()
    settings = ctx.config.model
    seed = ctx.config.project.seed
    discovery = ctx.upstream["discovery"].metrics
    splits = {name: _data_artifact(ctx, name) for name in (*SPLIT_NAMES, "schema")}
    schema = Schema.load(splits["schema"])
    metric: str = discovery["metric"]
    check_metric(schema.task, metric)
    direction: Direction = discovery.get("metric_direction") or METRICS[schema.task][metric]
    threshold: float | None = discovery.get("success_threshold")

    names = _candidate_names(settings.candidates)
    budget = ctx.time_budget if ctx.time_budget is not None else settings.time_budget
    workers, threads = plan(settings.workers, len(names))
    out_dir = ctx.workspace.artifact_dir("model") / "candidates"
    _remove_candidate_files(out_dir, names)
    jobs = {
        name: TrainJob(name, splits["train"], splits["valid"], splits["schema"], out_dir, seed)
        for name in names
    }
    log = _RunLog(ctx, metric, seed)
    results: dict[str, dict[str, Any]] = {}

    def on_done(name: str, result: dict[str, Any] | None, error: str | None) -> None:
        if result is None:
            result = new_result(name, "failed", f"worker error: {error}"[:300])
        results[name] = log.record(result)

    ctx.message(
        f"training {len(names)} candidates ({', '.join(names)}) in {workers} worker "
        f"process(es), {threads} thread(s) each, time budget {budget:g}s"
    )
    unfinished = run_jobs(
        train_candidate,
        jobs,
        workers=workers,
        threads=threads,
        deadline=time.monotonic() + budget,  # covers worker start-up; not the test evaluation
        cancel=ctx.cancel,
        on_done=on_done,
    )
    _remove_temp_files(out_dir)  # left behind by workers terminated mid-write
    for name in unfinished:
        if ctx.cancel.is_set():
            results[name] = log.record(new_result(name, "cancelled", "cancelled by the user"))
        else:
            reason = f"time budget of {budget:g}s ran out"
            results[name] = log.record(new_result(name, "skipped", reason))
    ctx.check_cancelled()

    ordered = [results[name] for name in names]
    finished = [r for r in ordered if r["status"] == "done"]
    if not finished:
        raise MlwizardError(_nothing_finished(ordered, budget))
    baseline = results[BASELINE]["score"] if results[BASELINE]["status"] == "done" else None
    best = _best([r for r in finished if r["deployable"]], direction)
    leaderboard = atomic.write_json(
        ctx.artifact("leaderboard.json"),
        _leaderboard(ordered, metric, direction, best, baseline, ctx),
    )
    if best is None:
        raise MlwizardError(
            "no candidate can be deployed: "
            + "; ".join(f"{r['candidate']}: {r['status']} ({r['reason']})" for r in ordered)
        )

    name = best["candidate"]
    outputs = {
        "onnx": atomic.write_bytes(ctx.artifact("model.onnx"), Path(best["onnx"]).read_bytes()),
        "pipeline": atomic.write_bytes(
            ctx.artifact("model.joblib"), Path(best["joblib"]).read_bytes()
        ),
        "leaderboard": leaderboard,
    }
    test = _test_scores(splits["test"], schema, outputs["onnx"], threads=workers * threads)
    ctx.message(
        f"best: {name}, validation {metric} {_fmt(best['score'])}, test {metric} "
        f"{_fmt(test.get(metric))}",
        candidate=name,
        test=test,
    )
    metrics = {
        "task": schema.task,
        "metric": metric,
        "metric_direction": direction,
        "best_model": name,
        "baseline": baseline,
        "validation": {r["candidate"]: r["validation"] for r in finished},
        "test": test,
        "candidates": [_summary(r) for r in ordered],
        "skipped": [r["candidate"] for r in ordered if r["status"] == "skipped"],
        "parity": best["parity"],
        "success_threshold": threshold,
        "seed": seed,
        "workers": workers,
        "threads_per_worker": threads,
        "time_budget_s": budget,
        "phase_run_id": log.phase_run_id,
    }
    gate = _gate(metric, direction, threshold, test.get(metric), best, baseline)
    return PhaseResult(metrics=metrics, outputs=outputs, gate_failures=gate)


class _RunLog:
    """Records each finished run in the experiment store and reports it as a message."""

    def __init__(self, ctx: PhaseContext, metric: str, seed: int) -> None:
        self.ctx = ctx
        self.metric = metric
        self.seed = seed
        self.phase_run_id = uuid.uuid4().hex
        self.store = ExperimentStore(ctx.workspace.state_dir / STORE_FILE)

    def record(self, result: dict[str, Any]) -> dict[str, Any]:
        result["score"] = result["validation"].get(self.metric)
        self.store.record(
            {
                "run_id": uuid.uuid4().hex,
                "phase_run_id": self.phase_run_id,
                "candidate": result["candidate"],
                "status": result["status"],
                "params": result["params"],
                "metrics": {
                    "validation": result["validation"],
                    "parity": result["parity"],
                    "fit_s": result["fit_s"],
                    "threads": result["threads"],
                },
                "duration_s": result["duration_s"],
                "data_fingerprint": self.ctx.upstream["data"].fingerprint,
                "seed": self.seed,
                "started_at": result["started_at"],
                "deployable": result["deployable"],
                "reason": result["reason"] or None,
                "onnx_path": self._relative(result["onnx"]),
            }
        )
        self.ctx.message(
            self._describe(result),
            candidate=result["candidate"],
            status=result["status"],
            score=result["score"],
            duration_s=result["duration_s"],
            deployable=result["deployable"],
        )
        return result

    def _relative(self, path: str | None) -> str | None:
        return self.ctx.workspace.relative(Path(path)) if path else None

    def _describe(self, r: dict[str, Any]) -> str:
        head = f"{r['candidate']}: {r['status']}"
        if r["status"] != "done":
            return f"{head} ({r['reason']})"
        head += f", {self.metric} {_fmt(r['score'])} in {r['duration_s']:.1f}s"
        if r["deployable"]:
            return f"{head}, deployable (ONNX max diff {r['parity']['max_abs_diff']:.1e})"
        return f"{head}, not deployable: {r['reason']}"


def _data_artifact(ctx: PhaseContext, name: str) -> Path:
    try:
        path = ctx.upstream_artifact("data", name)
    except KeyError:
        raise BadInputError(f"the data phase recorded no '{name}' artifact; rerun it") from None
    if not path.is_file():
        raise BadInputError(f"{path}: missing; rerun the data phase (`mlwizard run --phase data`)")
    return path


def _candidate_names(configured: tuple[str, ...]) -> list[str]:
    """Configured candidates, deduplicated; the baseline always runs (the success criterion
    compares against it when no threshold is set)."""
    names = list(dict.fromkeys(configured))
    check_names(names)
    return names if BASELINE in names else [BASELINE, *names]


def _remove_candidate_files(out_dir: Path, names: list[str]) -> None:
    """A candidate that fails this time must not leave last run's model behind."""
    for name in names:
        for suffix in (".onnx", ".joblib"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)


def _remove_temp_files(out_dir: Path) -> None:
    for leftover in out_dir.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _best(deployable: list[dict[str, Any]], direction: Direction) -> dict[str, Any] | None:
    """The best validation score; ties go to the earlier candidate in the configured order."""
    best = None
    for result in deployable:
        if best is None or is_better(result["score"], best["score"], direction):
            best = result
    return best


def _test_scores(path: Path, schema: Schema, model: Path, threads: int) -> Scores:
    table = pd.read_parquet(path)
    x, y = feature_frame(table, schema), target_vector(table, schema)
    outputs = predict_onnx(make_session(model, threads=threads), x, schema)
    prediction = outputs["variable"] if schema.task == "regression" else outputs["probabilities"]
    return evaluate(schema.task, y, prediction, len(schema.classes or []))


def _gate(
    metric: str,
    direction: Direction,
    threshold: float | None,
    test_score: float | None,
    best: dict[str, Any],
    baseline: float | None,
) -> list[str]:
    if threshold is not None:
        if reaches(test_score, threshold, direction):
            return []
        side = "below" if direction == "maximize" else "above"
        return [
            f"test {metric} {_fmt(test_score)} is {side} the success threshold {threshold:g} "
            "set in mlwizard.toml [discovery] success_threshold"
        ]
    if baseline is None:
        return [
            f"the baseline ({BASELINE}) has no validation {metric}, so beating it cannot be "
            "checked; set [discovery] success_threshold in mlwizard.toml"
        ]
    if is_better(best["score"], baseline, direction):
        return []
    return [
        f"the best model ({best['candidate']}, validation {metric} {_fmt(best['score'])}) does "
        f"not beat the {BASELINE} baseline ({_fmt(baseline)})"
    ]


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "deployable", "reason", "score", "duration_s")
    return {"name": r["candidate"], **{k: r[k] for k in keys}}


def _leaderboard(
    ordered: list[dict[str, Any]],
    metric: str,
    direction: Direction,
    best: dict[str, Any] | None,
    baseline: float | None,
    ctx: PhaseContext,
) -> dict[str, Any]:
    """Finished runs best first (undefined scores last), then the rest in configured order."""
    sign = -1.0 if direction == "maximize" else 1.0
    finished = [r for r in ordered if r["status"] == "done"]
    finished.sort(key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0)))
    rows = finished + [r for r in ordered if r["status"] != "done"]
    return {
        "metric": metric,
        "direction": direction,
        "best_model": best["candidate"] if best else None,
        "baseline": baseline,
        "rows": [
            {
                **_summary(r),
                "validation": r["validation"],
                "parity": r["parity"],
                "onnx": ctx.workspace.relative(Path(r["onnx"])) if r["onnx"] else None,
            }
            for r in rows
        ],
    }


def _nothing_finished(results: list[dict[str, Any]], budget: float) -> str:
    if all(r["status"] == "skipped" for r in results):
        return (
            f"no candidate finished within the time budget of {budget:g}s; "
            "raise [model] time_budget in mlwizard.toml"
        )
    return "no candidate trained: " + "; ".join(
        f"{r['candidate']}: {r['status']} ({r['reason']})" for r in results
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
