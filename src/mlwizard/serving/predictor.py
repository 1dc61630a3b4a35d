"""Predictions from `model.onnx` + `schema.json`, with numpy and onnxruntime only.

Inputs are prepared exactly as at training time: numerics become float32 with NaN for missing,
categoricals become `str(value)` with missing values (None, NaN) mapped to the schema's
`missing_token` (onnxruntime would silently read None as the string "None"). Datetimes are
float32 seconds since 1970-01-01 UTC (numbers, or ISO 8601 strings such as
"2024-05-01T13:45:00"); free text is lowercased; the graph derives the rest.

`metadata.json` may carry the training `domain` of each feature (categories seen, numeric range):
rows outside it are still scored, with a warning per row (`Predictor.domain_warnings`).

A model trained on columns the project's `features.py` derives has that file in its folder:
callers send the raw columns, and the predictor derives the rest first (`userfeatures.py`, the
file beside this one, loaded by path so a bundle uses its own copy).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort

_MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' missing markers, without pandas
CLASSIFIER_TASKS = ("binary", "multiclass")
# Clustering models output `label` (the cluster id) and distances or probabilities; anomaly
# models `label` (1 normal, -1 anomaly) and `scores` (higher = more normal, as scikit-learn's).
UNSUPERVISED_TASKS = ("clustering", "anomaly")


class _NoBytecode(importlib.machinery.SourceFileLoader):
    """Loads a file without writing `__pycache__` (a bundle folder stays as generated)."""

    def set_data(self, *args: Any, **kwargs: Any) -> None:
        return None


def _sibling(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"{name}.py")
    loader = _NoBytecode(f"_{name}_{id(path)}", str(path))
    spec = importlib.util.spec_from_file_location(loader.name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


userfeatures = _sibling("userfeatures")
FeaturesError: type[ValueError] = userfeatures.FeaturesError


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


def datetime_column(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """float32 [N, 1] seconds since 1970 (UTC); ISO 8601 strings are parsed, NaN for missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float32).reshape(-1, 1)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        seconds = values.astype("datetime64[us]").astype(np.int64) / 1e6
        return np.where(np.isnat(values), np.nan, seconds).astype(np.float32).reshape(-1, 1)
    return (
        np.array([_seconds(v) for v in values], dtype=np.float64).astype(np.float32).reshape(-1, 1)
    )


def _seconds(value: Any) -> float:
    if is_missing(value) or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("Z"):
        text = text[:-1]
    if len(text) > 6 and text[-6] in "+-" and text[-3] == ":":  # an offset: +02:00
        sign = 1 if text[-6] == "+" else -1
        offset = sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)
        text = text[:-6]
    else:
        offset = 0
    try:
        stamp = np.datetime64(text.replace(" ", "T"), "us")
    except ValueError:
        return math.nan
    return float(stamp.astype(np.int64)) / 1e6 - offset


def text_column(values: Sequence[Any] | np.ndarray, missing_token: str) -> np.ndarray:
    """Free text: str [N, 1] lowercased, missing values as `missing_token`."""
    column = categorical_column(values, missing_token).ravel()
    return np.array([v.lower() for v in column], dtype=object).reshape(-1, 1)


def categorical_column(values: Sequence[Any] | np.ndarray, missing_token: str) -> np.ndarray:
    """str [N, 1] (object array), missing values as `missing_token`."""
    if isinstance(values, np.ndarray):
        values = values.tolist()  # Python scalars, so str() reads as it did in training
    text = [missing_token if is_missing(v) else str(v) for v in values]
    return np.array(text, dtype=object).reshape(-1, 1)


