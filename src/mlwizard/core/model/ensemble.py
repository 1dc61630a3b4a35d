"""A soft-voting or weighted ensemble of the best deployable runs, exported as one ONNX graph.

Built from the fitted pipelines as they are (no refit): the members' class probabilities (or
values) are averaged, with equal weights or with weights found by greedy ensemble selection
(Caruana et al. 2004).

When every member saved its out-of-fold predictions (`oof`: its best configuration's fold models
on the rows each held out), the weights are chosen on those rows, many more than the validation
split holds, and the ensemble is judged as the single runs are (`choice.rank_score`): its score
on each of the CV folds every run scored, with weights chosen on the other folds, pooled with
its validation score. Judged on validation alone, the ensemble would be compared with the run
that validation itself helped choose, which flatters that run (a table of 4 classes kept an
ensemble that beat the chosen run's validation score by 0.002, while another single run had
beaten both by 0.012). Without out-of-fold predictions (runs cached by an older version) the
weights are found on validation predictions and kept only if they beat equal weights when
cross-fitted on its two halves, and the ensemble must beat the best run's validation score.

The ensemble is kept only if it wins and its export reproduces it; otherwise the best single
run stays. Its ONNX graph is composed from the members' graphs beside their runs, not converted
again (`export.ensemble_graph`). It is tried only when the clock allows the attempt, estimated
from what the members' own exports took; a member whose share would not fit in the time left is
passed over for the next best run. After the choice, `refit` refits the members and rebuilds the
ensemble with the same weights (`assemble`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.export.onnx_export import ExportError, export_ensemble
from mlwizard.core.export.parity import check_export
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.model import fitting, oof
from mlwizard.core.model.choice import rank_score, ranker
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.metrics import evaluate, is_better
from mlwizard.core.model.metrics import score as metric_score

NAME = "ensemble"
MAX_MEMBERS = 3
SAFETY = 1.5
SELECTION_STEPS = 12  # greedy selection rounds: weights are multiples of 1/12


def members(
    deployable: list[RunResult], direction: Direction, seconds: float = float("inf")
) -> list[RunResult]:
    """The best deployable runs with a defined score, best first (as `choice` ranks them), up
    to `MAX_MEMBERS` whose ensemble export is expected to take at most `seconds`: a run whose
    export would not fit is passed over for the next one, so a slow exporter (a deep forest)
    does not keep a cheaper ensemble from being tried at all."""
    rank_score = ranker(deployable)
    scored = [r for r in deployable if rank_score(r) is not None]
    scored.sort(key=lambda r: rank_score(r) or 0.0, reverse=direction == "maximize")
    chosen: list[RunResult] = []
    for run in scored:
        if len(chosen) == MAX_MEMBERS:
            break
        if expected_seconds([*chosen, run]) <= seconds:
            chosen.append(run)
    return chosen


def expected_seconds(chosen: list[RunResult]) -> float:
    """An upper estimate of the attempt: each member's export, which included a parity check,
    bounds the loading, predicting and parity work the ensemble repeats for it (its graph is
    composed from the members', in milliseconds: `export.ensemble_graph`)."""
    return SAFETY * sum(float(r.export_s or 1.0) for r in chosen)


def build(chosen: list[RunResult], schema: Schema, weights: list[float] | None = None) -> Pipeline:
    """A fitted soft-voting model over the members' fitted pipelines, as a one-step pipeline."""
    fitted = [(r.candidate, joblib.load(r.joblib_path)) for r in chosen]
    return assemble(fitted, schema, weights)


def from_pipelines(
    fitted: list[tuple[str, Pipeline]], schema: Schema, weights: list[float] | None = None
) -> Pipeline:
    """The voting model over named fitted pipelines (`reproduce`): `assemble`."""
    return assemble(fitted, schema, weights)


def assemble(
    fitted: list[tuple[str, Pipeline]], schema: Schema, weights: list[float] | None = None
) -> Pipeline:
    """The voting pipeline over already fitted members (`weights`: None for equal ones)."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    w = None if weights is None else np.asarray(weights, dtype=np.float64)  # skl2onnx: an array
    if schema.task == "regression":
        model: Any = VotingRegressor(fitted, weights=w)
    else:
        # flatten_transform=False: the only setting skl2onnx converts.
        model = VotingClassifier(fitted, voting="soft", weights=w, flatten_transform=False)
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
    folds: int | None = None,
) -> tuple[RunResult | None, str]:
    """The ensemble as a run result if it is kept, else None; and what happened, in words.

    `folds`: the leading CV folds every run was ranked on (`choice.common_folds`)."""
    start = time.perf_counter()
    started_at = datetime.now(UTC).isoformat()  # when the work began, as candidate runs record
    names = [r.candidate for r in chosen]
    n_classes = len(schema.classes or [])
    fitted = [(r.candidate, joblib.load(r.joblib_path)) for r in chosen]
    predictions = [fitting.predict(p, x_valid, n_classes) for _, p in fitted]
    task = schema.task
    crossed = from_folds(chosen, folds, task, n_classes, metric, direction)
    fold_scores: list[float | None] | None = None
    if crossed is not None:
        weights, fold_scores = crossed
        how = "weighted" if weights is not None else "soft-voting"
    else:
        weights, how = choose_weights(predictions, y_valid, task, n_classes, metric, direction)
    if weights is not None:  # members the selection never picked are left out
        kept = [index for index, w in enumerate(weights) if w > 0]
        chosen, fitted = [chosen[i] for i in kept], [fitted[i] for i in kept]
        predictions, weights = [predictions[i] for i in kept], [weights[i] for i in kept]
        names = [r.candidate for r in chosen]
        if len(kept) < 2:
            return None, f"weighted selection among the best runs kept {names[0]} alone"
    pipeline = assemble(fitted, schema, weights)
    validation = evaluate(task, y_valid, _blend(predictions, weights), n_classes)
    cv = _cv_record(fold_scores)
    judged = RunResult(NAME, "done", validation=validation, cv=cv, score=validation.get(metric))
    score, theirs = rank_score(judged, folds), rank_score(best, folds)
    if cv is None:  # judged on validation alone
        theirs = best.score
    on = f"over {len(cv['scores'])} CV folds and the validation split" if cv else "on validation"
    what = (
        f"{how} ensemble of {', '.join(names)}: {metric} {score:.4g} {on}"
        if score is not None
        else ""
    )
    if not is_better(score, theirs, direction):
        return None, f"{what}, not better than {best.candidate} alone: not kept"
    graphs = [r.onnx_path.read_bytes() for r in chosen]  # beside the runs: composed, not redone
    try:
        model = export_ensemble(graphs, weights, schema, x_valid)
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
        params={
            "estimator": type(pipeline[-1]).__name__,
            "voting": how,
            "members": names,
            # Exact, not rounded: `refit` and `reproduce` rebuild the ensemble from them.
            "weights": None if weights is None else [float(w) for w in weights],
        },
        validation=validation,
        cv=cv,
        parity=parity.to_dict(),
        onnx=str(onnx_path),
        joblib=str(stem.with_suffix(".joblib")),
        complete=all(r.complete for r in chosen),
        started_at=started_at,
        duration_s=round(time.perf_counter() - start, 3),
    )
    than = "n/a" if theirs is None else f"{theirs:.4g}"
    return result, f"{what}, better than {best.candidate} alone ({than}): kept"


def from_folds(
    chosen: list[RunResult],
    folds: int | None,
    task: str,
    n_classes: int,
    metric: str,
    direction: Direction,
) -> tuple[list[float] | None, list[float | None]] | None:
    """(weights or None for equal ones, the blend's score on each of the first `folds` folds)
    from the members' out-of-fold predictions; None when a member has none for those folds.

    Each fold is scored with weights chosen on the other folds' rows, as a single run's fold is
    scored by a model that never saw it; the weights returned are chosen on all of them."""
    if folds is None or folds < 2 or len(chosen) < 2:
        return None
    saved = [s for s in (oof.load(r.oof) for r in chosen) if s is not None]
    if len(saved) < len(chosen):
        return None
    first = saved[0]
    rows = first.rows(folds)
    for other in saved:
        if len(other.y) != len(first.y) or not np.array_equal(other.rows(folds), rows):
            return None  # fitted on other rows or folds: not comparable
    if len(rows) == 0 or len(np.unique(first.fold[rows])) < folds:
        return None
    y, fold = first.y[rows], first.fold[rows]
    predictions = [s.prediction[rows] for s in saved]
    scores: list[float | None] = []
    for index in range(folds):
        fit, held = fold != index, fold == index
        w = _greedy([p[fit] for p in predictions], y[fit], task, n_classes, metric, direction)
        blended = _blend([p[held] for p in predictions], w)
        scores.append(_score(blended, y[held], task, n_classes, metric))
    weights = _greedy(predictions, y, task, n_classes, metric, direction)
    return (None if len(set(weights)) == 1 else weights), scores


def _cv_record(scores: list[float | None] | None) -> dict[str, Any] | None:
    """The ensemble's fold scores as a run's `cv` record (None without them)."""
    if scores is None:
        return None
    defined = [s for s in scores if s is not None]
    return {
        "kind": "out-of-fold blend",
        "folds": len(scores),
        "mean": float(np.mean(defined)) if len(defined) == len(scores) else None,
        "std": round(float(np.std(defined)), 6) if defined else None,
        "scores": scores,
    }


def choose_weights(
    predictions: list[np.ndarray],
    y: np.ndarray,
    task: str,
    n_classes: int,
    metric: str,
    direction: Direction,
) -> tuple[list[float] | None, str]:
    """(weights or None for equal ones, "weighted" | "soft-voting"): greedy selection's weights
    when, cross-fitted on two halves of the rows, they beat equal weights on both halves' union."""
    rows = len(y)
    if rows < 40 or len(predictions) < 2:
        return None, "soft-voting"
    order = np.random.default_rng(0).permutation(rows)
    halves = (order[: rows // 2], order[rows // 2 :])
    crossed = np.zeros_like(predictions[0])
    for fit_rows, score_rows in (halves, halves[::-1]):
        w = _greedy(
            [p[fit_rows] for p in predictions], y[fit_rows], task, n_classes, metric, direction
        )
        crossed[score_rows] = _blend([p[score_rows] for p in predictions], w)
    equal = _score(_blend(predictions, None), y, task, n_classes, metric)
    if not is_better(_score(crossed, y, task, n_classes, metric), equal, direction):
        return None, "soft-voting"
    weights = _greedy(predictions, y, task, n_classes, metric, direction)
    if len(set(weights)) == 1:
        return None, "soft-voting"
    return weights, "weighted"


def _greedy(
    predictions: list[np.ndarray],
    y: np.ndarray,
    task: str,
    n_classes: int,
    metric: str,
    direction: Direction,
) -> list[float]:
    """Greedy ensemble selection with replacement: weights that sum to 1."""
    counts = [0] * len(predictions)
    total = np.zeros_like(predictions[0])
    for step in range(1, SELECTION_STEPS + 1):
        best, best_score = 0, None
        for index, p in enumerate(predictions):
            score = _score((total + p) / step, y, task, n_classes, metric)
            if best_score is None or is_better(score, best_score, direction):
                best, best_score = index, score
        counts[best] += 1
        total = total + predictions[best]
    return [c / SELECTION_STEPS for c in counts]


def _blend(predictions: list[np.ndarray], weights: list[float] | None) -> np.ndarray:
    w = np.full(len(predictions), 1 / len(predictions)) if weights is None else np.asarray(weights)
    return np.asarray(sum(wi * p for wi, p in zip(w, predictions, strict=True)))


def _score(prediction: np.ndarray, y: np.ndarray, task: str, n_classes: int, metric: str) -> Any:
    return metric_score(task, y, prediction, n_classes, metric)
