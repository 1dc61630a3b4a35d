"""A seeded random search per model family, scored by cross-validation, inside a deadline.

The defaults are tried first, then seeded random configurations. Each configuration is scored
fold by fold, and dropped early (pruned) when its running mean falls behind the best
configuration's mean on the same folds by more than the best one's spread across folds. A
configuration is started only if the time its folds took so far fits before the deadline, so
the search ends on time with the best completed configuration. Given the same data, seed and
configurations the search is deterministic; one cut short by the deadline is marked incomplete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from mlwizard.core.contract.tasks import Direction
from mlwizard.core.model import fitting
from mlwizard.core.model.candidates import FAMILIES, Params, plain
from mlwizard.core.model.cv import CvPlan
from mlwizard.core.model.metrics import evaluate, is_better


@dataclass
class Trial:
    params: Params
    scores: list[float | None] = field(default_factory=list)
    rounds: list[int | None] = field(default_factory=list)
    fold_s: list[float] = field(default_factory=list)  # fit and score, per fold
    pruned: bool = False
    truncated: bool = False  # a fold's boosting was stopped by the deadline

    @property
    def mean(self) -> float | None:
        """Mean over the folds scored (None if none, or if one is undefined)."""
        valid = [s for s in self.scores if s is not None]
        return float(np.mean(valid)) if valid and len(valid) == len(self.scores) else None

    @property
    def std(self) -> float:
        valid = [s for s in self.scores if s is not None]
        return float(np.std(valid)) if valid else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {k: plain(v) for k, v in self.params.items()},
            "cv_mean": self.mean,
            "cv_std": round(self.std, 6),
            "folds_scored": len(self.scores),
            "pruned": self.pruned,
        }


@dataclass
class SearchResult:
    trials: list[Trial]
    planned: int
    best: Trial | None
    best_fold_model: Pipeline | None  # fallback when there is no time left for the refit
    complete: bool  # every planned configuration was scored or pruned, nothing cut short
    stopped: str = ""  # why the search stopped early, if it did
    best_fold: int | None = None  # which fold `best_fold_model` was fitted on


def search(
    name: str,
    configs: list[Params],
    cv: CvPlan,
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    schema_task: str,
    n_classes: int,
    metric: str,
    direction: Direction,
    seed: int,
    build: Callable[[Params], Pipeline],
    deadline: float,
    keep_free: Callable[[float], float] = lambda per_fold: 0.0,
) -> SearchResult:
    """Score `configs` in order on `cv`'s folds until done or time runs out.

    Work stops `keep_free(seconds per fold)` before `deadline` (time.monotonic()): the time the
    refit and export after the search are expected to take.
    """
    family = FAMILIES[name]
    trials: list[Trial] = []
    best: Trial | None = None
    best_model: Pipeline | None = None
    best_fold: int | None = None
    stopped = ""
    folds = len(cv.folds)
    for params in configs:
        trial = Trial(params)
        # Start a configuration only if its folds, timed on earlier ones, fit before the deadline.
        per_fold = _fold_estimate(trials)
        stop_at = deadline - keep_free(per_fold)
        if trials and time.monotonic() + per_fold * folds > stop_at:
            stopped = f"time ran out after {len(trials)} of {len(configs)} configurations"
            break
        fold_model: Pipeline | None = None  # the one fitted on the most rows (time folds grow)
        fold_rows = 0
        fold_index: int | None = None
        for index, (fit_rows, score_rows) in enumerate(cv.folds):
            if index and time.monotonic() + per_fold > stop_at:
                stopped = f"time ran out during configuration {len(trials) + 1}"
                break
            started = time.perf_counter()
            pipeline = clone(build(params))
            info = fitting.fit(
                pipeline,
                family,
                x.iloc[fit_rows],
                y[fit_rows],
                seed=seed,
                deadline=stop_at,
            )
            prediction = fitting.predict(pipeline, x.iloc[score_rows], n_classes)
            score = evaluate(schema_task, y[score_rows], prediction, n_classes).get(metric)
            trial.scores.append(score)
            trial.rounds.append(info.rounds)
            trial.fold_s.append(time.perf_counter() - started)
            trial.truncated = trial.truncated or info.truncated
            per_fold = _fold_estimate([*trials, trial])
            stop_at = deadline - keep_free(per_fold)
            if len(fit_rows) > fold_rows:
                fold_model, fold_rows, fold_index = pipeline, len(fit_rows), index
            if best is not None and _behind(trial, best, direction, folds):
                trial.pruned = True
                break
        trials.append(trial)
        if trial.truncated and not stopped:
            stopped = "boosting stopped by the deadline"
        if stopped:
            # Cut short: a partly scored configuration still beats having none.
            if best is None and trial.mean is not None:
                best, best_model, best_fold = trial, fold_model, fold_index
            break
        if not trial.pruned and (best is None or is_better(trial.mean, best.mean, direction)):
            best, best_model, best_fold = trial, fold_model, fold_index
    complete = not stopped and len(trials) == len(configs)
    return SearchResult(trials, len(configs), best, best_model, complete, stopped, best_fold)


def _fold_estimate(trials: list[Trial]) -> float:
    """Seconds one fold fit is expected to take: the slowest configuration's mean so far."""
    means = [float(np.mean(t.fold_s)) for t in trials if t.fold_s]
    return max(means) if means else 0.0


def _behind(trial: Trial, best: Trial, direction: Direction, folds: int) -> bool:
    """Whether an unfinished `trial` trails `best` on the folds scored so far by more than the
    spread of best's fold scores (an undefined score always trails)."""
    n = len(trial.scores)
    if n >= folds:
        return False
    if any(s is None for s in trial.scores):
        return True
    theirs = [s for s in best.scores[:n] if s is not None]
    if not theirs:
        return False
    mine = float(np.mean([s for s in trial.scores if s is not None]))
    reference = float(np.mean(theirs))
    if direction == "maximize":
        return mine < reference - best.std
    return mine > reference + best.std
