"""Fitting one pipeline: early stopping for boosters, a deadline CatBoost checks every round, and
class probabilities that always have one column per schema class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mlwizard.core.model.candidates import Family

HOLDOUT_FRACTION = 0.1  # CatBoost's early-stopping holdout, as HistGradientBoosting's own
OD_WAIT = 30  # CatBoost: rounds without improvement before stopping
ROUNDS_FACTOR = 1.1  # refit on all rows: a few more rounds than the folds needed on fewer


@dataclass
class FitInfo:
    seconds: float
    rounds: int | None = None  # boosters: rounds kept (early stopping), for the refit
    truncated: bool = False  # stopped by the deadline, not by convergence


class _Deadline:
    """CatBoost callback: stop boosting when the deadline passes."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False

    def after_iteration(self, info: Any) -> bool:
        if time.monotonic() >= self.at:
            self.fired = True
            return False
        return True


def fit(
    pipeline: Pipeline,
    family: Family,
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    seed: int,
    deadline: float,
    rounds: int | None = None,
) -> FitInfo:
    """Fit in place. `rounds` (boosters): a fixed number of rounds instead of early stopping."""
    start = time.perf_counter()
    model = pipeline.steps[-1][1]
    if family.booster == "hgb":
        if rounds is not None:
            model.set_params(max_iter=rounds, early_stopping=False)
        elif is_classifier(model) and not _stratifiable(y):
            # Its holdout is stratified: impossible with a single-row class. Default rounds then.
            model.set_params(max_iter=100, early_stopping=False)
        pipeline.fit(x, y)
        return FitInfo(time.perf_counter() - start, int(model.n_iter_))
    if family.booster != "catboost":
        pipeline.fit(x, y)
        return FitInfo(time.perf_counter() - start)

    # CatBoost: fit the encoders, then the booster on their output, so that an early-stopping
    # holdout can be passed in the booster's own feature space.
    if hasattr(pipeline, "plain"):
        # `SkewedTarget`: the booster learns the log scale, and so does a target encoding (as in
        # `SkewedTarget.fit`, which the refits call).
        from mlwizard.core.export.features_graph import forward

        y = forward(y)
    prefix = pipeline[:-1]
    features = np.asarray(prefix.fit_transform(x, y), dtype=np.float32)
    stop = _Deadline(deadline)
    if rounds is not None:
        model.set_params(iterations=rounds)
        model.fit(features, y, callbacks=[stop])
        kept = int(model.tree_count_)
    else:
        stratify = y if is_classifier(model) and _stratifiable(y) else None
        fit_x, hold_x, fit_y, hold_y = train_test_split(
            features, y, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=stratify
        )
        model.fit(
            fit_x,
            fit_y,
            eval_set=(hold_x, hold_y),
            early_stopping_rounds=OD_WAIT,
            use_best_model=True,
            callbacks=[stop],
        )
        kept = int(model.get_best_iteration() or 0) + 1
    return FitInfo(time.perf_counter() - start, kept, truncated=stop.fired)


def refit_rounds(rounds: list[int | None]) -> int | None:
    """Rounds for the refit on all training rows, from what the CV folds kept."""
    kept = [r for r in rounds if r]
    if not kept:
        return None
    return max(1, round(float(np.mean(kept)) * ROUNDS_FACTOR))


def _stratifiable(y: np.ndarray) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= 2 and len(y) * HOLDOUT_FRACTION >= len(counts)


def predict(pipeline: Pipeline, x: pd.DataFrame, n_classes: int) -> np.ndarray:
    """Probabilities [N, n_classes] (classifiers) or values [N] (regression).

    A model fitted on a fold that lacked a class has fewer columns; they are placed by class id.
    """
    if not is_classifier(pipeline):
        return np.asarray(pipeline.predict(x), dtype=np.float64).ravel()
    proba = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
    learned = np.asarray(pipeline.classes_, dtype=np.int64)
    if proba.shape[1] == n_classes and np.array_equal(learned, np.arange(n_classes)):
        return proba
    full = np.zeros((len(proba), n_classes))
    full[:, learned] = proba
    return full
