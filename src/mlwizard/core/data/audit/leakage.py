"""Leakage: features that alone (nearly) determine the target, and rows shared across splits.

Target leakage is judged on a seeded sample of at most 20,000 labelled rows. Each feature gets a
one-feature model scored out of fold (3 folds): a lookup table of the target's class frequencies
(or mean) per value, smoothed towards the overall distribution. A numeric feature is first cut
into up to 128 quantile bins (missing values in a bin of their own), so its model is a histogram
model, like a one-feature tree with fixed splits; it is vectorised numpy, milliseconds per column.
An out-of-fold ROC AUC (macro one-vs-rest for several classes) or R² of at least 0.98 flags the
feature (the absolute bar); so does a categorical whose well-supported values each map to one
class. A numeric column with few distinct values (a code: severity 1-8) is scored both ways, as
numbers and as categories, and judged by the stronger.

The relative rule catches a leak that is only strong next to the others: a feature whose lift
(ROC AUC above 0.5, or R²) is at least `RELATIVE_RATIO` times the next feature's, with a score
of at least `RELATIVE_MIN`. Calibration: see `RELATIVE_RATIO`.

Split leakage counts the valid and test rows whose features and target repeat a training row
exactly, by row hashes (DuckDB over the rows in memory; no split file is read back).
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from mlwizard.core.data.audit.findings import Finding
from mlwizard.core.data.audit.rules import toml_key
from mlwizard.core.sql import quote_ident

SAMPLE_ROWS = 20_000
LEAK_SCORE = 0.98
FOLDS = 3
MAX_BINS = 128  # quantile bins of a numeric feature ...
ROWS_PER_BIN = 10  # ... fewer on small samples, so that each bin has rows to learn from
SMOOTHING = 0.1  # pseudo-rows of the overall distribution added to each value (or bin)
MIN_ROWS = 30  # fewer sampled rows: no verdict
PURE_MIN_ROWS = 10  # rows a value needs before "it maps to one class" means something
PURE_COVERAGE = 0.9  # share of the rows those values must cover
SPLIT_LEAK_WARNING = 0.01  # repeated rows above this share of a split: warning (any: info)
FEW_VALUES = 20  # a numeric column with at most this many distinct values is also a category
RELATIVE_MIN = 0.9  # the relative rule needs this score (ROC AUC; R² for regression) ...
RELATIVE_MIN_R2 = 0.8
# ... and this many times the lift of every other feature. Calibrated on the project's tests
# and scikit-learn's tables: the strongest real feature had at most 1.6 times the next one's lift
# in a classification (synthetic frames 1.0-1.6, penguins 1.03, wine 1.09, breast cancer 1.01,
# iris 1.00, digits 1.00), 2.4 in a weak regression (R² 0.35, under the floor); a severity code
# one of whose 8 values is the outcome (ROC AUC 0.97) stood 5.8 times above the next feature.
RELATIVE_RATIO = 2.5
# "Above every other feature" needs others to compare with: with one weak comparator (a 40-row
# test table whose only signal is one number, ROC AUC 0.96, beside a noise category) a genuine
# feature would stand out as well.
RELATIVE_MIN_OTHERS = 3
ROW_ORDER_AUC = 0.8  # an identifier's order scoring this predicts the target by row order


def sample_indices(n_rows: int, seed: int, size: int = SAMPLE_ROWS) -> np.ndarray:
    """Sorted row positions of a seeded sample without replacement (all rows if few)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def target_leakage(
    sample: pd.DataFrame, target: str, kinds: Mapping[str, str], task: str, seed: int
) -> list[Finding]:
    """A finding (with an exclusion reason) for each feature that alone predicts the target:
    above the absolute bar, or far above every other feature (the relative rule)."""
    if len(sample) < MIN_ROWS:
        return []
    y = _encode_target(sample[target], task)
    if task != "regression" and y.max() < 1:
        return []
    metric = "R²" if task == "regression" else "ROC AUC"
    scores: dict[str, float] = {}
    flagged: dict[str, tuple[str, str]] = {}
    for name, kind in kinds.items():
        pure, score = _judge(sample[name], y, kind, task, seed)
        if score is not None:
            scores[name] = score
        if pure is not None:
            flagged[name] = (
                f"each of its {pure} common values maps to a single class",
                "each value maps to a single class",
            )
        elif score is not None and score >= LEAK_SCORE:
            flagged[name] = (
                f"a model on this column alone scores {metric} {score:.3f} out of fold "
                f"on {len(sample)} sampled rows",
                f"{metric} {score:.3f} on its own",
            )
    relative = _relative_leak(scores, task, set(flagged))
    if relative is not None:
        name, score, runner_up, other = relative
        flagged[name] = (
            f"a model on this column alone scores {metric} {score:.3f} out of fold, far above "
            f"every other feature (the next best, '{runner_up}', scores {other:.3f})",
            f"{metric} {score:.3f} on its own, far above every other feature",
        )
    return [
        Finding(
            "target_leakage",
            "warning",
            name,
            f"alone predicts the target: {message}; a value recorded after the outcome, or a "
            "code for it, gives test scores that do not hold at prediction time",
            "excluded; if it is known before the outcome at prediction time (not "
            f"recorded after it), list {toml_key(name)} in [data] keep",
            exclude=f"target leakage: {short}",
        )
        for name, (message, short) in flagged.items()
    ]


