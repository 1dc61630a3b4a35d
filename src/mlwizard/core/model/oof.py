"""Out-of-fold predictions: each run's best configuration on the rows its CV folds held out.

A run's search scores every configuration on the same folds of the training split; the best
one's fold models have each predicted the rows they did not see. Saved beside the run (NumPy's
`.npz`, no pickle), they let the ensemble be weighted and judged on many more rows than the
validation split, and on the same folds as the single runs it competes with (`ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlwizard.core.kernel import atomic
from mlwizard.core.model.cv import Fold

UNSCORED = -1  # the fold of a row no fold model predicted (its fold was not reached)


@dataclass(frozen=True)
class OutOfFold:
    fold: np.ndarray  # per training row: the fold that held it out, or UNSCORED
    prediction: np.ndarray  # per training row: class probabilities, or the value
    y: np.ndarray  # the training rows' targets, as the models were fitted on them

    def rows(self, folds: int) -> np.ndarray:
        """Positions of the rows held out by the first `folds` folds."""
        return np.flatnonzero((self.fold >= 0) & (self.fold < folds))


def save(path: Path, folds: list[Fold], predictions: list[np.ndarray], y: np.ndarray) -> Path:
    """Write the predictions of the leading `len(predictions)` folds of `folds`."""
    rows = len(y)
    fold = np.full(rows, UNSCORED, dtype=np.int16)
    shape = (rows, *predictions[0].shape[1:]) if predictions else (rows,)
    out = np.full(shape, np.nan, dtype=np.float64)
    for index, (prediction, (_, held_out)) in enumerate(zip(predictions, folds, strict=False)):
        fold[held_out] = index
        out[held_out] = prediction
    with atomic.atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, fold=fold, prediction=out, y=np.asarray(y))
    return path


def load(path: str | Path | None) -> OutOfFold | None:
    """The saved predictions, or None when there are none (an older run, a quick run)."""
    if not path:
        return None
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return OutOfFold(data["fold"], data["prediction"], data["y"])
    except (OSError, KeyError, ValueError):
        return None
