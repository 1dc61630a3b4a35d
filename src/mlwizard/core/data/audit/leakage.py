"""Leakage: features that alone (nearly) determine the target, and rows shared across splits.

Target leakage is judged on a seeded sample of at most 20,000 labelled rows. Each feature gets a
one-feature model scored out of fold (3 folds): a lookup table of the target's class frequencies
(or mean) per value, smoothed towards the overall distribution. A numeric feature is first cut
into up to 128 quantile bins (missing values in a bin of their own), so its model is a histogram
model, like a one-feature tree with fixed splits; it is vectorised numpy, milliseconds per column.
An out-of-fold ROC AUC (macro one-vs-rest for several classes) or R² of at least 0.98 flags the
feature; so does a categorical whose well-supported values each map to one class.

Split leakage counts, with DuckDB over the written split files, the valid and test rows whose
features and target repeat a training row exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

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


def sample_indices(n_rows: int, seed: int, size: int = SAMPLE_ROWS) -> np.ndarray:
    """Sorted row positions of a seeded sample without replacement (all rows if few)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def target_leakage(
    sample: pd.DataFrame, target: str, kinds: Mapping[str, str], task: str, seed: int
) -> list[Finding]:
    """A finding (with an exclusion reason) for each feature that alone predicts the target."""
    if len(sample) < MIN_ROWS:
        return []
    y = _encode_target(sample[target], task)
    if task != "regression" and y.max() < 1:
        return []
    findings = []
    for name, kind in kinds.items():
        verdict = _verdict(sample[name], y, kind, task, seed)
        if verdict is not None:
            message, short = verdict
            findings.append(
                Finding(
                    "target_leakage",
                    "warning",
                    name,
                    f"alone predicts the target: {message}",
                    "excluded; if it is known before the outcome at prediction time (not "
                    f"recorded after it), list {toml_key(name)} in [data] keep",
                    exclude=f"target leakage: {short}",
                )
            )
    return findings


def _verdict(
    values: pd.Series, y: np.ndarray, kind: str, task: str, seed: int
) -> tuple[str, str] | None:
    """(message, short reason) when the feature leaks, else None."""
    if kind == "categorical" and task != "regression":
        codes = _codes(values)
        pure = _pure_values(codes, y)
        if pure is not None:
            return (
                f"each of its {pure} common values maps to a single class",
                "each value maps to a single class",
            )
    score = one_feature_score(values, y, kind, task, seed)
    if score is None or score < LEAK_SCORE:
        return None
    metric = "R²" if task == "regression" else "ROC AUC"
    return (
        f"a model on this column alone scores {metric} {score:.3f} out of fold "
        f"on {len(values)} sampled rows",
        f"{metric} {score:.3f} on its own",
    )


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


def split_leakage(
    con: duckdb.DuckDBPyConnection, paths: Mapping[str, Path], columns: list[str]
) -> tuple[list[Finding], dict[str, int]]:
    """Valid and test rows that repeat a training row exactly (over `columns`), counted by DuckDB
    over the split files; struct comparison treats missing values as equal."""
    row = "row(" + ", ".join(quote_ident(c) for c in columns) + ")"
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE {row} IN "
        f"(SELECT {row} FROM read_parquet($train))) FROM read_parquet($split)"
    )
    repeated, sizes = {}, {}
    for name in ("valid", "test"):
        params = {"train": str(paths["train"]), "split": str(paths[name])}
        sizes[name], repeated[name] = con.execute(sql, params).fetchall()[0]
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
        'drop duplicate rows in the source, or use [split] strategy = "group" so related '
        "rows stay in one split",
    )
    return [finding], repeated
