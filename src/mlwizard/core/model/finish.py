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

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.discovery import feasibility, value
from mlwizard.core.export.onnx_export import make_session, predict_onnx
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.model import (
    analysis,
    deploycheck,
    ensemble,
    fitting,
    manifest,
    report,
    threshold,
)
from mlwizard.core.model.budget import Budget
from mlwizard.core.model.candidates import BASELINE
from mlwizard.core.model.insurance import nothing_deployable, nothing_finished
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import RunLog, leaderboard, left_out, summary, why_best
from mlwizard.core.model.metrics import Scores, details, evaluate

END_MARGIN_S = 0.5  # also covers the runner writing the checkpoint after the phase returns
END_MARGIN_SHARE = 0.015
ENSEMBLE_AFTER_S = 0.5
ENSEMBLE_AFTER_SHARE = 0.5  # of the budget's reserve


@dataclass
class Inputs:
    schema: Schema
    paths: dict[str, Path]
    metric: str
    direction: Direction
    seed: int
    budget: Budget
    workers: int
    threads: int
    log: RunLog
    ordered: list[RunResult]
    split: dict[str, str] = field(default_factory=dict)


def finish(ctx: PhaseContext, i: Inputs) -> PhaseResult:
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
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)

    combined, ensemble_report = _ensemble(ctx, i, deployable, best, x_valid, y_valid)
    if combined is not None and not deploycheck.holds_on_test(combined, schema, x_test):
        ctx.message(f"ensemble: not kept after all: {combined.reason}")
        i.ordered.append(combined)
        combined, ensemble_report = None, {**(ensemble_report or {}), "kept": False}
    if combined is not None:
        for runs in (i.ordered, finished, deployable):
            runs.append(combined)
        best = combined
    board = atomic.write_json(
        ctx.artifact("leaderboard.json"),
        leaderboard(i.ordered, i.metric, i.direction, best, baseline, ctx),
    )
    outputs = {
        "onnx": atomic.write_bytes(ctx.artifact("model.onnx"), best.onnx_path.read_bytes()),
        "pipeline": atomic.write_bytes(ctx.artifact("model.joblib"), best.joblib_path.read_bytes()),
        "leaderboard": board,
    }
    ctx.message(
        why_best(best, deployable, i.metric, i.direction, baseline), candidate=best.candidate
    )

    session = make_session(outputs["onnx"], threads=max(1, i.workers * i.threads))
    valid_pred = _onnx_prediction(session, x_valid, schema)

    decision = None
    if schema.task == "binary":
        decision = _decision(ctx, schema, y_valid, valid_pred, i.metric)
        outputs["decision"] = atomic.write_json(ctx.artifact("decision.json"), decision)
    cut = decision["threshold"] if decision else None

    y_test = target_vector(test_table, schema)
    test_pred = _onnx_prediction(session, x_test, schema)
    test = evaluate(schema.task, y_test, test_pred, n_classes, cut)
    ctx.message(_test_words(test, i.metric, schema.task, cut), candidate=best.candidate, test=test)
    roi = value.model_roi(ctx.config.discovery, schema.task, y_test, test_pred, cut)  # ROI
    if roi is not None:
        ctx.message(value.words(roi), value=roi)
    i.log.store.record_choice(
        i.log.phase_run_id, best.candidate, metric=i.metric, direction=i.direction, test=test
    )

    warnings = analysis.too_good(best.validation, i.metric, _audit_path(ctx))
    small = deploycheck.small_test_warning(len(y_test), _class_counts(y_test, schema), i.metric)
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
    evaluation = {
        "model": best.candidate,
        "metric": i.metric,
        "threshold": decision,
        "validation": {
            "rows": len(y_valid),
            "scores": valid_scores,
            **details(schema.task, y_valid, valid_pred, n_classes, cut, schema.classes),
        },
        "test": {
            "rows": len(y_test),
            "scores": test,
            **details(schema.task, y_test, test_pred, n_classes, cut, schema.classes),
        },
        "error_analysis": _error_analysis(ctx, i, valid, valid_pred, cut, outputs),
        "warnings": warnings,
        "value": roi,
    }
    outputs["evaluation"] = atomic.write_json(ctx.artifact("evaluation.json"), evaluation)
    outputs["report"] = report.write(
        ctx.artifact(report.FILE),
        json.loads(board.read_text(encoding="utf-8")),
        evaluation,
        f"{ctx.config.project.name}: model",
    )
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
        test=test,
        test_prediction=test_pred,
        onnx_path=outputs["onnx"],
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
        "parity": best.parity,
        "cv": _cv_plan(finished),
        "best_params": (best.search or {}).get("best", {}).get("params", {}),
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


