"""How the model phase tells what happened: one experiment-store row and one readable message per
run, the leaderboard, and the per-candidate summary kept in the phase's metrics.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from mlwizard.core.contract.tasks import Direction
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.model.choice import ranker
from mlwizard.core.model.experiments import STORE_FILE, ExperimentStore
from mlwizard.core.model.jobs import RunResult


class RunLog:
    """Records each finished run in the experiment store and reports it as a message."""

    def __init__(self, ctx: PhaseContext, metric: str, seed: int) -> None:
        self.ctx = ctx
        self.metric = metric
        self.seed = seed
        self.phase_run_id = uuid.uuid4().hex
        self.total = 0  # candidates this phase run records, for progress events
        self.done = 0
        self.store = ExperimentStore(
            ctx.register("experiments", ctx.workspace.state_dir / STORE_FILE),
            tracking_uri=ctx.config.model.tracking_uri or None,
            experiment=ctx.config.project.name,
        )
        self.wandb: Any = None  # runs mirrored to W&B, offline ([model] wandb_project)
        if ctx.config.model.wandb_project:
            from mlwizard.core.model.wandb_tracking import WandbTracker

            self.wandb = WandbTracker(ctx.config.model.wandb_project, ctx.workspace.root)

    def record(self, result: RunResult, reused: bool = False) -> RunResult:
        result.score = result.validation.get(self.metric)
        result.reused = reused
        cv = result.cv or {}
        search = result.search or {}
        row = {
            "run_id": uuid.uuid4().hex,
            "phase_run_id": self.phase_run_id,
            "candidate": result.candidate,
            "status": result.status,
            "params": result.params,
            "metrics": {
                "validation": result.validation,
                "parity": result.parity,
                "fit_s": result.fit_s,
                "threads": result.threads,
                "cv": cv or None,
                "search": {k: v for k, v in search.items() if k != "trials"} or None,
                "complete": result.complete,
                "reused": reused,
                "run_key": result.key,
            },
            "duration_s": result.duration_s,
            "data_fingerprint": self.ctx.upstream["data"].fingerprint,
            "seed": self.seed,
            "started_at": result.started_at,
            "deployable": result.deployable,
            "reason": result.reason or None,
            "onnx_path": self._relative(result.onnx),
        }
        self.store.record(row)
        if self.wandb is not None:
            self.wandb.submit_run(row)
        finished = ev.CandidateFinished(
            result.candidate,
            result.status,
            result.score,
            result.duration_s,
            result.deployable,
            reused,
        )
        self.ctx.emit(ev.Event(self.ctx.phase, "message", self.describe(result), payload=finished))
        if self.total:
            self.done = min(self.total, self.done + 1)
            step = ev.StepProgress("candidates", self.done, self.total, result.candidate)
            self.ctx.emit(ev.Event(self.ctx.phase, "message", "", payload=step))
        return result

    def _relative(self, path: str | None) -> str | None:
        return self.ctx.workspace.relative(Path(path)) if path else None

    def describe(self, r: RunResult) -> str:
        name = r.candidate
        if r.status != "done":
            return f"{name}: {r.status} ({r.reason})"
        how = (
            "reused from an earlier run (not retrained)"
            if r.reused
            else f"done in {r.duration_s:.1f}s"
        )
        head = f"{name}: {how}, validation {self.metric} {fmt(r.score)}"
        cv, search = r.cv or {}, r.search or {}
        if cv.get("mean") is not None:
            tried = search.get("tried", 1)
            head += (
                f" ({_cv_words(cv)}, "
                f"best of {tried} configuration{'s' if tried != 1 else ''}"
                + (f", {search['pruned']} pruned" if search.get("pruned") else "")
                + ")"
            )
        if search.get("stopped"):
            head += f"; search cut short: {search['stopped']}"
        for note in r.notes or []:
            head += f"; {note}"
        if r.deployable:
            return (
                f"{head}; deployable (ONNX max diff {(r.parity or {}).get('max_abs_diff', 0):.1e})"
            )
        return f"{head}; not deployable: {r.reason}"


def _cv_words(cv: dict[str, Any]) -> str:
    """'5-fold StratifiedKFold 0.97 ± 0.01'; a spread only when more than one fold was scored."""
    folds, scored = cv.get("folds"), len(cv.get("scores") or [])
    if scored and folds and scored < folds:
        return f"{scored} of {folds} {cv['kind']} folds scored: {fmt(cv['mean'])}"
    if scored == 1:
        return f"1 {cv['kind']} fold: {fmt(cv['mean'])}"
    return f"{folds}-fold {cv['kind']} {fmt(cv['mean'])} ± {fmt(cv['std'])}"


def summary(r: RunResult) -> dict[str, Any]:
    keys = ("status", "deployable", "reason", "score", "duration_s")
    cv, search = r.cv or {}, r.search or {}
    return {
        "name": r.candidate,
        **{k: getattr(r, k) for k in keys},
        "cv_mean": cv.get("mean"),
        "cv_std": cv.get("std"),
        "trials": search.get("tried"),
        "complete": r.complete,
        "reused": r.reused,
    }


def leaderboard(
    ordered: list[RunResult],
    metric: str,
    direction: Direction,
    best: RunResult | None,
    baseline: float | None,
    ctx: PhaseContext,
) -> dict[str, Any]:
    """Finished runs best first (undefined scores last), then the rest in configured order."""
    sign = -1.0 if direction == "maximize" else 1.0
    finished = [r for r in ordered if r.status == "done"]
    # Ranked as the choice ranks them: common CV folds and validation pooled (`choice`).
    rank_score = ranker([r for r in finished if r.deployable])
    finished.sort(key=lambda r: (rank_score(r) is None, sign * (rank_score(r) or 0.0)))
    rows = finished + [r for r in ordered if r.status != "done"]
    return {
        "metric": metric,
        "direction": direction,
        "best_model": best.candidate if best else None,
        "baseline": baseline,
        "rows": [
            {
                **summary(r),
                "rank_score": rank_score(r),
                "validation": r.validation,
                "cv": r.cv,
                "search": r.search,
                "params": r.params,
                "parity": r.parity,
                "onnx": ctx.workspace.relative(Path(r.onnx)) if r.onnx else None,
            }
            for r in rows
        ],
    }


def why_best(
    best: RunResult,
    deployable: list[RunResult],
    metric: str,
    direction: Direction,
    baseline: float | None,
) -> str:
    rank_score = ranker(deployable)  # as `choice` ranked them, not by validation alone
    others = sorted(
        (r for r in deployable if r is not best and rank_score(r) is not None),
        key=lambda r: rank_score(r) or 0.0,
        reverse=direction == "maximize",
    )
    text = (
        f"best: {best.candidate} (validation {metric} {fmt(best.score)}), the best of "
        f"{len(deployable)} deployable candidate(s)"
    )
    extra = []
    if others:
        runner = others[0]
        extra.append(f"runner-up {runner.candidate}, validation {metric} {fmt(runner.score)}")
    if baseline is not None:
        extra.append(f"baseline {fmt(baseline)}")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def left_out(ordered: list[RunResult]) -> list[str]:
    """Lines naming what was not deployable, skipped, or cut short."""
    lines = []
    undeployable = [r for r in ordered if r.status == "done" and not r.deployable]
    if undeployable:
        lines.append(
            "not deployable: " + "; ".join(f"{r.candidate} ({r.reason})" for r in undeployable)
        )
    skipped = [r for r in ordered if r.status == "skipped"]
    if skipped:
        lines.append(
            "skipped by the time budget: "
            + "; ".join(f"{r.candidate} ({r.reason})" for r in skipped)
        )
    short = [r for r in ordered if r.status == "done" and not r.complete]
    if short:
        lines.append(
            "search cut short by the time budget (a larger budget may find better): "
            + ", ".join(r.candidate for r in short)
        )
    failed = [r for r in ordered if r.status == "failed"]
    if failed:
        lines.append("failed: " + "; ".join(f"{r.candidate} ({r.reason})" for r in failed))
    return lines
