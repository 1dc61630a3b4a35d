"""A soft-voting ensemble of the best deployable runs, exported as one ONNX graph.

Built from the fitted pipelines as they are (no refit): the members' class probabilities (or
values) are averaged. It is kept only if it beats the best single run on validation and its
export reproduces it; otherwise the best single run stays. It is tried only when the clock allows
its export, estimated from what the members' own exports took.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.export.onnx_export import ExportError, export_pipeline
from mlwizard.core.export.parity import check_export
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.model import fitting
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.metrics import evaluate, is_better

NAME = "ensemble"
MAX_MEMBERS = 3
SKL2ONNX_IMPORT_S = 2.0  # first conversion in this process loads skl2onnx
SAFETY = 1.5


def members(deployable: list[RunResult], direction: Direction) -> list[RunResult]:
    """The best deployable runs with a defined score, best first."""
    scored = [r for r in deployable if r.score is not None]
    scored.sort(key=lambda r: r.score or 0.0, reverse=direction == "maximize")
    return scored[:MAX_MEMBERS]


def expected_seconds(chosen: list[RunResult]) -> float:
    exports = sum(float(r.export_s or 1.0) for r in chosen)
    loading = 0.0 if "skl2onnx" in sys.modules else SKL2ONNX_IMPORT_S
    return SAFETY * exports + loading


def build(chosen: list[RunResult], schema: Schema) -> Pipeline:
    """A fitted soft-voting model over the members' fitted pipelines, as a one-step pipeline."""
    return from_pipelines([(r.candidate, joblib.load(r.joblib_path)) for r in chosen], schema)


def from_pipelines(fitted: list[tuple[str, Any]], schema: Schema) -> Pipeline:
    """The soft-voting model over named fitted pipelines, as a one-step pipeline."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    if schema.task == "regression":
        model: Any = VotingRegressor(fitted)
    else:
        # flatten_transform=False: the only setting skl2onnx converts.
        model = VotingClassifier(fitted, voting="soft", flatten_transform=False)
        model.le_ = LabelEncoder().fit(np.arange(len(schema.classes or [])))
        model.classes_ = model.le_.classes_
    model.estimators_ = [pipeline for _, pipeline in fitted]
    model.named_estimators_ = dict(fitted)
    return Pipeline([("model", model)])


def attempt(
    chosen: list[RunResult],
    best: RunResult,
    schema: Schema,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    metric: str,
    direction: Direction,
    out_dir: Path,
) -> tuple[RunResult | None, str]:
    """The ensemble as a run result if it is kept, else None; and what happened, in words."""
    start = time.perf_counter()
    names = [r.candidate for r in chosen]
    pipeline = build(chosen, schema)
    n_classes = len(schema.classes or [])
    validation = evaluate(
        schema.task, y_valid, fitting.predict(pipeline, x_valid, n_classes), n_classes
    )
    score = validation.get(metric)
    what = (
        f"ensemble of {', '.join(names)}: validation {metric} {score:.4g}"
        if score is not None
        else ""
    )
    if not is_better(score, best.score, direction):
        return None, f"{what}, not better than {best.candidate} alone: not kept"
    try:
        model = export_pipeline(pipeline, schema, x_valid)
    except ExportError as exc:
        return None, f"{what}, but not deployable ({exc.reason}): not kept"
    parity = check_export(pipeline, model, {"valid": x_valid}, schema)
    if not parity.ok:
        return None, f"{what}, but not deployable ({parity.reason}): not kept"
    stem = out_dir / f"{NAME}-{hash_value([r.key for r in chosen])[:16]}"
    onnx_path = atomic.write_bytes(stem.with_suffix(".onnx"), model)
    with atomic.atomic_path(stem.with_suffix(".joblib")) as tmp:
        joblib.dump(pipeline, tmp)
    result = RunResult(
        NAME,
        "done",
        deployable=True,
        params={"estimator": type(pipeline[-1]).__name__, "voting": "soft", "members": names},
        validation=validation,
        parity=parity.to_dict(),
        onnx=str(onnx_path),
        joblib=str(stem.with_suffix(".joblib")),
        complete=all(r.complete for r in chosen),
        duration_s=round(time.perf_counter() - start, 3),
    )
    return result, f"{what}, better than {best.candidate} alone ({best.score:.4g}): kept"
