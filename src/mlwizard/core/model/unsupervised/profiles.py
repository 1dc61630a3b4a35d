"""What a clustering found and how well an anomaly ranking works, in terms a reader can use.

Cluster profiles describe each cluster by its size and, per feature, how it differs from all
rows: numerics by median and mean (with the difference in standard deviations), categoricals by
their commonest value and its share. The anomaly evaluation is against the held-back label: ROC
AUC and average precision of the score, and how many labelled anomalies the top of the ranking
catches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.schema import Schema

TOP_FEATURES = 5  # per cluster: the features that set it apart most


def cluster_profiles(
    table: pd.DataFrame, schema: Schema, labels: np.ndarray
) -> list[dict[str, Any]]:
    """One profile per cluster id, on the user's column names and values."""
    profiles = []
    overall = {f.name: _numeric(table[f.name]) for f in schema.numeric}
    for cluster in sorted(np.unique(labels).tolist()):
        rows = table[labels == cluster]
        numeric = {}
        for feature in schema.numeric:
            values, everyone = _numeric(rows[feature.name]), overall[feature.name]
            std = float(np.nanstd(everyone)) or 1.0
            mean = float(np.nanmean(values)) if np.isfinite(values).any() else None
            numeric[feature.name] = {
                "mean": _round(mean),
                "median": _round(float(np.nanmedian(values)) if mean is not None else None),
                "shift_sd": _round((mean - float(np.nanmean(everyone))) / std)
                if mean is not None
                else None,
            }
        categorical = {}
        for feature in schema.categorical:
            counts = (
                rows[feature.name]
                .astype(object)
                .where(rows[feature.name].notna(), None)
                .value_counts(dropna=False)
            )
            if len(counts):
                categorical[feature.name] = {
                    "top": None if counts.index[0] is None else str(counts.index[0]),
                    "share": round(float(counts.iloc[0] / len(rows)), 4),
                }
        shifts = {n: v["shift_sd"] for n, v in numeric.items() if v["shift_sd"] is not None}
        distinctive = sorted(shifts, key=lambda n: -abs(shifts[n]))[:TOP_FEATURES]
        profiles.append(
            {
                "cluster": int(cluster),
                "rows": len(rows),
                "share": round(len(rows) / len(table), 4) if len(table) else 0.0,
                "distinctive": [_shift_words(n, shifts[n]) for n in distinctive],
                "numeric": numeric,
                "categorical": categorical,
            }
        )
    return profiles


def anomaly_ranking(is_anomaly: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """How the labelled anomalies rank: caught in the top n (n = their count), median rank."""
    n = int(is_anomaly.sum())
    if n == 0 or n == len(scores):
        return {"labelled_anomalies": n}
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    top = np.zeros(len(scores), dtype=bool)
    top[order[:n]] = True
    return {
        "labelled_anomalies": n,
        "rows": len(scores),
        "caught_in_top_n": int((top & is_anomaly).sum()),
        "precision_at_n": round(float((top & is_anomaly).sum() / n), 4),
        "median_rank_percentile": round(float(np.median(ranks[is_anomaly]) / len(scores) * 100), 2),
    }


def _shift_words(name: str, shift: float) -> str:
    return f"{name} {'higher' if shift > 0 else 'lower'} by {abs(shift):.2g} sd"


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)
