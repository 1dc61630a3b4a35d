"""Service parity for clustering and anomaly models: the staged service's predictor on raw test
rows against the native pipeline on `feature_frame` rows (cluster ids; anomaly scores and flags).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.unsupervised_onnx import LABEL_AGREEMENT, SCORE_TOLERANCE

if TYPE_CHECKING:
    from mlwizard.core.deploy.phase import ServiceParity


def service_parity(
    predictor: object, pipeline_path: Path, schema: Schema, test_path: Path, max_rows: int
) -> ServiceParity:
    import joblib
    import pandas as pd
    import pyarrow.parquet as pq

    from mlwizard.core.deploy.phase import ServiceParity

    rows = pq.read_table(test_path).slice(0, max_rows).to_pylist()
    if not rows:
        return ServiceParity(0, float("nan"), SCORE_TOLERANCE, None)
    pipeline = joblib.load(pipeline_path)
    frame = feature_frame(pd.read_parquet(test_path).head(max_rows), schema)
    served = predictor.predict_records(rows)  # type: ignore[attr-defined]
    labels = np.asarray(pipeline.predict(frame)).ravel()
    if schema.task == "clustering":
        ids = np.array([r["cluster"] for r in served])
        agreement = float(np.mean(ids == labels))
        # As a difference: the share of rows whose cluster differs, against what ONNX allows.
        return ServiceParity(len(rows), 1.0 - agreement, 1.0 - LABEL_AGREEMENT, agreement)
    native = -np.asarray(pipeline.decision_function(frame), dtype=np.float64).ravel()
    scores = np.array([r["anomaly_score"] for r in served], dtype=np.float64)
    flags = np.array([r["anomaly"] for r in served])
    diff = float(np.max(np.abs(native - scores)))
    tolerance = SCORE_TOLERANCE * (1.0 + float(np.max(np.abs(native))))
    return ServiceParity(len(rows), diff, tolerance, float(np.mean(flags == (labels == -1))))