def _error_analysis(
    ctx: PhaseContext,
    i: Inputs,
    valid: pd.DataFrame,
    prediction: np.ndarray,
    cut: float | None,
    outputs: dict[str, Path],
) -> dict[str, Any]:
    """Worst rows (always), then worst slices and permutation importance if the clock allows.

    Adds the `worst_rows` output.
    """
    schema = i.schema
    y = target_vector(valid, schema)
    errors = analysis.row_errors(schema.task, y, prediction)
    worst = analysis.worst_rows(valid, schema, prediction, errors, cut)
    outputs["worst_rows"] = _write_parquet(ctx.artifact("worst_rows.parquet"), worst)
    min_rows = analysis.min_slice_rows(len(valid))
    found: dict[str, Any] = {
        "split": "valid",
        "row_error": _row_error_words(schema.task),
        "min_slice_rows": min_rows,
        "worst_slices": [],
        "worst_rows": {"path": ctx.workspace.relative(outputs["worst_rows"]), "rows": len(worst)},
        "permutation_importance": {"skipped": "time budget"},
    }
    done_by = i.budget.end - _end_margin(i.budget.seconds)
    if time.monotonic() < done_by:
        found["worst_slices"] = analysis.worst_slices(
            valid, schema, errors, min_rows, deadline=done_by
        )
    x = feature_frame(valid, schema)
    found["permutation_importance"] = _importance(outputs["pipeline"], x, y, i, done_by)
    return found


def _ensemble(
    ctx: PhaseContext,
    i: Inputs,
    deployable: list[RunResult],
    best: RunResult,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
) -> tuple[RunResult | None, dict[str, Any] | None]:
    """The kept ensemble (recorded as a run), if any, and what was tried."""
    chosen = ensemble.members(deployable, i.direction)
    if len(chosen) < 2:
        return None, None
    names = [r.candidate for r in chosen]
    # What must still fit after it: the test evaluation and the artifacts.
    after = max(ENSEMBLE_AFTER_S, ENSEMBLE_AFTER_SHARE * i.budget.reserve)
    if time.monotonic() + ensemble.expected_seconds(chosen) > i.budget.end - after:
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
    )
    ctx.message(note)
    if combined is not None:
        combined = i.log.record(combined)
    return combined, {"members": names, "kept": combined is not None, "note": note}


def _cv_plan(finished: list[RunResult]) -> dict[str, Any] | None:
    """How the searches cross-validated (the same folds for every family)."""
    for run in finished:
        if run.cv:
            return {k: v for k, v in run.cv.items() if k in ("kind", "folds", "column", "note")}
    return None


def _onnx_prediction(session: Any, x: pd.DataFrame, schema: Schema) -> np.ndarray:
    outputs = predict_onnx(session, x, schema)
    if schema.task == "regression":
        return np.asarray(outputs["variable"], dtype=np.float64).ravel()
    return np.asarray(outputs["probabilities"], dtype=np.float64)


def _decision(
    ctx: PhaseContext, schema: Schema, y: np.ndarray, proba: np.ndarray, metric: str
) -> dict[str, Any]:
    """The binary decision rule, in a form the service can apply to the ONNX probabilities."""
    costs = ctx.config.discovery
    chosen = threshold.choose(
        y,
        proba[:, 1] / proba.sum(axis=1),
        metric=metric,
        cost_false_positive=costs.cost_false_positive,
        cost_false_negative=costs.cost_false_negative,
    )
    classes = list(schema.classes or [])
    positive = classes[1] if len(classes) > 1 else 1
    ctx.message(
        f"decision threshold {chosen['value']:.4g} for class '{positive}' "
        f"({chosen['objective']}; validation {fmt(chosen['validation_value'])} vs "
        f"{fmt(chosen['value_at_0_5'])} at 0.5)",
        threshold=chosen["value"],
    )
    return {
        "threshold": chosen["value"],
        "positive_class": positive,
        "positive_index": 1,
        "rule": "predict positive_class when probabilities[:, positive_index] >= threshold, "
        "else the other class",
        **{k: v for k, v in chosen.items() if k != "value"},
    }


def _importance(
    model_path: Path, x: pd.DataFrame, y: np.ndarray, i: Inputs, deadline: float
) -> dict[str, Any]:
    if time.monotonic() >= deadline:
        return {"skipped": "time budget"}
    pipeline = joblib.load(model_path)
    n_classes = len(i.schema.classes or [])
    return analysis.permutation_importance(
        pipeline,
        x,
        y,
        i.schema,
        metric=i.metric,
        direction=i.direction,
        seed=i.seed,
        deadline=deadline,
        predict=lambda p, features: fitting.predict(p, features, n_classes),
    )


def _end_margin(seconds: float) -> float:
    """Kept free at the very end: writing evaluation.json and the phase's checkpoint."""
    return max(END_MARGIN_S, END_MARGIN_SHARE * seconds)


def _write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    with atomic.atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def _audit_path(ctx: PhaseContext) -> str:
    try:
        return ctx.workspace.relative(ctx.upstream_artifact("data", "audit"))
    except KeyError:
        return "artifacts/data/audit.json"


def _test_words(test: Scores, metric: str, task: str, cut: float | None) -> str:
    shown = {"binary": ("roc_auc", "accuracy"), "multiclass": ("accuracy", "f1_macro")}.get(
        task, ("r2", "rmse")
    )
    names = list(dict.fromkeys([metric, *shown]))
    text = ", ".join(f"{n} {fmt(test.get(n))}" for n in names)
    at = f" (labels at threshold {cut:.4g})" if cut is not None else ""
    return f"test split, used once: {text}{at}"


def _row_error_words(task: str) -> str:
    if task == "regression":
        return "|target - prediction|"
    return "1 - probability given to the true class"


def _class_counts(y: np.ndarray, schema: Schema) -> dict[str, int]:
    """Test rows per class (classifiers; empty for regression)."""
    if schema.task == "regression":
        return {}
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(schema.classes or []))
    return {str(c): int(n) for c, n in zip(schema.classes or [], counts, strict=False)}