def _lift(score: float, task: str) -> float:
    return max(score if task == "regression" else score - 0.5, 0.0)


def _relative_leak(
    scores: Mapping[str, float], task: str, flagged: set[str]
) -> tuple[str, float, str, float] | None:
    """(feature, score, runner-up, its score) when one feature stands far above the rest."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if len(ranked) < 1 + RELATIVE_MIN_OTHERS or ranked[0][0] in flagged:
        return None
    (best, score), (runner_up, other) = ranked[0], ranked[1]
    floor = RELATIVE_MIN_R2 if task == "regression" else RELATIVE_MIN
    if score < floor or _lift(score, task) < RELATIVE_RATIO * _lift(other, task):
        return None
    return best, score, runner_up, other


def _judge(
    values: pd.Series, y: np.ndarray, kind: str, task: str, seed: int
) -> tuple[int | None, float | None]:
    """(pure values, score): how many values each map to one class (None if not so), and the
    one-feature score; a numeric code with few values is also judged as a category."""
    as_category = kind == "categorical" or (
        kind == "numeric" and 2 <= values.nunique(dropna=True) <= FEW_VALUES
    )
    pure = None
    if as_category and task != "regression":
        pure = _pure_values(_codes(values), y)
    score = one_feature_score(values, y, kind, task, seed)
    if as_category and kind == "numeric":
        coded = one_feature_score(values, y, "categorical", task, seed)
        if coded is not None and (score is None or coded > score):
            score = coded
    return pure, score


def row_order_leakage(
    sample: pd.DataFrame, target: str, identifiers: list[str], task: str, seed: int
) -> list[Finding]:
    """An identifier whose order alone predicts the target: the rows were written in an order
    that follows the outcome (class by class, or keyed after the fact)."""
    if len(sample) < MIN_ROWS or not identifiers:
        return []
    y = _encode_target(sample[target], task)
    if task != "regression" and y.max() < 1:
        return []
    metric = "R²" if task == "regression" else "ROC AUC"
    bar = RELATIVE_MIN_R2 if task == "regression" else ROW_ORDER_AUC
    findings = []
    for name in identifiers:
        order = sample[name].rank(method="dense").to_numpy(dtype=np.float64)
        score = one_feature_score(pd.Series(order), y, "numeric", task, seed)
        if score is None or score < bar:
            continue
        findings.append(
            Finding(
                "row_order_leakage",
                "warning",
                name,
                f"the identifier sorts with the target: its order alone scores {metric} "
                f"{score:.3f}, so the rows were numbered in an order that follows the outcome "
                "(appended class by class, or keyed after the fact)",
                "it stays excluded; check how the file was assembled, and never split or "
                "derive features by row order or by this key",
            )
        )
    return findings


def one_feature_score(
    values: pd.Series, y: np.ndarray, kind: str, task: str, seed: int
) -> float | None:
    """Out-of-fold ROC AUC (classification) or R² (regression) of a one-feature model."""
    if values.nunique(dropna=False) < 2:
        return None
    if kind in ("numeric", "datetime"):
        codes = _bins(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
    else:
        codes = _codes(values)
    predicted = _lookup_oof(codes, y, task, _folds(len(y), seed))
    if task == "regression":
        return _r2(y, predicted)
    n_classes = predicted.shape[1]
    if n_classes == 2:
        return _auc(y == 1, predicted[:, 1])
    return float(np.mean([_auc(y == k, predicted[:, k]) for k in range(n_classes)]))


def _encode_target(values: pd.Series, task: str) -> np.ndarray:
    if task == "regression":
        return values.to_numpy(dtype=np.float64)
    codes, _ = pd.factorize(values, sort=True)
    return codes.astype(np.int64)


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes per value, missing as a value of its own."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64)


def _bins(x: np.ndarray) -> np.ndarray:
    """Quantile bin per value (equal values share a bin); missing values get the last code."""
    present = x[~np.isnan(x)]
    n_bins = int(np.clip(len(present) // ROWS_PER_BIN, 2, MAX_BINS))
    if len(present) == 0:
        return np.zeros(len(x), dtype=np.int64)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, n_bins + 1)[1:-1]))
    codes = np.searchsorted(edges, x, side="right")
    codes[np.isnan(x)] = len(edges) + 1
    return codes.astype(np.int64)


def _folds(n_rows: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded, shuffled folds: (training rows, held-out rows)."""
    fold_of = np.random.default_rng(seed).permutation(n_rows) % FOLDS
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(FOLDS)]


