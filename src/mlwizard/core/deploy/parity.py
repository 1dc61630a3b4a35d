"""Parity: the serving predictor on raw rows against the trained pipeline on `feature_frame` rows.

That covers the ONNX conversion and the serving-side input preparation in one check.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.parity import PROBA_TOLERANCE, REGRESSION_TOLERANCE  # one home
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.serving import predictor as serving_predictor

if TYPE_CHECKING:
    from typing_extensions import Buffer

# The serving runtime is a real module of mlwizard; every bundle gets a copy of its file.
SERVING_RUNTIME = Path(serving_predictor.__file__)
SERVING_FEATURES = SERVING_RUNTIME.with_name("userfeatures.py")  # it loads this file beside it
PARITY_MAX_ROWS = 50_000  # enough rows to catch a bad conversion; bounded time on big splits
_counter = itertools.count()


class _NoBytecodeLoader(importlib.machinery.SourceFileLoader):
    """Imports a file without writing `__pycache__` into the generated service folder."""

    def set_data(self, path: str, data: Buffer, *, _mode: int = 0o666) -> None:
        return None


def load_predictor_module(path: Path) -> ModuleType:
    """Import a generated `predictor.py` by path, under a private module name."""
    name = f"_mlwizard_service_predictor_{next(_counter)}"
    loader = _NoBytecodeLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look modules up while executing
    try:
        loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def load_model_predictor(model_dir: Path, runtime: Path = SERVING_RUNTIME, threads: int = 1) -> Any:
    """The serving `Predictor` (the file at `runtime`) on one model folder's files."""
    module = load_predictor_module(runtime)
    return module.Predictor.from_folder(model_dir, threads)


@dataclass(frozen=True)
class ServiceParity:
    rows: int
    max_abs_diff: float
    tolerance: float
    label_agreement: float | None  # classifiers only

    @property
    def passed(self) -> bool:
        return self.rows > 0 and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "max_abs_diff": None if np.isnan(self.max_abs_diff) else self.max_abs_diff,
            "tolerance": self.tolerance,
            "label_agreement": self.label_agreement,
            "passed": self.passed,
        }


def native_outputs(pipeline: Any, frame: Any, schema: Schema, threshold: float | None) -> Any:
    """(values or probabilities [N, C], labels or None) from the trained pipeline."""
    if schema.task in ("clustering", "anomaly"):  # cluster ids; anomaly scores and flags
        from mlwizard.core.deploy import unsupervised

        return unsupervised.native_outputs(pipeline, frame, schema)
    if schema.task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=np.float64).ravel(), None
    classes = schema.classes or []
    proba = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    if threshold is not None:  # the model phase's decision threshold, as served
        ids = (proba[:, 1] >= threshold).astype(np.int64)
    else:
        ids = np.asarray(pipeline.predict(frame)).ravel()  # CatBoost's predict is [N, 1]
    return proba, [classes[int(i)] for i in ids]


def model_parity(model_dir: Path, pipeline: Any, schema: Schema, test_path: Path) -> ServiceParity:
    """The serving predictor on `model_dir` on raw test rows vs the native pipeline.

    The raw rows are plain Python values (None for missing), as a JSON client would send them;
    the pipeline's side reads the split as the model phase did (pandas, `feature_frame`).
    """
    import pandas as pd

    try:
        predictor = load_model_predictor(model_dir)
    except Exception as exc:  # onnxruntime and the contract checks raise many kinds
        raise QualityGateError(f"the generated service cannot load its model: {exc}") from exc
    rows = pq.read_table(test_path).slice(0, PARITY_MAX_ROWS).to_pylist()
    if not rows:
        return ServiceParity(0, float("nan"), PROBA_TOLERANCE, None)
    frame = feature_frame(pd.read_parquet(test_path).head(PARITY_MAX_ROWS), schema)
    return compare(predictor, predictor.predict_records(rows), pipeline, frame, schema)


def compare(
    predictor: Any, served: list[dict[str, Any]], pipeline: Any, frame: Any, schema: Schema
) -> ServiceParity:
    native, labels = native_outputs(pipeline, frame, schema, predictor.threshold)
    if schema.task in ("clustering", "anomaly"):
        from mlwizard.core.deploy import unsupervised

        diff, tolerance, agreement = unsupervised.compare(served, native, labels, schema)
        return ServiceParity(len(served), diff, tolerance, agreement)
    if schema.task == "regression":
        values = np.array([r["prediction"] for r in served], dtype=np.float64)
        tolerance = REGRESSION_TOLERANCE * (1.0 + float(np.max(np.abs(native))))
        return ServiceParity(len(served), max_diff(native, values), tolerance, None)
    classes = schema.classes or []
    proba = np.array([[r["proba"][str(c)] for c in classes] for r in served], dtype=np.float64)
    agreement = float(np.mean([r["prediction"] == n for r, n in zip(served, labels, strict=True)]))
    return ServiceParity(len(served), max_diff(native, proba), PROBA_TOLERANCE, agreement)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def gate(parity: ServiceParity, task: str) -> list[str]:
    if parity.passed:
        return []
    if parity.rows == 0:
        return ["the test split has no rows, so the service's parity could not be checked"]
    what = "values" if task == "regression" else "class probabilities"
    return [
        f"the generated service's {what} differ from the trained pipeline's by "
        f"{parity.max_abs_diff:.3g} (tolerance {parity.tolerance:.3g}) on {parity.rows} test "
        "rows; the model cannot be served as trained"
    ]
