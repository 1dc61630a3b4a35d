"""The model phase after training: choose the best deployable run, set the decision threshold,
evaluate once on the test split, analyse errors, and write the phase's artifacts.

The test split is read here and only here, once, after every run has finished: choices (model,
threshold) are made on validation rows, so the test score stays an honest estimate. Its features
(not its labels) also check that the chosen export holds there (`deploycheck`), falling back to the
next deployable run if it does not; a manifest records how to rebuild the model (`manifest`).
Everything is predicted through the ONNX model, since that is what will be served; permutation
importance alone uses the native pipeline, on validation rows.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.discovery import feasibility, value
from mlwizard.core.export.onnx_export import make_session
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.core.model import (
    analysis,
    choice,
    deploycheck,
    ensemble,
    hypotheses,
    manifest,
    refit,
    report,
)
from mlwizard.core.model.candidates import BASELINE
from mlwizard.core.model.finishing import (
    Inputs,
    audit_path,
    class_counts,
    decision_rule,
    error_analysis,
    onnx_prediction,
    step,
    test_words,
)
from mlwizard.core.model.insurance import nothing_deployable, nothing_finished
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import leaderboard, left_out, summary, why_best
from mlwizard.core.model.metrics import details, evaluate

__all__ = ["Inputs", "finish"]

ENSEMBLE_AFTER_S = 0.5
ENSEMBLE_AFTER_SHARE = 0.5  # of the budget's reserve
REFIT_AFTER_S = 1.0  # kept after the refits: the test evaluation, error analysis, artifacts
REFIT_AFTER_SHARE = 0.05
RECORDED_THREADS = 1  # onnxruntime threads for the test predictions the manifest records


def finish(ctx: PhaseContext, i: Inputs) -> PhaseResult:
    step(i, "choose")
    finished = [r for r in i.ordered if r.status == "done"]
    if not finished:
        raise QualityGateError(nothing_finished(i.ordered, i.budget))
    base = next((r for r in finished if r.candidate == BASELINE), None)
    baseline = base.score if base else None
    schema, n_classes = i.schema, len(i.schema.classes or [])
    # The one read of the test split. Its features check the exports now (no labels: no leak);
    # its labels are scored once, at the end, for the chosen model only.
    test_table = pd.read_parquet(i.paths["test"])
    x_test = feature_frame(test_table, schema)
    # Ranked as `choice` ranks them (CV folds and validation pooled); the first whose export
    # holds on the test features is kept, the others are fallbacks.
    ranked = deploycheck.ranked([r for r in finished if r.deployable], i.direction)
    best = deploycheck.first_that_deploys(ranked, schema, x_test, ctx.message)
    deployable = [r for r in ranked if r.deployable]
    if best is None:
        atomic.write_json(
            ctx.artifact("leaderboard.json"),
            leaderboard(i.ordered, i.metric, i.direction, None, baseline, ctx),
        )
        raise QualityGateError(nothing_deployable(i.ordered, i.budget))
    valid = pd.read_parquet(i.paths["valid"])
    train_table = pd.read_parquet(i.paths["train"])  # for the refits; its rows judge the ensemble
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)

    combined, ensemble_report = _ensemble(ctx, i, deployable, best, x_valid, y_valid)
    if combined is not None:
        holds = deploycheck.holds_on_test(combined, schema, x_test)
        rows = {"train": len(train_table), "valid": len(valid), "test": len(test_table)}
        refit_full = ctx.config.model.refit_full
        why = (
            _no_refit(combined, best, deployable, rows, refit_full, _refit_deadline(i))
            if holds
            else combined.reason
        )
        if not holds or why:
            ctx.message(f"ensemble: not kept after all: {why}")
            i.ordered.append(combined)
            combined = None
            ensemble_report = {**(ensemble_report or {}), "kept": False, "dropped": why}
    if combined is not None:
        for runs in (i.ordered, finished, deployable):
            runs.append(combined)
        best = combined
    board = atomic.write_json(
        ctx.artifact("leaderboard.json"),
        leaderboard(i.ordered, i.metric, i.direction, best, baseline, ctx),
    )
    outputs: dict[str, Path] = {"leaderboard": board}
    folds = choice.common_folds(deployable)  # the CV folds every deployable run was ranked on
    ctx.message(
        why_best(best, deployable, i.metric, i.direction, baseline)
        + f" (chosen by {choice.how_chosen(best, i.metric, folds)})",
        candidate=best.candidate,
    )

    threads = max(1, i.workers * i.threads)
    session = make_session(best.onnx_path, threads=threads)
    valid_pred = onnx_prediction(session, x_valid, schema)

    decision = None
    if schema.task == "binary":
        decision = decision_rule(ctx, schema, y_valid, valid_pred, i.metric)
        outputs["decision"] = atomic.write_json(ctx.artifact("decision.json"), decision)
    cut = decision["threshold"] if decision else None

    y_test = target_vector(test_table, schema)
    # The chosen run's own model on the test rows: what the manifest's recipe rebuilds. One
    # thread, as `reproduce` scores it: onnxruntime sums a tree ensemble in a different order
    # on more threads, which moves probabilities in the 8th digit.
    run_test_pred = onnx_prediction(
        make_session(best.onnx_path, threads=RECORDED_THREADS), x_test, schema
    )
    # The refits (train + validation, every row), each checked on validation and test features.
    step(i, "refit")
    refits = refit.in_phase(
        ctx,
        best,
        deployable,
        i.schema,
        {"train": train_table, "valid": valid, "test": test_table},
        deadline=_refit_deadline(i),
    )
    step(i, "evaluate")
    refit_preds = {  # one thread too: the recorded digests do not depend on the machine
        kind: onnx_prediction(make_session(made.onnx, threads=RECORDED_THREADS), x_test, schema)
        for kind, made in (("test", refits.test), ("deployed", refits.deployed))
        if made is not None
    }
    test_pred = refit_preds.get("test", run_test_pred)
    outputs.update(refit.write_model(ctx, best, refits.deployed or refits.test))
    training = refits.describe(ctx.config.model.refit_full)
    test = evaluate(schema.task, y_test, test_pred, n_classes, cut)
    ctx.message(test_words(test, i.metric, schema.task, cut), candidate=best.candidate, test=test)
    roi = value.model_roi(ctx.config.discovery, schema.task, y_test, test_pred, cut)  # ROI
    if roi is not None:
        ctx.message(value.words(roi), value=roi)

    warnings = analysis.too_good(best.validation, i.metric, audit_path(ctx))
    small = deploycheck.small_test_warning(len(y_test), class_counts(y_test, schema), i.metric)
    if small:
        warnings.append(small)
    for warning in warnings:
        ctx.message(f"warning: {warning}", warning=True)
    for line in left_out(i.ordered):
        ctx.message(line)
    reused = [r.candidate for r in i.ordered if r.reused]
    if reused:
        ctx.message(f"reused {len(reused)} finished run(s) without retraining: {', '.join(reused)}")

    valid_scores = evaluate(schema.task, y_valid, valid_pred, n_classes, cut)
    evaluation: dict[str, Any] = {
        "model": best.candidate,
        "metric": i.metric,
        "threshold": decision,
        "validation": {
            "rows": len(y_valid),
            "scores": valid_scores,
            **details(schema.task, y_valid, valid_pred, n_classes, cut, schema.classes),
        },
        "training": training,
        "test": {
            "rows": len(y_test),
            "model_fit_on": training["test_model_fit_on"],
            "scores": test,
            **details(schema.task, y_test, test_pred, n_classes, cut, schema.classes),
        },
        "error_analysis": error_analysis(ctx, i, valid, valid_pred, cut, outputs, best.joblib_path),
        "warnings": warnings,
        "value": roi,
    }
    proposals = hypotheses.propose(
        evaluation["error_analysis"], evaluation["validation"], [f.name for f in schema.features]
    )
    evaluation["proposed_hypotheses"] = proposals
    outputs["evaluation"] = atomic.write_json(ctx.artifact("evaluation.json"), evaluation)
    outputs["report"] = report.write(
        ctx.artifact(report.FILE),
        json.loads(board.read_text(encoding="utf-8")),
        evaluation,
        f"{ctx.config.project.name}: model",
    )
    # The recipe rebuilds the chosen run's own (training-split) model: its bytes and test
    # scores are recorded, and what rebuilds each refit beside them (`refits`).
    outputs["manifest"] = manifest.write(
        ctx,
        paths=i.paths,
        runs=i.ordered,
        best=best,
        metric=i.metric,
        seed=i.seed,
        budget_s=i.budget.seconds,
        split=i.split,
        validation=valid_scores,
        test=evaluate(schema.task, y_test, run_test_pred, n_classes, cut),
        test_prediction=run_test_pred,
        onnx_path=best.onnx_path,
        training=training,
        onnx_threads=RECORDED_THREADS,
        refits=manifest.refits_record(
            refits, predictions=refit_preds, test=test, deployed_file=outputs["onnx"]
        ),
    )
    hypothesis = hypotheses.take_pending(ctx.workspace)
    best_params = (best.search or {}).get("best", {}).get("params", {})
    i.log.store.record_choice(
        i.log.phase_run_id,
        best.candidate,
        metric=i.metric,
        direction=i.direction,
        test=test,
        hypothesis=hypothesis,
        data_fingerprint=ctx.upstream["data"].fingerprint,
        params=best_params or best.params,
        proposals=proposals,
    )
    metrics = {
        "task": schema.task,
        "metric": i.metric,
        "metric_direction": i.direction,
        "best_model": best.candidate,
        "baseline": baseline,
        "validation": {r.candidate: r.validation for r in finished},
        "test": test,
        "threshold": cut,
        "candidates": [summary(r) for r in i.ordered],
        "skipped": [r.candidate for r in i.ordered if r.status == "skipped"],
        "not_deployable": [r.candidate for r in finished if not r.deployable],
        "incomplete": [r.candidate for r in finished if not r.complete],
        "reused": reused,
        "ensemble": ensemble_report,
        "parity": training["deployed_parity"] or best.parity,
        "training": training,
        "chosen_by": choice.how_chosen(best, i.metric, folds),
        "cv": _cv_plan(finished),
        "best_params": best_params,
        "hypothesis": hypothesis,
        "proposed_hypotheses": proposals,
        "split_strategy": i.split.get("strategy"),
        "warnings": warnings,
        "success_threshold": ctx.upstream["discovery"].metrics.get("success_threshold"),
        "seed": i.seed,
        "workers": i.workers,
        "threads_per_worker": i.threads,
        "time_budget_s": i.budget.seconds,
        "phase_run_id": i.log.phase_run_id,
        "value": roi,
        "feasibility": _measured_vs_estimate(ctx, i, len(y_valid), len(y_test)),
    }
    gate = deploycheck.gate(
        i.metric, i.direction, metrics["success_threshold"], test.get(i.metric), best, baseline
    )
    step(i, None)
    return PhaseResult(metrics=metrics, outputs=outputs, gate_failures=gate)


def _measured_vs_estimate(ctx: PhaseContext, i: Inputs, valid: int, test: int) -> dict[str, Any]:
    """Discovery-style estimate of this phase (at the machine's load now) against its clock."""
    rows = max(
        0, int((ctx.upstream["data"].metrics.get("splits") or {}).get("train", {}).get("rows", 0))
    )
    names = [r.candidate for r in i.ordered]
    slowdown = feasibility.contention()
    estimated = feasibility.estimate_seconds(
        rows, len(i.schema.features), names, i.workers, i.budget.seconds, slowdown=slowdown
    )
    return {
        "estimated_s": round(estimated, 1),
        "measured_s": round(i.budget.elapsed(), 1),
        "contention": round(slowdown, 2),
    }


def _ensemble(
    ctx: PhaseContext,
    i: Inputs,
    deployable: list[RunResult],
    best: RunResult,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
) -> tuple[RunResult | None, dict[str, Any] | None]:
    """The kept ensemble (recorded as a run), if any, and what was tried."""
    # What must still fit after it: the test evaluation and the artifacts.
    after = max(ENSEMBLE_AFTER_S, ENSEMBLE_AFTER_SHARE * i.budget.reserve)
    left = i.budget.end - after - time.monotonic()
    untimed = ensemble.members(deployable, i.direction)
    if len(untimed) < 2:
        return None, None
    chosen = ensemble.members(deployable, i.direction, seconds=left)
    names = [r.candidate for r in chosen]
    if len(chosen) < 2:
        names = [r.candidate for r in untimed]
        note = f"ensemble of {', '.join(names)} not tried: the time budget would not allow it"
        ctx.message(note)
        return None, {"members": names, "kept": False, "note": note}
    combined, note = ensemble.attempt(
        chosen,
        best,
        i.schema,
        x_valid,
        y_valid,
        metric=i.metric,
        direction=i.direction,
        out_dir=best.onnx_path.parent,
        folds=choice.common_folds(deployable),
    )
    ctx.message(note)
    if combined is not None:
        combined = i.log.record(combined)
    return combined, {"members": names, "kept": combined is not None, "note": note}


def _refit_deadline(i: Inputs) -> float:
    """When the refits must end: what follows them keeps the rest of the budget."""
    return i.budget.end - max(REFIT_AFTER_S, REFIT_AFTER_SHARE * i.budget.seconds)


def _no_refit(
    combined: RunResult,
    best: RunResult,
    runs: list[RunResult],
    rows: dict[str, int],
    refit_full: bool,
    deadline: float,
) -> str:
    """Why the kept ensemble gives way to the best single run ("" when it does not): its refit
    is not expected to end by `deadline` while the single run's is (`refit.fits_in_time`). More
    rows beat the blend (QUALITY_NOTES; on the hpc table a training-split ensemble scored 0.778
    on the benchmark's test rows where refitted ones scored 0.81-0.83)."""
    fits = functools.partial(refit.fits_in_time, runs=runs, rows=rows, refit_full=refit_full)
    if fits(combined, deadline=deadline) or not fits(best, deadline=deadline):
        return ""
    left = deadline - time.monotonic()
    return (
        f"its refit would not fit in the {left:.1f}s left, while {best.candidate}'s does: "
        f"{best.candidate} alone, refitted on more rows"
    )


def _cv_plan(finished: list[RunResult]) -> dict[str, Any] | None:
    """How the searches cross-validated (the same folds for every family)."""
    for run in finished:
        if run.cv:
            return {k: v for k, v in run.cv.items() if k in ("kind", "folds", "column", "note")}
    return None
