"""One model folder of a bundle: `model.onnx`, `schema.json`, `metadata.json`, `samples.json`.

Everything the service, the bundle's own tests and its docs need about one model lives here,
in plain JSON, so a folder can be carried alone (the operations registry keeps them, and
`bundle.write_bundle` puts a champion and a challenger into a service).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlwizard.core.contract.schema import Schema
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.formatting import timestamp

MODEL_FILES = ("model.onnx", "schema.json", "metadata.json")
OPTIONAL_FILES = ("samples.json", "features.py")  # features.py: when the schema derives columns
MAX_CATEGORIES = 1000  # more distinct values than this: no unseen-category check for the column
SAMPLE_ROWS = 20
SENSITIVE = re.compile(
    r"(^|[^a-z])(sex|gender|race|ethnic\w*|religio\w*|age|birth\w*|dob|nationality|citizen\w*|"
    r"marital|disab\w*|pregnan\w*|zip|postcode|postal|income|salary|health|name|email|phone|"
    r"address|ssn)([^a-z]|$)",
    re.IGNORECASE,
)


def features(ctx: PhaseContext, schema: Schema) -> list[dict[str, str]]:
    """Each column a caller sends: its name, kind, and the semantic type its source column had
    (data phase). Columns features.py derives are not sent; the raw columns it reads are."""
    types = ctx.upstream["data"].metrics.get("types") or {}
    kinds = {f.name: f.kind for f in schema.features}
    out = []
    for name in schema.request_columns:
        raw = "numeric" if schema.raw_inputs.get(name) == "number" else "categorical"
        kind = kinds.get(name, raw)
        out.append({"name": name, "kind": kind, "type": types.get(name, kind)})
    return out


def domain(train_path: Path, schema: Schema) -> dict[str, Any]:
    """Per feature, what training saw: the categories (up to MAX_CATEGORIES) or the range."""
    names = [f.name for f in schema.features]
    table = pq.read_table(train_path, columns=names)
    result: dict[str, Any] = {}
    for feature in schema.features:
        column = table.column(feature.name)
        if feature.kind in ("datetime", "text"):  # future dates and new words are expected
            result[feature.name] = {}
        elif feature.kind == "numeric":
            numbers = pc.cast(column, pa.float64(), safe=False) if not _numeric(column) else column
            numbers = pc.drop_null(numbers)
            finite = pc.filter(numbers, pc.is_finite(numbers)) if len(numbers) else numbers
            bounds = pc.min_max(finite).as_py() if len(finite) else {"min": None, "max": None}
            result[feature.name] = {"min": bounds["min"], "max": bounds["max"]}
        else:
            values = pc.unique(pc.drop_null(column)).to_pylist()
            known = sorted({str(v) for v in values})
            result[feature.name] = {"categories": known if len(known) <= MAX_CATEGORIES else None}
    return result


def _numeric(column: pa.ChunkedArray) -> bool:
    return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)


def sensitive_columns(names: list[str]) -> list[str]:
    """Columns whose names suggest personal or protected attributes: a prompt to look."""
    return [n for n in names if SENSITIVE.search(n.replace("_", " "))]


def metadata(ctx: PhaseContext, schema: Schema, threshold: float | None) -> dict[str, Any]:
    """What GET /metadata answers: plain JSON, read by the service without mlwizard."""
    import onnxruntime

    model = ctx.upstream["model"]
    scores = model.metrics
    best = scores.get("best_model")
    data = ctx.upstream["data"]
    return {
        "name": ctx.config.deploy.service_name,
        "model": best,
        "model_version": model.fingerprint[:12],
        "data_version": data.fingerprint[:12],
        "task": schema.task,
        "target": schema.target,
        "features": features(ctx, schema),
        # Anomaly detection's label values only evaluated the model: it does not predict them.
        "classes": schema.classes if schema.task in ("binary", "multiclass") else None,
        "missing_token": schema.missing_token,
        "metrics": {
            "metric": scores.get("metric"),
            "test": scores.get("test"),
            "validation": (scores.get("validation") or {}).get(best),
            "baseline_validation": scores.get("baseline"),
        },
        # Which rows the served model was fitted on, and which model the test score is of.
        "training": scores.get("training"),
        "success_threshold": ctx.config.discovery.success_threshold,
        "decision_threshold": threshold,
        "excluded": schema.excluded,
        "derived": schema.derived,  # by features.py from the raw columns named
        "sensitive_columns": sensitive_columns([f.name for f in schema.features]),
        "parity": None,  # filled in once checked
        "created_at": timestamp(),
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
    }


def samples(
    rows: list[dict[str, Any]], served: list[dict[str, Any]], native: Any, labels: Any
) -> dict[str, Any]:
    """Sample rows with the trained pipeline's own outputs: the bundle's parity tests."""
    expected: list[dict[str, Any]] = []
    for i in range(len(rows)):
        if labels is None:
            expected.append({"prediction": float(native[i])})
        elif np.ndim(native) == 1:  # clustering, anomaly detection: the cluster id or the flag
            expected.append({"prediction": labels[i]})
        else:
            expected.append({"prediction": labels[i], "proba": [float(p) for p in native[i]]})
    return {"rows": rows, "expected": expected, "served": served}


def json_rows(table: pa.Table, schema: Schema, count: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first rows' features as a JSON client sends them (None for missing, finite numbers)."""
    rows = table.select(schema.request_columns).slice(0, count).to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not np.isfinite(value):
                row[key] = None
    return rows


def prediction_buckets(values: np.ndarray) -> list[float]:
    """Histogram buckets for predicted values: the deciles of the test predictions."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return [0.0]
    return sorted({float(q) for q in np.quantile(finite, np.linspace(0, 1, 11))})


def model_card_extras(ctx: PhaseContext) -> dict[str, Any]:
    """The model phase's error analysis (worst slices, importance) for the model card."""
    import json

    try:
        path = ctx.upstream_artifact("model", "evaluation")
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except (KeyError, OSError, ValueError):
        return {}
    analysis = evaluation.get("error_analysis") or {}
    return {
        "worst_slices": analysis.get("worst_slices") or [],
        "importance": analysis.get("permutation_importance") or {},
    }
