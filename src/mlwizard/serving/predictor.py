"""Predictions from `model.onnx` + `schema.json`, with numpy and onnxruntime only.

Inputs are prepared exactly as at training time: numerics become float32 with NaN for missing,
categoricals become `str(value)` with missing values (None, NaN) mapped to the schema's
`missing_token` (onnxruntime would silently read None as the string "None").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

_MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' missing markers, without pandas


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ in _MISSING_TYPES


def _to_float(value: Any) -> float:
    """One numeric cell; unparseable text becomes NaN, as `pd.to_numeric(errors="coerce")`."""
    if is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def numeric_column(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """float32 [N, 1], NaN for missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        column = values.astype(np.float32)
    else:
        column = np.array([_to_float(v) for v in values], dtype=np.float64).astype(np.float32)
    return column.reshape(-1, 1)


def categorical_column(values: Sequence[Any] | np.ndarray, missing_token: str) -> np.ndarray:
    """str [N, 1] (object array), missing values as `missing_token`."""
    if isinstance(values, np.ndarray):
        values = values.tolist()  # Python scalars, so str() reads as it did in training
    text = [missing_token if is_missing(v) else str(v) for v in values]
    return np.array(text, dtype=object).reshape(-1, 1)


def make_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """A session on `threads` cores whose threads do not spin while idle (shared CPUs)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: graph-optimizer notes are not for users
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class Predictor:
    """The model and its input contract. Thread-safe: onnxruntime sessions are."""

    def __init__(
        self,
        model_path: Path | str,
        schema_path: Path | str,
        threads: int = 1,
        threshold: float | None = None,
    ) -> None:
        """`threshold`: a binary model predicts the second class when its probability reaches
        this; None keeps the model's own label (the more probable class)."""
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
        self.task: str = schema["task"]
        self.target: str = schema["target"]
        self.features: list[dict[str, str]] = schema["features"]
        self.classes: list[Any] | None = schema.get("classes")
        self.missing_token: str = schema["missing_token"]
        self.session = make_session(Path(model_path), threads)
        self._inputs = self._check_inputs()
        self._outputs = [o.name for o in self.session.get_outputs()]
        expected = ["label", "probabilities"] if self.is_classifier else ["variable"]
        if self._outputs != expected:
            raise ValueError(f"model outputs are {self._outputs}, expected {expected}")
        if self.is_classifier and not self.classes:
            raise ValueError("schema.json: a classifier needs its `classes`")
        if threshold is not None and len(self.classes or []) != 2:
            raise ValueError("a decision threshold needs a binary classifier")
        self.threshold = threshold

    @classmethod
    def from_folder(cls, folder: Path | str, threads: int = 1) -> Predictor:
        """model.onnx and schema.json in `folder`, and the decision threshold in metadata.json."""
        folder = Path(folder)
        metadata_path = folder / "metadata.json"
        metadata = json.loads(metadata_path.read_text("utf-8")) if metadata_path.exists() else {}
        threshold = metadata.get("decision_threshold")
        return cls(folder / "model.onnx", folder / "schema.json", threads, threshold)

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def _check_inputs(self) -> list[dict[str, str]]:
        """The features the model reads, checked against the model's declared inputs."""
        declared = {i.name: i.type for i in self.session.get_inputs()}
        by_input = {f["input"]: f for f in self.features}
        unknown = sorted(set(declared) - set(by_input))
        if unknown:
            raise ValueError(f"model inputs not in schema.json: {', '.join(unknown)}")
        for name, kind in declared.items():
            expected = "tensor(float)" if by_input[name]["kind"] == "numeric" else "tensor(string)"
            if kind != expected:
                raise ValueError(f"model input {name} is {kind}, schema.json implies {expected}")
        return [f for f in self.features if f["input"] in declared]

    def feed(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
        """The ONNX feed from columns keyed by the data's column names."""
        feed = {}
        for feature in self._inputs:
            values = columns[feature["name"]]
            if feature["kind"] == "numeric":
                feed[feature["input"]] = numeric_column(values)
            else:
                feed[feature["input"]] = categorical_column(values, self.missing_token)
        return feed

    def run(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw outputs: (class ids, probabilities [N, C]) or (values, None)."""
        outputs = self.session.run(None, self.feed(columns))
        if not self.is_classifier:
            return np.asarray(outputs[0], dtype=np.float32).ravel(), None
        proba = np.asarray(outputs[1], dtype=np.float32)
        if proba.shape[1] != len(self.classes or []):
            raise ValueError(
                f"model gives {proba.shape[1]} probabilities per row, schema.json "
                f"has {len(self.classes or [])} classes"
            )
        return np.asarray(outputs[0]).ravel(), proba

    def predict_columns(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, Any]:
        """{"prediction": [label or value per row], "proba": float32 [N, C] or None}."""
        values, proba = self.run(columns)
        if not self.is_classifier:
            return {"prediction": values.tolist(), "proba": None}
        assert proba is not None  # a classifier always outputs probabilities
        if self.threshold is not None:
            values = (proba[:, 1] >= self.threshold).astype(np.int64)
        classes = np.asarray(self.classes, dtype=object)
        return {"prediction": classes[values].tolist(), "proba": proba}

    def predict_records(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One {"prediction": ..., "proba": {class: p}} per row; absent keys count as missing."""
        columns = {name: [row.get(name) for row in rows] for name in self.feature_names}
        return self.to_records(self.predict_columns(columns))

    def to_records(self, result: Mapping[str, Any]) -> list[dict[str, Any]]:
        if result["proba"] is None:
            return [{"prediction": value} for value in result["prediction"]]
        keys = [str(c) for c in self.classes or []]
        return [
            {"prediction": label, "proba": dict(zip(keys, row, strict=True))}
            for label, row in zip(result["prediction"], result["proba"].tolist(), strict=True)
        ]