def make_session(
    model_path: Path, threads: int = 1, providers: Sequence[str] | None = None
) -> ort.InferenceSession:
    """A session on `threads` cores whose threads do not spin while idle (shared CPUs).

    `providers`: onnxruntime execution providers in order of preference (CUDA first for a GPU
    image); only the available ones are used, the CPU always last."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: graph-optimizer notes are not for users
    available = set(ort.get_available_providers())
    chosen = [p for p in providers or () if p in available and p != "CPUExecutionProvider"]
    return ort.InferenceSession(
        str(model_path), options, providers=[*chosen, "CPUExecutionProvider"]
    )


UNKNOWN_CATEGORY, OUT_OF_RANGE = "unknown_category", "out_of_range"


class Flag(NamedTuple):
    """One warning about one value of a row: still scored, but unlike anything in training."""

    feature: str
    kind: str  # UNKNOWN_CATEGORY or OUT_OF_RANGE
    message: str


class Domain:
    """What training saw of each feature: categories (if few enough to list) and numeric ranges."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        self.categories: dict[str, frozenset[str]] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        for name, spec in (raw or {}).items():
            if spec.get("categories") is not None:
                self.categories[name] = frozenset(str(c) for c in spec["categories"])
            if spec.get("min") is not None and spec.get("max") is not None:
                self.ranges[name] = (float(spec["min"]), float(spec["max"]))

    def __bool__(self) -> bool:
        return bool(self.categories or self.ranges)

    def check(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray], rows: int
    ) -> list[list[Flag]]:
        """Per row, a `Flag` per unseen category or out-of-range number (missing is neither)."""
        flags: list[list[Flag]] = [[] for _ in range(rows)]
        for name, known in self.categories.items():
            for index, value in enumerate(columns.get(name, ())):
                if value is None or (value.__class__ is str and value in known):
                    continue  # the common cases first: this runs on every request
                if not is_missing(value) and str(value) not in known:
                    text = f"{name}: category {str(value)!r} not seen in training"
                    flags[index].append(Flag(name, UNKNOWN_CATEGORY, text))
        for name, (low, high) in self.ranges.items():
            for index, value in enumerate(columns.get(name, ())):
                if value is None:
                    continue
                number = value if value.__class__ in (float, int) else _to_float(value)
                if number != number or low <= number <= high:  # NaN (missing) or in range
                    continue
                text = f"{name}: {number:g} outside the training range [{low:g}, {high:g}]"
                flags[index].append(Flag(name, OUT_OF_RANGE, text))
        return flags


