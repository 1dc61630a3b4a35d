"""A seeded random search per model family, scored by cross-validation, inside a deadline.

The defaults are tried first, then seeded random configurations. Each configuration is scored
fold by fold, and dropped early (pruned) when its running mean falls behind the best
configuration's mean on the same folds by more than the best one's spread across folds. A
configuration is started only if the time its folds took so far fits before the deadline, so
the search ends on time with the best completed configuration. Given the same data, seed and
configurations the search is deterministic; one cut short by the deadline is marked incomplete.

Fold fits may run side by side (`lanes`, the pool's elastic tail: a job left running alone takes
the idle worker's core as a second fit rather than a second thread per fit, which a small
CatBoost or a forest cannot use). The fits run in order, a few ahead, and their results are
taken in order, exactly as one after the other: the pruning and the best configuration depend
on the folds' scores only, so the trials are the same with any number of lanes. A fold fitted
ahead for a configuration that is then pruned is thrown away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
from mlwizard.core.model.metrics import is_better, score


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
    # The best configuration's predictions on each fold's held-out rows, in fold order (the
    # folds it scored): what an ensemble is chosen and judged on (`oof`).
    best_predictions: list[np.ndarray] = field(default_factory=list)


Position = tuple[int, int]  # (configuration, fold)


@dataclass
class _Fold:
    """One fold fit's outcome."""

    score: float | None
    rounds: int | None
    seconds: float
    truncated: bool
    pipeline: Pipeline
    rows: int
    prediction: np.ndarray  # on the fold's held-out rows


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
    lanes: Callable[[], int] = lambda: 1,
) -> SearchResult:
    """Score `configs` in order on `cv`'s folds until done or time runs out.

    Work stops `keep_free(seconds per fold)` before `deadline` (time.monotonic()): the time the
    refit and export after the search are expected to take. `lanes()`: how many fold fits may
    run at once now (asked before each start; one runs in this thread).
    """
    family = FAMILIES[name]
    replay = _Replay(configs, len(cv.folds), direction)
    timings: dict[int, list[float]] = {}  # seconds per fold fit, by configuration

    def fit_fold(at: Position, stop_at: float) -> _Fold:
        fit_rows, score_rows = cv.folds[at[1]]
        started = time.perf_counter()
        pipeline = clone(build(configs[at[0]]))
        info = fitting.fit(
            pipeline, family, x.iloc[fit_rows], y[fit_rows], seed=seed, deadline=stop_at
        )
        prediction = fitting.predict(pipeline, x.iloc[score_rows], n_classes)
        scored = score(schema_task, y[score_rows], prediction, n_classes, metric)
        seconds = time.perf_counter() - started
        timings.setdefault(at[0], []).append(seconds)
        return _Fold(
            scored, info.rounds, seconds, info.truncated, pipeline, len(fit_rows), prediction
        )

    def out_of_time(at: Position) -> float | None:
        """The deadline the fold at `at` fits by, or None when it would not fit (as one after
        the other: a configuration starts only if all its folds fit, a fold if one fold fits)."""
        per_fold = max((float(np.mean(s)) for s in timings.values()), default=0.0)
        stop_at = deadline - keep_free(per_fold)
        need = per_fold * (replay.folds if at[1] == 0 else 1)
        if (at[0] or at[1]) and time.monotonic() + need > stop_at:
            return None
        return stop_at

    done: dict[Position, _Fold] = {}
    pending: dict[Future[_Fold], Position] = {}
    upcoming: Position | None = (0, 0) if configs and replay.folds else None
    pool: ThreadPoolExecutor | None = None
    try:
        while not replay.consume(done):
            while upcoming is not None and len(pending) < max(1, lanes()):
                upcoming = replay.skip_decided(upcoming)
                if upcoming is None:
                    break
                stop_at = out_of_time(upcoming)
                if stop_at is None:
                    replay.halt = upcoming
                    upcoming = None
                    break
                if not pending and lanes() <= 1:  # one at a time: in this thread, as before
                    done[upcoming] = fit_fold(upcoming, stop_at)
                else:
                    pool = pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="fold")
                    pending[pool.submit(fit_fold, upcoming, stop_at)] = upcoming
                upcoming = replay.after(upcoming)
                if not pending:
                    break  # take the inline result before starting the next
            if replay.consume(done):
                break
            if not pending:
                if upcoming is None:  # nothing runs and nothing can start: stop where it is
                    replay.halt = replay.position()
                continue
            finished, _ = wait(set(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                done[pending.pop(future)] = future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return replay.result()


class _Replay:
    """The search's decisions, taken fold by fold in order from the fits' outcomes."""

    def __init__(self, configs: list[Params], folds: int, direction: Direction) -> None:
        self.configs, self.folds, self.direction = configs, folds, direction
        self.trials: list[Trial] = []
        self.current: Trial | None = None
        self.fold_model: Pipeline | None = None  # the current trial's, fitted on the most rows
        self.fold_rows = 0
        self.fold_index: int | None = None
        self.predictions: list[np.ndarray] = []  # the current trial's, fold by fold
        self.best: Trial | None = None
        self.best_predictions: list[np.ndarray] = []
        self.best_model: Pipeline | None = None
        self.best_fold: int | None = None
        self.stopped = ""
        self.over = False
        self.halt: Position | None = None  # the first position not started: time ran out

    def position(self) -> Position:
        return (len(self.trials), len(self.current.scores) if self.current else 0)

    def after(self, at: Position) -> Position | None:
        nxt = (at[0], at[1] + 1) if at[1] + 1 < self.folds else (at[0] + 1, 0)
        return nxt if nxt[0] < len(self.configs) else None

    def skip_decided(self, at: Position) -> Position | None:
        """`at`, or the next configuration's first fold if `at`'s configuration is decided."""
        while at[0] < len(self.trials):
            if at[0] + 1 >= len(self.configs):
                return None
            at = (at[0] + 1, 0)
        return at

    def consume(self, done: dict[Position, _Fold]) -> bool:
        """Take the outcomes that arrived, in order; True once the search is over."""
        while not self.over:
            if not self.folds:  # nothing to score: every configuration tried on no fold
                self.trials = [Trial(params) for params in self.configs]
            if len(self.trials) == len(self.configs):
                self.over = True
                break
            if self.current is None:
                self.current = Trial(self.configs[len(self.trials)])
                self.fold_model, self.fold_rows, self.fold_index = None, 0, None
                self.predictions = []
            at = self.position()
            if self.halt is not None and at >= self.halt:
                self._out_of_time(at)
                break
            if at not in done:
                break
            self._take(done.pop(at), at[1])
        for stale in [p for p in done if p[0] < len(self.trials)]:
            del done[stale]  # folds fitted ahead for a configuration already decided
        return self.over

    def _take(self, fold: _Fold, index: int) -> None:
        trial = self.current
        assert trial is not None
        trial.scores.append(fold.score)
        trial.rounds.append(fold.rounds)
        trial.fold_s.append(fold.seconds)
        trial.truncated = trial.truncated or fold.truncated
        self.predictions.append(fold.prediction)
        if fold.rows > self.fold_rows:
            self.fold_model, self.fold_rows, self.fold_index = fold.pipeline, fold.rows, index
        best = self.best
        if best is not None and _behind(trial, best, self.direction, self.folds):
            trial.pruned = True
        if trial.pruned or len(trial.scores) == self.folds:
            self.trials.append(trial)
            self.current = None
            if trial.truncated:
                self.stopped = "boosting stopped by the deadline"
                self._keep_if_none(trial)
                self.over = True
            elif not trial.pruned and (
                best is None or is_better(trial.mean, best.mean, self.direction)
            ):
                self._keep(trial)

    def _out_of_time(self, at: Position) -> None:
        if at[1] == 0:
            self.stopped = (
                f"time ran out after {len(self.trials)} of {len(self.configs)} configurations"
            )
        else:
            assert self.current is not None
            self.stopped = f"time ran out during configuration {len(self.trials) + 1}"
            self.trials.append(self.current)
            # Cut short: a partly scored configuration still beats having none.
            self._keep_if_none(self.current)
        self.current = None
        self.over = True

    def _keep_if_none(self, trial: Trial) -> None:
        if self.best is None and trial.mean is not None:
            self._keep(trial)

    def _keep(self, trial: Trial) -> None:
        self.best, self.best_model, self.best_fold = trial, self.fold_model, self.fold_index
        self.best_predictions = self.predictions

    def result(self) -> SearchResult:
        complete = not self.stopped and len(self.trials) == len(self.configs)
        return SearchResult(
            self.trials,
            len(self.configs),
            self.best,
            self.best_model,
            complete,
            self.stopped,
            self.best_fold,
            self.best_predictions,
        )


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
