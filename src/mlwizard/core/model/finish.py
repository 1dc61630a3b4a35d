"""The model phase after training: choose the best deployable run, set the decision threshold,
evaluate once on the test split, analyse errors, and write the phase's artifacts.

The test split is read here and only here, once, after every run has finished: choices (model,
threshold) are made on validation rows, so the test score stays an honest estimate. Everything
is predicted through the ONNX model, since that is what will be served; permutation importance
alone uses the native pipeline, on validation rows.
"""

from __future__ import annotations

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
from mlwizard.core.kernel.errors import MlwizardError
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.model import analysis, choice, ensemble, fitting, hypotheses, refit, threshold
from mlwizard.core.model.budget import Budget
from mlwizard.core.model.candidates import BASELINE
from mlwizard.core.model.leaderboard import RunLog, leaderboard, left_out, summary, why_best
from mlwizard.core.model.metrics import Scores, details, evaluate, is_better, reaches

END_MARGIN_S = 0.5  # also covers the runner writing the checkpoint after the phase returns
END_MARGIN_SHARE = 0.015
ENSEMBLE_AFTER_S = 0.5
ENSEMBLE_AFTER_SHARE = 0.5  # of the budget's reserve
REFIT_AFTER_S = 1.0  # kept after the refits: the test evaluation, error analysis, artifacts
REFIT_AFTER_SHARE = 0.05


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
    ordered: list[dict[str, Any]]
    split: dict[str, str] = field(default_factory=dict)