class Predictor:
    """The model and its input contract. Thread-safe: onnxruntime sessions are."""

    def __init__(
        self,
        model_path: Path | str,
        schema_path: Path | str,
        threads: int = 1,
        threshold: float | None = None,
        domain: Mapping[str, Any] | None = None,
        providers: Sequence[str] | None = None,
        features_path: Path | str | None = None,
    ) -> None:
        """`threshold`: a binary model predicts the second class when its probability reaches
        this; None keeps the model's own label (the more probable class). `domain`: the
        training domain per feature (see `Domain`). `features_path`: the project's
        `features.py`, needed when schema.json lists derived features."""
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
        self.task: str = schema["task"]
        self.target: str = schema["target"]
        self.features: list[dict[str, str]] = schema["features"]
        self.request_features: list[dict[str, str]] = userfeatures.request_features(schema)
        self.derived: dict[str, list[str]] = schema.get("derived") or {}
        self.raw_inputs: dict[str, str] = schema.get("raw_inputs") or {}
        self.derive = userfeatures.load(Path(features_path or "")) if self.derived else None
        if self.derived and self.derive is None:
            raise ValueError(f"schema.json derives {', '.join(self.derived)}: features.py missing")
        self.classes: list[Any] | None = schema.get("classes")
        self.missing_token: str = schema["missing_token"]
        self.session = make_session(Path(model_path), threads, providers)
        self.domain = Domain(domain)
        self._inputs = self._check_inputs()
        self._outputs = [o.name for o in self.session.get_outputs()]
        expected = ["label", "probabilities"] if self.is_classifier else ["variable"]
        if self.task in UNSUPERVISED_TASKS:  # label, then distances / probabilities / scores
            expected = (
                ["label", *self._outputs[1:2]] if len(self._outputs) == 2 else ["label", "scores"]
            )
        if self._outputs != expected:
            raise ValueError(f"model outputs are {self._outputs}, expected {expected}")
        if self.is_classifier and not self.classes:
            raise ValueError("schema.json: a classifier needs its `classes`")
        if threshold is not None and len(self.classes or []) != 2:
            raise ValueError("a decision threshold needs a binary classifier")
        self.threshold = threshold

    @classmethod
    def from_folder(
        cls, folder: Path | str, threads: int = 1, providers: Sequence[str] | None = None
    ) -> Predictor:
        """model.onnx and schema.json in `folder`; the decision threshold and the training
        domain in metadata.json."""
        folder = Path(folder)
        metadata_path = folder / "metadata.json"
        metadata = json.loads(metadata_path.read_text("utf-8")) if metadata_path.exists() else {}
        threshold = metadata.get("decision_threshold")
        return cls(
            folder / "model.onnx",
            folder / "schema.json",
            threads,
            threshold,
            metadata.get("domain"),
            providers,
            folder / userfeatures.FEATURES_FILE,
        )

    @property
    def is_classifier(self) -> bool:
        return self.task in CLASSIFIER_TASKS

    @property
    def feature_names(self) -> list[str]:
        """The columns callers send (raw: what features.py derives is not among them)."""
        return [f["name"] for f in self.request_features]

    def _check_inputs(self) -> list[dict[str, str]]:
        """The features the model reads, checked against the model's declared inputs."""
        declared = {i.name: i.type for i in self.session.get_inputs()}
        by_input = {f["input"]: f for f in self.features}
        unknown = sorted(set(declared) - set(by_input))
        if unknown:
            raise ValueError(f"model inputs not in schema.json: {', '.join(unknown)}")
        for name, kind in declared.items():
            float_kind = by_input[name]["kind"] in ("numeric", "datetime")
            expected = "tensor(float)" if float_kind else "tensor(string)"
            if kind != expected:
                raise ValueError(f"model input {name} is {kind}, schema.json implies {expected}")
        return [f for f in self.features if f["input"] in declared]

    def feed(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
        """The ONNX feed from columns keyed by the data's column names."""
        if self.derive is not None:
            columns = self.with_derived(columns)
        feed = {}
        for feature in self._inputs:
            values = columns[feature["name"]]
            if feature["kind"] == "numeric":
                feed[feature["input"]] = numeric_column(values)
            elif feature["kind"] == "datetime":
                feed[feature["input"]] = datetime_column(values)
            elif feature["kind"] == "text":
                feed[feature["input"]] = text_column(values, self.missing_token)
            else:
                feed[feature["input"]] = categorical_column(values, self.missing_token)
        return feed

    def with_derived(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray]
    ) -> dict[str, Sequence[Any] | np.ndarray]:
        """`columns` and the columns features.py derives from them (FeaturesError if it fails)."""
        rows = len(next(iter(columns.values()))) if columns else 0
        raw = {name: columns.get(name, [None] * rows) for name in self.raw_inputs}
        derived = userfeatures.apply(
            self.derive, userfeatures.raw_columns(raw, self.raw_inputs), rows
        )
        lost = [name for name in self.derived if name not in derived]
        if lost:
            raise FeaturesError(
                f"{userfeatures.FEATURES_FILE}: derive() no longer returns {', '.join(lost)}, "
                "which the model was trained on; restore it or retrain"
            )
        return {**columns, **{name: derived[name] for name in self.derived}}

    def run(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw outputs: (class ids, probabilities [N, C]) or (values, None)."""
        outputs = self.session.run(None, self.feed(columns))
        if self.task in UNSUPERVISED_TASKS:  # (cluster ids or ±1 flags, scores)
            return np.asarray(outputs[0]).ravel(), np.asarray(outputs[1], dtype=np.float32)
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
        if self.task == "clustering":
            return {"prediction": values.tolist(), "proba": None, "cluster": values.tolist()}
        if self.task == "anomaly":
            assert proba is not None
            flags = (values == -1).tolist()
            scores = (-proba.reshape(-1)).tolist()  # higher = more unusual
            return {"prediction": flags, "proba": None, "anomaly": flags, "anomaly_score": scores}
        if not self.is_classifier:
            return {"prediction": values.tolist(), "proba": None}
        assert proba is not None  # a classifier's run() gives its probabilities
        if self.threshold is not None:
            values = (proba[:, 1] >= self.threshold).astype(np.int64)
        classes = np.asarray(self.classes, dtype=object)
        return {"prediction": classes[values].tolist(), "proba": proba}

    def predict_records(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One {"prediction": ..., "proba": {class: p}} per row; absent keys count as missing."""
        columns = {name: [row.get(name) for row in rows] for name in self.feature_names}
        return self.to_records(self.predict_columns(columns))

    def domain_flags(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray], rows: int
    ) -> list[list[Flag]]:
        """See `Domain.check`: a flag per unseen category or out-of-range number, per row."""
        return self.domain.check(columns, rows)

    @staticmethod
    def finite_rows(result: Mapping[str, Any]) -> list[bool]:
        """Per row, whether its scores are all finite (float32 overflow gives NaN or inf)."""
        if result["proba"] is None:
            finite = np.isfinite(np.asarray(result["prediction"], dtype=np.float64))
        else:
            finite = np.isfinite(result["proba"]).all(axis=1)
        return [True] * len(finite) if finite.all() else finite.tolist()

    def to_records(self, result: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.task in UNSUPERVISED_TASKS:
            keys = [k for k in ("cluster", "anomaly", "anomaly_score") if k in result]
            return [
                {"prediction": value, **{k: result[k][i] for k in keys}}
                for i, value in enumerate(result["prediction"])
            ]
        if result["proba"] is None:
            return [{"prediction": value} for value in result["prediction"]]
        keys = [str(c) for c in self.classes or []]
        return [
            {"prediction": label, "proba": dict(zip(keys, row, strict=True))}
            for label, row in zip(result["prediction"], result["proba"].tolist(), strict=True)
        ]
