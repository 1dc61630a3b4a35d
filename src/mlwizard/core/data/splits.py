"""Seeded train/validation/test assignment: stratified or random, by time, or by group.

Every function returns one split index per row (0 train, 1 valid, 2 test).
"""

from __future__ import annotations

import numpy as np

from mlwizard.core.kernel.errors import BadInputError

SPLITS = ("train", "valid", "test")
TRAIN, VALID, TEST = 0, 1, 2
MIN_GROUPS = 3


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Both fractions in (0, 1) and leaving rows for training."""
    for key, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise BadInputError(f"[split] {key} = {value}: must be between 0 and 1 (exclusive)")
    if valid_fraction + test_fraction >= 1:
        raise BadInputError(
            f"[split] valid_fraction + test_fraction = {valid_fraction + test_fraction:g}: "
            "must be below 1 to leave rows for training"
        )


def assign_splits(
    labels: np.ndarray | None, n_rows: int, valid_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Random split, stratified when `labels` is given.

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
        assignment[shuffled[:n_test]] = TEST
        assignment[shuffled[n_test : n_test + n_valid]] = VALID
    return assignment


def assign_time_splits(
    times: np.ndarray, valid_fraction: float, test_fraction: float, column: str = "time"
) -> np.ndarray:
    """Train on the earliest rows, validate on the next, test on the latest.

    `times` must have no missing values. Rows sharing a time never straddle a cut: each cut moves
    to the nearer edge of its run of equal times, so max(train) < min(valid) <= max(valid) <
    min(test) and the fractions hold up to the size of one run.
    """
    n = len(times)
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    cut_valid = _snap_to_change(ordered, n - n_test - n_valid)
    cut_test = _snap_to_change(ordered, n - n_test)
    if not 0 < cut_valid < cut_test < n:
        distinct = len(np.unique(ordered))
        raise BadInputError(
            f"[split] time_column '{column}': {distinct} distinct times in {n} rows are too few "
            "to cut train, valid and test without splitting a moment across two of them; "
            "use a finer time column or another [split] strategy"
        )
    assignment = np.zeros(n, dtype=np.int8)
    assignment[order[cut_valid:cut_test]] = VALID
    assignment[order[cut_test:]] = TEST
    return assignment


def _snap_to_change(ordered: np.ndarray, k: int) -> int:
    """The position nearest to `k` where the sorted value changes (0 and len count)."""
    n = len(ordered)
    if k <= 0 or k >= n:
        return min(max(k, 0), n)
    left = int(np.searchsorted(ordered, ordered[k], side="left"))
    right = int(np.searchsorted(ordered, ordered[k], side="right"))
    if left == 0:
        return right
    if right == n:
        return left
    return left if k - left <= right - k else right


def assign_group_splits(
    groups: np.ndarray,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    column: str = "group",
) -> np.ndarray:
    """Whole groups to each split, in a seeded random order, so that no group is in two splits.

    Groups are laid end to end in shuffled order; a group goes to test, valid or train by where
    its middle row falls, which honours the fractions up to half a group at each cut.
    """
    values, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(values) < MIN_GROUPS:
        raise BadInputError(
            f"[split] group_column '{column}': {len(values)} distinct groups; a group split "
            f"needs at least {MIN_GROUPS}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(values))
    middles = np.cumsum(sizes[order]) - sizes[order] / 2
    n = len(groups)
    in_order = np.where(
        middles < n * test_fraction,
        TEST,
        np.where(middles < n * (test_fraction + valid_fraction), VALID, TRAIN),
    ).astype(np.int8)
    _fill_empty_splits(in_order)
    group_split = np.empty(len(values), dtype=np.int8)
    group_split[order] = in_order
    return group_split[inverse.reshape(-1)]


def _fill_empty_splits(in_order: np.ndarray) -> None:
    """Give an empty split one group from the split holding the most groups."""
    for split in (TEST, VALID, TRAIN):
        if not (in_order == split).any():
            donor = int(np.argmax(np.bincount(in_order, minlength=3)))
            in_order[np.flatnonzero(in_order == donor)[-1]] = split