def finish(ctx: PhaseContext, i: Inputs) -> PhaseResult:
    finished = [r for r in i.ordered if r["status"] == "done"]
    if not finished:
        raise MlwizardError(_nothing_finished(i.ordered, i.budget.seconds))
    base = next((r for r in finished if r["candidate"] == BASELINE), None)
    baseline = base["score"] if base else None
    deployable = [r for r in finished if r["deployable"]]
    best = choice.best(deployable, i.direction)
    if best is None:
        atomic.write_json(
            ctx.artifact("leaderboard.json"),
            leaderboard(i.ordered, i.metric, i.direction, None, baseline, ctx),
        )
        raise MlwizardError(
            "no candidate can be deployed: "
            + "; ".join(f"{r['candidate']}: {r['status']} ({r['reason']})" for r in i.ordered)
        )
    schema, n_classes = i.schema, len(i.schema.classes or [])
    valid = pd.read_parquet(i.paths["valid"])
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)

    combined, ensemble_report = _ensemble(ctx, i, deployable, best, x_valid, y_valid)
    if combined is not None:
        for runs in (i.ordered, finished, deployable):
            runs.append(combined)
        best = combined
    board = atomic.write_json(
        ctx.artifact("leaderboard.json"),
        leaderboard(i.ordered, i.metric, i.direction, best, baseline, ctx),
    )
    outputs: dict[str, Path] = {"leaderboard": board}
    ctx.message(
        why_best(best, deployable, i.metric, i.direction, baseline)
        + f" (chosen by {choice.how_chosen(best, i.metric)})",
        candidate=best["candidate"],
    )

    threads = max(1, i.workers * i.threads)
    session = make_session(Path(best["onnx"]), threads=threads)
    valid_pred = _onnx_prediction(session, x_valid, schema)

    decision = None
    if schema.task == "binary":
        decision = _decision(ctx, schema, y_valid, valid_pred, i.metric)
        outputs["decision"] = atomic.write_json(ctx.artifact("decision.json"), decision)
    cut = decision["threshold"] if decision else None

    # The one read of the test split; the refits (train + validation, every row) come first.
    test_table = pd.read_parquet(i.paths["test"])
    x_test, y_test = feature_frame(test_table, schema), target_vector(test_table, schema)
    refits = refit.in_phase(
        ctx,
        best,
        deployable,
        i.schema,
        {"train": pd.read_parquet(i.paths["train"]), "valid": valid, "test": test_table},
        deadline=i.budget.end - max(REFIT_AFTER_S, REFIT_AFTER_SHARE * i.budget.seconds),
    )
    if refits.test is not None:
        session = make_session(refits.test.onnx, threads=threads)
    test_pred = _onnx_prediction(session, x_test, schema)
    outputs.update(refit.write_model(ctx, best, refits.deployed or refits.test))
    training = refits.describe(ctx.config.model.refit_full)
    test = evaluate(schema.task, y_test, test_pred, n_classes, cut)
    ctx.message(
        _test_words(test, i.metric, schema.task, cut), candidate=best["candidate"], test=test
    )
    roi = value.model_roi(ctx.config.discovery, schema.task, y_test, test_pred, cut)  # ROI
    if roi is not None:
        ctx.message(value.words(roi), value=roi)

    warnings = analysis.too_good(best["validation"], i.metric, _audit_path(ctx))
    for warning in warnings:
        ctx.message(f"warning: {warning}", warning=True)
    for line in left_out(i.ordered):
        ctx.message(line)
    reused = [r["candidate"] for r in i.ordered if r.get("reused")]
    if reused:
        ctx.message(f"reused {len(reused)} finished run(s) without retraining: {', '.join(reused)}")

    evaluation = {
        "model": best["candidate"],
        "metric": i.metric,
        "threshold": decision,
        "validation": {
            "rows": len(y_valid),
            "scores": evaluate(schema.task, y_valid, valid_pred, n_classes, cut),
            **details(schema.task, y_valid, valid_pred, n_classes, cut, schema.classes),
        },
        "training": training,
        "test": {
            "rows": len(y_test),
            "model_fit_on": training["test_model_fit_on"],
            "scores": test,
            **details(schema.task, y_test, test_pred, n_classes, cut, schema.classes),
        },
        "error_analysis": _error_analysis(ctx, i, valid, valid_pred, cut, outputs, best["joblib"]),
        "warnings": warnings,
        "value": roi,
    }
    proposals = hypotheses.propose(
        evaluation["error_analysis"], evaluation["validation"], [f.name for f in schema.features]
    )
    evaluation["proposed_hypotheses"] = proposals
    outputs["evaluation"] = atomic.write_json(ctx.artifact("evaluation.json"), evaluation)
    hypothesis = hypotheses.take_pending(ctx.workspace)
    best_params = (best.get("search") or {}).get("best", {}).get("params", {})
    i.log.store.record_choice(
        i.log.phase_run_id,
        best["candidate"],
        metric=i.metric,
        direction=i.direction,
        test=test,
        hypothesis=hypothesis,
        data_fingerprint=ctx.upstream["data"].fingerprint,
        params=best_params or best.get("params"),
        proposals=proposals,
    )
    metrics = {
        "task": schema.task,
        "metric": i.metric,
        "metric_direction": i.direction,
        "best_model": best["candidate"],
        "baseline": baseline,
        "validation": {r["candidate"]: r["validation"] for r in finished},
        "test": test,
        "threshold": cut,
        "candidates": [summary(r) for r in i.ordered],
        "skipped": [r["candidate"] for r in i.ordered if r["status"] == "skipped"],
        "not_deployable": [r["candidate"] for r in finished if not r["deployable"]],
        "incomplete": [r["candidate"] for r in finished if not r.get("complete")],
        "reused": reused,
        "ensemble": ensemble_report,
        "parity": training["deployed_parity"] or best["parity"],
        "training": training,
        "chosen_by": choice.how_chosen(best, i.metric),
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
    gate = _gate(
        i.metric, i.direction, metrics["success_threshold"], test.get(i.metric), best, baseline
    )
    return PhaseResult(metrics=metrics, outputs=outputs, gate_failures=gate)


def _measured_vs_estimate(ctx: PhaseContext, i: Inputs, valid: int, test: int) -> dict[str, Any]:
    """Discovery-style estimate of this phase (at the machine's load now) against its clock."""
    rows = max(
        0, int((ctx.upstream["data"].metrics.get("splits") or {}).get("train", {}).get("rows", 0))
    )
    names = [r["candidate"] for r in i.ordered]
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
    best_joblib: str,
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
    # The training-split model: the validation rows are held out from it alone.
    found["permutation_importance"] = _importance(Path(best_joblib), x, y, i, done_by)
    return found


def _ensemble(
    ctx: PhaseContext,
    i: Inputs,
    deployable: list[dict[str, Any]],
    best: dict[str, Any],
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The kept ensemble (recorded as a run), if any, and what was tried."""
    chosen = ensemble.members(deployable, i.direction)
    if len(chosen) < 2:
        return None, None
    names = [r["candidate"] for r in chosen]
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
        out_dir=Path(best["onnx"]).parent,
    )
    ctx.message(note)
    if combined is not None:
        combined = i.log.record(combined)
    return combined, {"members": names, "kept": combined is not None, "note": note}


def _cv_plan(finished: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the searches cross-validated (the same folds for every family)."""
    for run in finished:
        if run.get("cv"):
            return {k: v for k, v in run["cv"].items() if k in ("kind", "folds", "column", "note")}
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


def _gate(
    metric: str,
    direction: Direction,
    success: float | None,
    test_score: float | None,
    best: dict[str, Any],
    baseline: float | None,
) -> list[str]:
    if success is not None:
        if reaches(test_score, success, direction):
            return []
        side = "below" if direction == "maximize" else "above"
        return [
            f"test {metric} {fmt(test_score)} is {side} the success threshold {success:g} "
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
        f"the best model ({best['candidate']}, validation {metric} {fmt(best['score'])}) does "
        f"not beat the {BASELINE} baseline ({fmt(baseline)})"
    ]


def _nothing_finished(results: list[dict[str, Any]], budget: float) -> str:
    if all(r["status"] == "skipped" for r in results):
        return (
            f"no candidate finished within the time budget of {budget:g}s; "
            "raise [model] time_budget in mlwizard.toml (or --time-budget)"
        )
    return "no candidate trained: " + "; ".join(
        f"{r['candidate']}: {r['status']} ({r['reason']})" for r in results
    )
