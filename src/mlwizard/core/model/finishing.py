"""The parts of the model phase's finish that are not the choice: the inputs it is given, the
decision threshold, ONNX predictions, the error analysis and the words for the test score.
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
from mlwizard.core.export.onnx_export import predict_onnx
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseSteps
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.model import analysis, fitting, threshold
from mlwizard.core.model.budget import Budget
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import RunLog
from mlwizard.core.model.metrics import Scores

END_MARGIN_S = 0.5  # also covers the runner writing the checkpoint after the phase returns
END_MARGIN_SHARE = 0.015


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
    steps: PhaseSteps | None = None  # the phase's steps, for the shells' progress


def error_analysis(
    ctx: PhaseContext,
    i: Inputs,
    valid: pd.DataFrame,
    prediction: np.ndarray,
    cut: float | None,
    outputs: dict[str, Path],
    best_joblib: Path,
) -> dict[str, Any]:
    """Worst rows (always), then worst slices and permutation importance if the clock allows.

    Adds the `worst_rows` output.
    """
    schema = i.schema
    y = target_vector(valid, schema)
    errors = analysis.row_errors(schema.task, y, prediction)
    worst = analysis.worst_rows(valid, schema, prediction, errors, cut)
    outputs["worst_rows"] = write_parquet(ctx.artifact("worst_rows.parquet"), worst)
    min_rows = analysis.min_slice_rows(len(valid))
    found: dict[str, Any] = {
        "split": "valid",
        "row_error": row_error_words(schema.task),
        "min_slice_rows": min_rows,
        "worst_slices": [],
        "worst_rows": {"path": ctx.workspace.relative(outputs["worst_rows"]), "rows": len(worst)},
        "permutation_importance": {"skipped": "time budget"},
    }
    done_by = i.budget.end - end_margin(i.budget.seconds)
    if time.monotonic() < done_by:
        found["worst_slices"] = analysis.worst_slices(
            valid, schema, errors, min_rows, deadline=done_by
        )
    x = feature_frame(valid, schema)
    # The training-split model: the validation rows are held out from it alone.
    found["permutation_importance"] = importance(best_joblib, x, y, i, done_by)
    return found


def onnx_prediction(session: Any, x: pd.DataFrame, schema: Schema) -> np.ndarray:
    outputs = predict_onnx(session, x, schema)
    if schema.task == "regression":
        return np.asarray(outputs["variable"], dtype=np.float64).ravel()
    return np.asarray(outputs["probabilities"], dtype=np.float64)


def decision_rule(
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


def importance(
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


def step(i: Inputs, name: str | None) -> None:
    """Tell the shells the phase's step `name` starts (None: all are done)."""
    if i.steps is None:
        return
    if name:
        i.steps.begin(name)
    else:
        i.steps.finish()


def end_margin(seconds: float) -> float:
    """Kept free at the very end: writing evaluation.json and the phase's checkpoint."""
    return max(END_MARGIN_S, END_MARGIN_SHARE * seconds)


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    with atomic.atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def audit_path(ctx: PhaseContext) -> str:
    try:
        return ctx.workspace.relative(ctx.upstream_artifact("data", "audit"))
    except KeyError:
        return "artifacts/data/audit.json"


def test_words(test: Scores, metric: str, task: str, cut: float | None) -> str:
    shown = {"binary": ("roc_auc", "accuracy"), "multiclass": ("accuracy", "f1_macro")}.get(
        task, ("r2", "rmse")
    )
    names = list(dict.fromkeys([metric, *shown]))
    text = ", ".join(f"{n} {fmt(test.get(n))}" for n in names)
    at = f" (labels at threshold {cut:.4g})" if cut is not None else ""
    return f"test split, used once: {text}{at}"


def row_error_words(task: str) -> str:
    if task == "regression":
        return "|target - prediction|"
    return "1 - probability given to the true class"


def class_counts(y: np.ndarray, schema: Schema) -> dict[str, int]:
    """Test rows per class (classifiers; empty for regression)."""
    if schema.task == "regression":
        return {}
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(schema.classes or []))
    return {str(c): int(n) for c, n in zip(schema.classes or [], counts, strict=False)}