def _lookup_oof(
    codes: np.ndarray, y: np.ndarray, task: str, folds: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Per-value class frequencies (or means) learned on the other folds, smoothed to the prior."""
    n_values = int(codes.max()) + 1
    targets = y.reshape(-1, 1) if task == "regression" else np.eye(int(y.max()) + 1)[y]
    out = np.zeros((len(y), targets.shape[1]))
    for train, held in folds:
        sums = np.zeros((n_values, targets.shape[1]))
        np.add.at(sums, codes[train], targets[train])
        counts = np.bincount(codes[train], minlength=n_values).reshape(-1, 1)
        prior = targets[train].mean(axis=0)
        out[held] = ((sums + SMOOTHING * prior) / (counts + SMOOTHING))[codes[held]]
    return out[:, 0] if task == "regression" else out


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC from ranks (Mann-Whitney U), ties counted half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return 0.5
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - predicted) ** 2)) / total if total else 0.0


def _pure_values(codes: np.ndarray, y: np.ndarray) -> int | None:
    """How many well-supported values there are, when each maps to one class and together they
    cover most rows and at least two classes; None otherwise."""
    frame = pd.DataFrame({"value": codes, "y": y})
    groups = frame.groupby("value")["y"].agg(["size", "nunique", "first"])
    supported = groups[groups["size"] >= PURE_MIN_ROWS]
    if len(supported) < 2 or (supported["nunique"] > 1).any():
        return None
    if supported["size"].sum() < PURE_COVERAGE * len(codes) or supported["first"].nunique() < 2:
        return None
    return len(supported)


def row_hashes(con: duckdb.DuckDBPyConnection, table: pa.Table, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row over `columns` (missing values hash alike)."""
    every = ", ".join(quote_ident(c) for c in columns)
    relation = con.from_arrow(table.select(columns)).select(f"hash({every}) AS h")
    return relation.to_arrow_table().column("h").to_numpy()


def split_leakage(
    hashes: np.ndarray, assignment: np.ndarray
) -> tuple[list[Finding], dict[str, int]]:
    """Valid and test rows that repeat a training row exactly: their row hashes (features and
    target; `row_hashes`) looked up among the training rows' by binary search. The looked-up
    hashes are sorted too: the searches then walk `train` in order instead of jumping about it
    (about ten times faster on 2M rows; the count does not depend on the order)."""
    train = np.sort(hashes[assignment == 0])
    repeated, sizes = {}, {}
    for index, name in ((1, "valid"), (2, "test")):
        part = np.sort(hashes[assignment == index])
        sizes[name] = len(part)
        found = np.minimum(np.searchsorted(train, part), max(len(train) - 1, 0))
        repeated[name] = int((train[found] == part).sum()) if len(train) else 0
    if not any(repeated.values()):
        return [], repeated
    worst = max(repeated[n] / sizes[n] for n in repeated if sizes[n])
    parts = [
        f"{repeated[n]} of {sizes[n]} {n} rows ({100 * repeated[n] / max(sizes[n], 1):.1f}%)"
        for n in ("test", "valid")
    ]
    finding = Finding(
        "split_leakage",
        "warning" if worst >= SPLIT_LEAK_WARNING else "info",
        None,
        " and ".join(parts) + " repeat a training row exactly (features and target); "
        "scores on them are optimistic",
        "if they are copies of one record, drop them in the source or group them with "
        '[split] strategy = "group"; if they are distinct records with equal values (people '
        "alike in every column), keep them: the scores are then fair",
    )
    return [finding], repeated
