"""Clustering and anomaly-detection families: one sklearn Pipeline each, preprocessing inside.

Numerics are imputed (median) and standardised, categoricals one-hot encoded (unseen: all
zeros): distances need comparable scales, and every piece converts to ONNX with parity
(export/unsupervised_onnx.py). Clustering chooses its number of clusters on a sample: silhouette
for the k-means variants, BIC for the Gaussian mixture. Anomaly detection's contamination is the
configured one, or estimated from the training rows without any label (robust z-scores).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.schema import Schema

SELECT_SAMPLE_ROWS = 3000  # rows the number of clusters is chosen on
SCORE_SAMPLE_ROWS = 2000  # silhouette is quadratic in rows: scored on a sample
MAX_CLUSTERS = 10
ROBUST_Z = 3.5  # |robust z| beyond this on any numeric marks a row as unusual (Iglewicz-Hoaglin)
CONTAMINATION_RANGE = (0.005, 0.2)


def preprocess(schema: Schema) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        parts.append(("numeric", numeric, [f.input for f in schema.numeric]))
    if schema.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categorical", encoder, [f.input for f in schema.categorical]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def model(name: str, seed: int, k: int = 0, contamination: float = 0.05) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.covariance import EllipticEnvelope
    from sklearn.ensemble import IsolationForest
    from sklearn.mixture import GaussianMixture

    builders: dict[str, Callable[[], Any]] = {
        "kmeans": lambda: KMeans(n_clusters=k, n_init=4, random_state=seed),
        "minibatch_kmeans": lambda: MiniBatchKMeans(
            n_clusters=k, n_init=3, batch_size=1024, random_state=seed
        ),
        "gaussian_mixture": lambda: GaussianMixture(
            n_components=k, covariance_type="full", reg_covar=1e-4, random_state=seed
        ),
        "isolation_forest": lambda: IsolationForest(
            n_estimators=100, contamination=contamination, random_state=seed, n_jobs=1
        ),
        "robust_distance": lambda: EllipticEnvelope(contamination=contamination, random_state=seed),
    }
    return builders[name]()


def pipeline(name: str, schema: Schema, seed: int, **params: Any) -> Any:
    from sklearn.pipeline import Pipeline

    return Pipeline([("columns", preprocess(schema)), ("model", model(name, seed, **params))])


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed)


# -- clustering ------------------------------------------------------------------------------------


def cluster_scores(x: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float | None]:
    """Label-free quality of a clustering on (preprocessed) rows; None where undefined."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    size = min(len(labels), SCORE_SAMPLE_ROWS)
    return {
        "silhouette": round(
            float(silhouette_score(x, labels, sample_size=size, random_state=seed)), 6
        ),
        "davies_bouldin": round(float(davies_bouldin_score(x, labels)), 6),
        "calinski_harabasz": round(float(calinski_harabasz_score(x, labels)), 4),
    }


def choose_k(
    name: str, schema: Schema, x: pd.DataFrame, seed: int, deadline: float
) -> tuple[int, list[dict[str, Any]]]:
    """The number of clusters, by silhouette (k-means) or BIC (mixture), on a sample."""
    rows = sample(x, SELECT_SAMPLE_ROWS, seed)
    columns = preprocess(schema).fit(rows)
    z = columns.transform(rows)
    trials: list[dict[str, Any]] = []
    best_k, best = 2, None
    for k in range(2, max(2, min(MAX_CLUSTERS, len(rows) // 10)) + 1):
        if time.monotonic() > deadline and trials:
            break
        start = time.perf_counter()
        fitted = _quiet_fit(model(name, seed, k=k), z)
        if name == "gaussian_mixture":
            score, key, better = float(fitted.bic(z)), "bic", lambda a, b: a < b
        else:
            labels = fitted.predict(z)
            score = cluster_scores(z, labels, seed)["silhouette"] or -1.0
            key, better = "silhouette", lambda a, b: a > b
        trials.append(
            {"k": k, key: round(score, 6), "seconds": round(time.perf_counter() - start, 3)}
        )
        if best is None or better(score, best):
            best_k, best = k, score
    return best_k, trials


# -- anomaly detection -----------------------------------------------------------------------------


def estimate_contamination(x: pd.DataFrame, schema: Schema) -> float:
    """The share of rows with a robust z-score beyond 3.5 on some numeric (median/MAD), clipped
    to a sensible range. Uses no label."""
    low, high = CONTAMINATION_RANGE
    columns = [f.input for f in schema.numeric]
    if not columns or len(x) < 10:
        return 0.05
    values = x[columns].to_numpy(dtype=np.float64)
    median = np.nanmedian(values, axis=0)
    mad = np.nanmedian(np.abs(values - median), axis=0)
    mad[mad == 0] = np.inf  # a column with no spread marks nobody
    z = 0.6745 * np.abs(values - median) / mad
    unusual = np.nanmax(np.where(np.isnan(z), 0.0, z), axis=1) > ROBUST_Z
    return float(np.clip(unusual.mean(), low, high))


def anomaly_scores(pipeline: Any, x: pd.DataFrame) -> np.ndarray:
    """Higher = more unusual (the negated decision function, as served)."""
    return -np.asarray(pipeline.decision_function(x), dtype=np.float64).ravel()


def anomaly_metrics(is_anomaly: np.ndarray | None, scores: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if is_anomaly is None or len(np.unique(is_anomaly)) < 2:
        return {"roc_auc": None, "average_precision": None, "none": None}
    return {
        "roc_auc": round(float(roc_auc_score(is_anomaly, scores)), 6),
        "average_precision": round(float(average_precision_score(is_anomaly, scores)), 6),
        "none": None,
    }


def _quiet_fit(estimator: Any, x: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and rank notes: summarised by the scores
        return estimator.fit(x)


def fit(pipeline: Any, x: pd.DataFrame) -> Any:
    return _quiet_fit(pipeline, x)
