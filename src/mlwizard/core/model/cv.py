"""Cross-validation folds on the training split that match how the data phase split the data.

A group split keeps each group in one fold (`GroupKFold`); a time split validates on later rows
than it trains on (`TimeSeriesSplit` over rows ordered by time); otherwise folds are shuffled with
the seed, stratified by class for classifiers. Tuning on folds that mix groups or look into the
future would choose hyperparameters on an optimistic score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

SMALL_DATA_ROWS = 5000  # below: 5 folds; above: 3 (each fold costs a fit)

Fold = tuple[np.ndarray, np.ndarray]  # (fit rows, score rows), positions in the training table


@dataclass
class CvPlan:
    kind: str  # the scikit-learn splitter used
    folds: list[Fold] = field(default_factory=list)
    column: str = ""  # the group or time column it follows
    note: str = ""  # why the plan differs from the split strategy, if it does

    def describe(self) -> dict[str, Any]:
        out = {"kind": self.kind, "folds": len(self.folds)}
        if self.column:
            out["column"] = self.column
        if self.note:
            out["note"] = self.note
        return out


def n_folds(rows: int) -> int:
    return 5 if rows < SMALL_DATA_ROWS else 3


def plan(
    table: pd.DataFrame,
    y: np.ndarray,
    *,
    task: str,
    strategy: str,
    column: str,
    seed: int,
) -> CvPlan:
    """Folds over the rows of `table` (the training split, split column included)."""
    rows = len(table)
    k = min(n_folds(rows), rows)
    if strategy == "group" and column in table:
        groups = _codes(table[column])
        distinct = len(np.unique(groups))
        if distinct >= 2:
            splitter = GroupKFold(n_splits=min(k, distinct))
            folds = list(splitter.split(np.zeros(rows), y, groups))
            return CvPlan("GroupKFold", folds, column)
        return _shuffled(y, task, k, seed, f"only {distinct} group in training: folds by row")
    if strategy == "time" and column in table:
        order = np.argsort(_sortable(table[column]), kind="stable")
        splitter = TimeSeriesSplit(n_splits=max(2, k))
        folds = [(order[a], order[b]) for a, b in splitter.split(order)]
        return CvPlan("TimeSeriesSplit", folds, column)
    note = (
        f"split column '{column}' not in the training split"
        if strategy in {"group", "time"}
        else ""
    )
    return _shuffled(y, task, k, seed, note)


def _shuffled(y: np.ndarray, task: str, k: int, seed: int, note: str) -> CvPlan:
    rows = len(y)
    if task != "regression":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2:
            k_strat = min(k, int(counts.min()))
            splitter = StratifiedKFold(n_splits=k_strat, shuffle=True, random_state=seed)
            return CvPlan("StratifiedKFold", list(splitter.split(np.zeros(rows), y)), note=note)
        note = note or "a class has a single training row: folds not stratified"
    splitter_k = KFold(n_splits=max(2, k), shuffle=True, random_state=seed)
    return CvPlan("KFold", list(splitter_k.split(np.zeros(rows))), note=note)


def _codes(values: pd.Series) -> np.ndarray:
    """An integer per group; each row without a group is a group of its own (as the data phase)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    missing = codes < 0
    codes = codes.astype(np.int64)
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def _sortable(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values) or isinstance(values.dtype, pd.PeriodDtype):
        return values.astype("int64").to_numpy()
    try:
        return pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.inf)
    except (TypeError, ValueError):
        return values.astype(str).to_numpy()
