"""ONNX export and parity for clustering and anomaly-detection pipelines.

Measured on this stack (skl2onnx 1.20, onnxruntime 1.32, 2,000 rows, imputer + scaler + one-hot in
front): KMeans and MiniBatchKMeans export `label` int64 [N] and `scores` (distances) [N, k], labels
100 % equal, distances within 5e-7; GaussianMixture exports `label` [N, 1] and `probabilities`,
within 1.4e-7; IsolationForest exports `label` (1 normal, -1 anomaly) [N, 1] and `scores`
(`decision_function`) [N, 1], within 2.4e-7. EllipticEnvelope (the robust-distance model: a
minimum covariance determinant fit, then Mahalanobis distance) has no converter: it gets one here,
four operators long, with the same outputs as IsolationForest.

Converting an isolation forest is superlinear in trees (per-tree subgraphs): with skl2onnx's graph
optimisation on, 200 trees on 2,674 rows took 252 s on a busy 2-core machine, 50 trees 25 s;
without it, 50 trees 15 s and 100 trees 38 s, same outputs (parity 2e-7). So: optimisation off,
100 trees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import (
    TARGET_OPSET,
    ExportError,
    _conversion_reason,
    initial_types,
    make_session,
    onnx_feed,
    predict_onnx,
)

LABEL_AGREEMENT = 0.995  # float32 rounding may move a point that sits on a boundary
SCORE_TOLERANCE = 1e-4  # relative: allowed diff = tol * (1 + max |score|)


@dataclass(frozen=True)
class UnsupervisedParity:
    rows: int
    max_abs_diff: float  # anomaly scores or cluster distances/probabilities
    tolerance: float
    label_agreement: float
    ok: bool

    @property
    def reason(self) -> str:
        if self.ok:
            return ""
        return (
            f"ONNX output differs from the pipeline on {self.rows} rows: labels agree on "
            f"{self.label_agreement:.2%} (need {LABEL_AGREEMENT:.1%}), scores by "
            f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def register_robust_distance() -> None:
    """A converter for EllipticEnvelope: score = offset - (x - μ)ᵀ P (x - μ); label = ±1."""
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import (
        OnnxGreaterOrEqual,
        OnnxMatMul,
        OnnxMul,
        OnnxReduceSumApi11,
        OnnxReshape,
        OnnxSub,
        OnnxWhere,
    )
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.covariance import EllipticEnvelope

    def shape(operator: Any) -> None:
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n])
        operator.outputs[1].type = FloatTensorType([n, 1])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        model, opv = operator.raw_operator, container.target_opset
        location = model.location_.astype(np.float32)
        precision = model.precision_.astype(np.float32)
        centred = OnnxSub(operator.inputs[0], location, op_version=opv)
        product = OnnxMul(OnnxMatMul(centred, precision, op_version=opv), centred, op_version=opv)
        distance = OnnxReduceSumApi11(product, axes=[1], keepdims=1, op_version=opv)
        offset = np.array([-float(model.offset_)], dtype=np.float32)
        scores = OnnxSub(  # decision_function: -distance - offset_
            offset, distance, op_version=opv, output_names=[operator.outputs[1]]
        )
        inlier = OnnxGreaterOrEqual(scores, np.array([0.0], dtype=np.float32), op_version=opv)
        one, minus_one = np.array([1], dtype=np.int64), np.array([-1], dtype=np.int64)
        labels = OnnxReshape(
            OnnxWhere(inlier, one, minus_one, op_version=opv),
            minus_one,
            op_version=opv,
            output_names=[operator.outputs[0]],
        )
        scores.add_to(scope, container)
        labels.add_to(scope, container)

    update_registered_converter(
        EllipticEnvelope,
        "MlwizardEllipticEnvelope",
        shape,
        convert,
        parser=_outlier_parser,
    )


def _outlier_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    alias = "MlwizardEllipticEnvelope"
    operator = scope.declare_local_operator(alias, model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", Int64TensorType())
    scores = scope.declare_local_variable("scores", FloatTensorType())
    operator.outputs.append(label)
    operator.outputs.append(scores)
    return operator.outputs


def export_unsupervised(pipeline: Any, schema: Schema, sample: pd.DataFrame) -> bytes:
    """ONNX bytes for a fitted clustering or anomaly pipeline; ExportError if it cannot be."""
    from skl2onnx import convert_sklearn

    register_robust_distance()
    try:
        model = convert_sklearn(
            pipeline,
            initial_types=initial_types(schema),
            target_opset=TARGET_OPSET,
            # The identity-removal pass is quadratic in nodes: 50 isolation trees took 25 s in
            # it (of 25 s) on a busy 2-core machine; the graph runs the same without it.
            model_optim=False,
        )
    except Exception as exc:  # converters raise anything
        raise ExportError(_conversion_reason(exc)) from exc
    data = model.SerializeToString()
    try:
        session = make_session(data)
        names = [o.name for o in session.get_outputs()]
        if names[0] != "label" or len(names) != 2:
            raise ExportError(f"unexpected ONNX outputs {names}, expected label and scores")
        session.run(None, onnx_feed(sample.head(8), schema))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"exported model does not run in onnxruntime: {exc}"[:300]) from exc
    return data


def native_outputs(pipeline: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, second output) as the ONNX graph defines them, from the native pipeline."""
    model = pipeline[-1]
    labels = np.asarray(pipeline.predict(frame)).ravel()
    if hasattr(model, "predict_proba"):  # Gaussian mixture
        return labels, np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    if hasattr(model, "cluster_centers_"):  # k-means: distances to each centre
        return labels, np.asarray(pipeline.transform(frame), dtype=np.float64)
    return labels, np.asarray(pipeline.decision_function(frame), dtype=np.float64).reshape(-1, 1)


def check_parity(
    pipeline: Any, model: bytes, frame: pd.DataFrame, schema: Schema
) -> UnsupervisedParity:
    rows = len(frame)
    if rows == 0:
        return UnsupervisedParity(0, float("nan"), SCORE_TOLERANCE, 0.0, ok=False)
    outputs = list(predict_onnx(make_session(model), frame, schema).values())
    labels, second = native_outputs(pipeline, frame)
    onnx_labels = np.asarray(outputs[0]).ravel()
    onnx_second = np.asarray(outputs[1], dtype=np.float64).reshape(second.shape)
    agreement = float(np.mean(onnx_labels == labels))
    diff = float(np.max(np.abs(onnx_second - second)))
    tolerance = SCORE_TOLERANCE * (1.0 + float(np.max(np.abs(second))))
    ok = agreement >= LABEL_AGREEMENT and diff <= tolerance
    return UnsupervisedParity(rows, diff, tolerance, agreement, ok)
