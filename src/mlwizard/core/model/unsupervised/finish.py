"""After the clustering or anomaly runs: choose the best deployable one on validation, evaluate
it once on the test split through its ONNX model, profile the clusters or rank the anomalies,
and write the phase's artifacts (the same names as the supervised phase: model.onnx,
model.joblib, leaderboard.json, evaluation.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.discovery import feasibility, value
from mlwizard.core.export.onnx_export import make_session, predict_onnx
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import MlwizardError
from mlwizard.core.model.budget import Budget
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import RunLog, fmt, leaderboard, left_out, summary
from mlwizard.core.model.metrics import is_better, reaches
from mlwizard.core.model.unsupervised import families, profiles

ANOMALY_BASELINE_AUC = 0.5  # a random ranking


def finish(
    ctx: PhaseContext,
    schema: Schema,
    paths: dict[str, Path],
    ordered: list[RunResult],
    log: RunLog,
    budget: Budget,
    workers: int,
) -> PhaseResult:
    discovery = ctx.upstream["discovery"].metrics
    metric = discovery["metric"]
    direction: Direction = "minimize" if discovery["metric_direction"] == "minimize" else "maximize"
    finished = [r for r in ordered if r.status == "done"]
    deployable = [r for r in finished if r.deployable]
    best = _best(deployable, direction)
    baseline = ANOMALY_BASELINE_AUC if schema.task == "anomaly" and metric == "roc_auc" else None
    board = leaderboard(ordered, metric, direction, best, baseline, ctx)
    if best is None:
        atomic.write_json(ctx.artifact("leaderboard.json"), board)
        raise MlwizardError(
            f"no {schema.task} candidate can be deployed: "
            + "; ".join(f"{r.candidate}: {r.status} ({r.reason})" for r in ordered)
        )
    outputs = {
        "leaderboard": atomic.write_json(ctx.artifact("leaderboard.json"), board),
        "onnx": atomic.write_bytes(ctx.artifact("model.onnx"), best.onnx_path.read_bytes()),
        "pipeline": atomic.write_bytes(ctx.artifact("model.joblib"), best.joblib_path.read_bytes()),
    }
    ctx.message(_why(best, deployable, metric), candidate=best.candidate)
    for line in left_out(ordered):
        ctx.message(line)

    import joblib

    pipeline = joblib.load(outputs["pipeline"])
    session = make_session(outputs["onnx"], threads=1)
    test_table = pd.read_parquet(paths["test"])  # the one read of the test split
    x_test = feature_frame(test_table, schema)
    labels, second = (np.asarray(v) for v in predict_onnx(session, x_test, schema).values())
    labels = labels.ravel()
    evaluation: dict[str, Any] = {"model": best.candidate, "metric": metric, "split": "test"}
    if schema.task == "clustering":
        z = pipeline[:-1].transform(x_test)
        test = families.cluster_scores(z, labels, ctx.config.project.seed)
        train = pd.read_parquet(paths["train"])
        train_outputs = predict_onnx(session, feature_frame(train, schema), schema)
        train_labels = np.asarray(train_outputs["label"]).ravel()
        evaluation["clusters"] = best.clusters
        evaluation["profiles"] = profiles.cluster_profiles(train, schema, train_labels)
        evaluation["test_cluster_sizes"] = {
            str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)
        }
        extra: dict[str, Any] = {
            "clusters": best.clusters,
            "cluster_sizes_train": {str(p["cluster"]): p["rows"] for p in evaluation["profiles"]},
        }
    else:
        scores = -second.astype(np.float64).ravel()
        truth = _truth(test_table, schema, discovery.get("anomaly_class"))
        test = families.anomaly_metrics(truth, scores)
        test["flagged_share"] = round(float(np.mean(labels == -1)), 6)
        evaluation["contamination"] = best.contamination
        evaluation["contamination_source"] = best.contamination_source
        if truth is not None:
            evaluation["ranking"] = profiles.anomaly_ranking(truth, scores)
        extra = {
            "contamination": best.contamination,
            "ranking": evaluation.get("ranking"),
        }
        costs = value.Costs.of(ctx.config.discovery)
        if truth is not None and costs is not None:  # flagging as the decision
            roi = value.binary_roi(truth, labels == -1, costs)
            extra["value"] = evaluation["value"] = roi
            ctx.message(value.words(roi), value=roi)
    evaluation["test"] = {"rows": len(test_table), "scores": test}
    shown = ", ".join(f"{k} {fmt(v)}" for k, v in test.items() if v is not None)
    ctx.message(
        f"test split, used once: {shown}",
        candidate=best.candidate,
        test=test,
    )
    log.store.record_choice(
        log.phase_run_id, best.candidate, metric=metric, direction=direction, test=test
    )
    outputs["evaluation"] = atomic.write_json(ctx.artifact("evaluation.json"), evaluation)
    measured = budget.elapsed()
    metrics = {
        "task": schema.task,
        "metric": metric,
        "metric_direction": direction,
        "best_model": best.candidate,
        "baseline": baseline,
        "validation": {r.candidate: r.validation for r in finished},
        "test": test,
        "threshold": None,
        "candidates": [summary(r) for r in ordered],
        "skipped": [r.candidate for r in ordered if r.status == "skipped"],
        "not_deployable": [r.candidate for r in finished if not r.deployable],
        "reused": [r.candidate for r in ordered if r.reused],
        "parity": best.parity,
        "success_threshold": discovery.get("success_threshold"),
        "seed": ctx.config.project.seed,
        "workers": workers,
        "time_budget_s": budget.seconds,
        "phase_run_id": log.phase_run_id,
        "feasibility": _feasibility(
            ctx, _rows(paths["train"]), schema, ordered, workers, budget, measured
        ),
        **extra,
    }
    gate = _gate(metric, direction, metrics["success_threshold"], test.get(metric), baseline)
    return PhaseResult(metrics=metrics, outputs=outputs, gate_failures=gate)


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _truth(table: pd.DataFrame, schema: Schema, anomaly_class: Any) -> np.ndarray | None:
    if not schema.target or anomaly_class is None or schema.target not in table:
        return None
    return np.array([str(v) == str(anomaly_class) for v in table[schema.target]])


def _best(deployable: list[RunResult], direction: Direction) -> RunResult | None:
    """Best validation score; no score (no label for anomalies): the first family, by preference."""
    scored = [r for r in deployable if r.score is not None]
    if not scored:
        return deployable[0] if deployable else None
    best = scored[0]
    for result in scored[1:]:
        if is_better(result.score, best.score, direction):
            best = result
    return best


def _why(best: RunResult, deployable: list[RunResult], metric: str) -> str:
    if best.score is None:
        return (
            f"best: {best.candidate} — no label to compare {len(deployable)} deployable "
            "candidate(s) on, so the first by preference (isolation forest: no assumption about "
            "the shape of the normal rows)"
        )
    return (
        f"best: {best.candidate}, the best validation {metric} ({fmt(best.score)}) of "
        f"{len(deployable)} deployable candidate(s)"
    )


def _feasibility(
    ctx: PhaseContext,
    rows: int,
    schema: Schema,
    ordered: list[RunResult],
    workers: int,
    budget: Budget,
    measured: float,
) -> dict[str, Any]:
    names = [r.candidate for r in ordered]
    slowdown = feasibility.contention()
    estimated = feasibility.estimate_seconds(
        rows, len(schema.features), names, workers, budget.seconds, slowdown=slowdown
    )
    return {
        "estimated_s": round(estimated, 1),
        "measured_s": round(measured, 1),
        "contention": round(slowdown, 2),
    }


def _gate(
    metric: str,
    direction: Direction,
    success: float | None,
    score: float | None,
    baseline: float | None,
) -> list[str]:
    if success is not None and metric != "none":
        if reaches(score, success, direction):
            return []
        return [
            f"test {metric} {fmt(score)} misses the success threshold {success:g} "
            "([discovery] success_threshold in mlwizard.toml)"
        ]
    if baseline is not None and score is not None and score <= baseline:
        return [f"test {metric} {fmt(score)} is no better than a random ranking ({baseline:g})"]
    return []
