"""Export fitted pipelines to ONNX, with fixed names so identical models give identical bytes.

Conversions can be silently wrong (shared/ONNX_NOTES.md), so no export is trusted without a
parity check on every split (`parity.check_export`). The graph takes one input per feature,
named `Feature.input`: float32 [N, 1] for numerics (NaN = missing), string [N, 1] for
categoricals (missing = the schema's token). Classifiers output `label` int64 [N] and
`probabilities` float [N, C]; regressors output `variable` float [N, 1].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from mlwizard.core.contract.schema import FLOAT_KINDS, Schema
from mlwizard.core.export import trees
from mlwizard.core.kernel.errors import MlwizardError

# Pinned so a model exported today loads in the service's (possibly older) onnxruntime.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
GRAPH_NAME = "mlwizard"
CLASSIFIER_OUTPUTS = ("label", "probabilities")
REGRESSOR_OUTPUTS = ("variable",)


class ExportError(MlwizardError):
    """The pipeline could not be turned into a working ONNX model; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def initial_types(schema: Schema) -> list[tuple[str, Any]]:
    """One ONNX input per feature, in schema order."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (f.input, (FloatTensorType if f.kind in FLOAT_KINDS else StringTensorType)([None, 1]))
        for f in schema.features
    ]


def export_pipeline(pipeline: Pipeline, schema: Schema, sample: pd.DataFrame) -> bytes:
    """Convert a fitted pipeline (built on `feature_frame` columns) to ONNX bytes.

    `sample` (a few `feature_frame` rows) is run through the exported model, so a graph that
    converts but cannot load or run in onnxruntime fails here, not in the service.
    """
    from skl2onnx import convert_sklearn

    from mlwizard.core.export import catboost_onnx, features_graph, target_encoding

    voting = _voting(pipeline)
    if voting is not None:  # each member converted on its own, the graphs then composed
        members = [export_pipeline(member, schema, sample) for member in voting.estimators_]
        return export_ensemble(members, voting.weights, schema, sample)
    trees.align_thresholds(pipeline)  # in place; predictions on float32 inputs unchanged
    if catboost_onnx.contains_catboost(pipeline):
        catboost_onnx.register()
    features_graph.register()
    target_encoding.register()
    classifier = is_classifier(pipeline)
    if classifier:
        _check_classes(pipeline, schema)
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    skewed = isinstance(pipeline, features_graph.SkewedTarget)
    try:
        model = convert_sklearn(
            pipeline.plain() if skewed else pipeline,
            initial_types=initial_types(schema),
            target_opset=TARGET_OPSET,
            options=options,
        )
    except Exception as exc:  # converters raise anything from KeyError to RuntimeError
        raise ExportError(_conversion_reason(exc)) from exc
    if skewed:  # the log-scale prediction mapped back, inside the graph
        model = features_graph.append_inverse(model)
    return _runnable(_normalised(model), classifier, schema, sample)


def export_ensemble(
    members: list[bytes], weights: Any, schema: Schema, sample: pd.DataFrame
) -> bytes:
    """The ensemble of `members` (their `export_pipeline` bytes) with `weights` (None: equal)
    as one ONNX model, composed from the members' graphs (`ensemble_graph`): the same bytes as
    `export_pipeline` gives for the voting pipeline over the same members."""
    from mlwizard.core.export.ensemble_graph import CompositionError, compose

    classifier = schema.task != "regression"
    averaged = CLASSIFIER_OUTPUTS[1] if classifier else REGRESSOR_OUTPUTS[0]
    listed = None if weights is None else [float(w) for w in weights]
    try:
        model = compose(members, listed, averaged)
    except CompositionError as exc:
        raise ExportError(f"ensemble graph not composed: {exc}") from exc
    return _runnable(_normalised(model), classifier, schema, sample)


def _voting(pipeline: Pipeline) -> Any:
    """The voting model of an ensemble pipeline (`model.ensemble.assemble`), else None."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    final = pipeline.steps[-1][1] if len(pipeline.steps) == 1 else None
    return final if isinstance(final, VotingClassifier | VotingRegressor) else None


def _runnable(data: bytes, classifier: bool, schema: Schema, sample: pd.DataFrame) -> bytes:
    """`data`, once it loads in onnxruntime, has the expected outputs and runs on `sample`."""
    expected = CLASSIFIER_OUTPUTS if classifier else REGRESSOR_OUTPUTS
    try:
        session = make_session(data)
        outputs = tuple(o.name for o in session.get_outputs())
        if outputs != expected:
            raise ExportError(f"unexpected ONNX outputs {outputs}, expected {expected}")
        session.run(None, onnx_feed(sample.head(8), schema))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"exported model does not run in onnxruntime: {_short(exc)}") from exc
    return data


def _normalised(model: Any) -> bytes:
    """Serialized with fixed names and a fixed order: skl2onnx names the graph with a random
    UUID, and lists the opsets it used in an order that varies from process to process (about
    one conversion in five put "" before "ai.onnx.ml" here), so identical models would give
    different bytes."""
    model.graph.name = GRAPH_NAME
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return bytes(model.SerializeToString(deterministic=True))


def make_session(model: bytes | Path, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session that uses `threads` cores and does not spin when idle.

    Spinning threads on shared cores slowed a whole 2-core run fivefold (ONNX_NOTES).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_feed(frame: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """Model inputs from a `feature_frame` output.

    Missing strings are mapped to the token again: onnxruntime would otherwise read None as the
    string "None" without complaint (ONNX_NOTES).
    """
    feed: dict[str, np.ndarray] = {}
    for feature in schema.features:
        column = frame[feature.input]
        if feature.kind in FLOAT_KINDS:
            values = column.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            values = column.astype(object).where(column.notna(), schema.missing_token)
            values = values.astype(str).to_numpy(dtype=object)
        feed[feature.input] = values.reshape(-1, 1)
    return feed


def predict_onnx(
    session: ort.InferenceSession, frame: pd.DataFrame, schema: Schema
) -> dict[str, np.ndarray]:
    """Run the model on a `feature_frame`; returns outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feed(frame, schema)), strict=True))


def _check_classes(pipeline: Pipeline, schema: Schema) -> None:
    """The service maps probability columns to `schema.classes` by index; they must line up."""
    n_classes = len(schema.classes or [])
    learned = list(getattr(pipeline, "classes_", []))
    if learned != list(range(n_classes)):
        raise ExportError(
            f"model learned classes {learned[:10]} but the schema has {n_classes}; "
            "every class must appear in the training split"
        )


def _conversion_reason(exc: Exception) -> str:
    missing = re.search(r"for type '<class '[\w.]*?(\w+)'>'", str(exc))
    if missing and type(exc).__name__ in {"MissingShapeCalculator", "MissingConverter"}:
        return f"no ONNX converter for {missing.group(1)} (skl2onnx)"
    return f"ONNX conversion failed: {_short(exc)}"


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
