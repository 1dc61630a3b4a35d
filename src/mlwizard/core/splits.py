"""Seeded train/validation/test assignment, stratified by class for classifiers."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "valid", "test")


def assign_splits(
    labels: np.ndarray | None, n_rows: int, valid_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Split index per row (0 train, 1 valid, 2 test). Stratified when `labels` is given.

    Each stratum is shuffled with one seeded generator and cut by fractions, rounding down for
    validation and test so that even a tiny class keeps its rows in training.
    """
    rng = np.random.default_rng(seed)
    assignment = np.zeros(n_rows, dtype=np.int8)
    if labels is None:
        strata = [np.arange(n_rows)]
    else:
        strata = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    for rows in strata:
        shuffled = rng.permutation(rows)
        n_test = int(len(shuffled) * test_fraction)
        n_valid = int(len(shuffled) * valid_fraction)
        assignment[shuffled[:n_test]] = 2
        assignment[shuffled[n_test : n_test + n_valid]] = 1
    return assignment
