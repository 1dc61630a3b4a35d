"""Service parity for clustering and anomaly models: the serving predictor's answers on raw test
rows against the native pipeline on `feature_frame` rows (cluster ids; anomaly scores and flags).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.unsupervised_onnx import LABEL_AGREEMENT, SCORE_TOLERANCE


def native_outputs(pipeline: Any, frame: Any, schema: Schema) -> tuple[np.ndarray, list[Any]]:
    """(cluster ids or anomaly scores, the labels served: cluster ids or anomaly flags)."""
    labels = np.asarray(pipeline.predict(frame)).ravel()
    if schema.task == "clustering":
        return labels.astype(np.float64), labels.tolist()
    scores = -np.asarray(pipeline.decision_function(frame), dtype=np.float64).ravel()
    return scores, (labels == -1).tolist()


def compare(
    served: list[dict[str, Any]], native: np.ndarray, labels: list[Any], schema: Schema
) -> tuple[float, float, float]:
    """(max difference, its tolerance, label agreement) of the served answers."""
    if schema.task == "clustering":
        ids = [r["cluster"] for r in served]
        agreement = float(np.mean([a == b for a, b in zip(ids, labels, strict=True)]))
        # As a difference: the share of rows whose cluster differs, against what ONNX allows.
        return 1.0 - agreement, 1.0 - LABEL_AGREEMENT, agreement
    scores = np.array([r["anomaly_score"] for r in served], dtype=np.float64)
    flags = [r["anomaly"] for r in served]
    agreement = float(np.mean([a == b for a, b in zip(flags, labels, strict=True)]))
    tolerance = SCORE_TOLERANCE * (1.0 + float(np.max(np.abs(native))))
    diff = float(np.max(np.abs(native - scores))) if scores.shape == native.shape else np.inf
    return float(diff), tolerance, agreement
