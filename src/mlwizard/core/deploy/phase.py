"""Deploy: generate a self-contained model service and prove it predicts what the model does.

The service folder (model.onnx, schema.json, metadata.json, predictor.py, app.py, requirements,
Dockerfile, prometheus.yml, README) is staged beside its final place and renamed into place
whole. Before that, the staged `predictor.py` (the code the service runs) is fed the test
split's raw rows and compared with the native pipeline on `feature_frame` rows: that covers the
ONNX conversion and the serving-side input preparation in one check.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.deploy.batch import load_predictor
from mlwizard.core.export.parity import Parity, compare_probabilities, compare_values
from mlwizard.core.kernel import atomic, templates
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.serving import predictor as serving_predictor

SERVICE_TEMPLATES = "service"
# The serving runtime is a real module of mlwizard; the bundle gets a copy of its file.
SERVING_RUNTIME = Path(serving_predictor.__file__)
PARITY_MAX_ROWS = 50_000  # enough rows to catch a bad conversion; bounded time on big splits


def run(ctx: PhaseContext) -> PhaseResult:
    schema_path = ctx.require("data", "schema")
    test_path = ctx.require("data", "test")
    model_path = ctx.require("model", "onnx")
    pipeline_path = ctx.require("model", "pipeline")
    schema = Schema.load(schema_path)
    example = pq.read_table(test_path).slice(0, 1).to_pylist()
    service = ctx.artifact("service")

    with staged_folder(service) as staging:
        _write_service(staging, ctx, schema, example)
        shutil.copyfile(model_path, staging / "model.onnx")
        shutil.copyfile(schema_path, staging / "schema.json")
        ctx.check_cancelled()
        metadata = _metadata(ctx, schema)
        atomic.write_json(staging / "metadata.json", metadata)  # the predictor reads it too
        parity = service_parity(staging, pipeline_path, schema, test_path)
        metadata["parity"] = {**parity.to_dict(), "passed": parity.ok}
        atomic.write_json(staging / "metadata.json", metadata)
        ctx.check_cancelled()

    label = "probabilities" if schema.task != "regression" else "values"
    ctx.message(
        f"service written to {ctx.workspace.relative(service)}; parity on {parity.rows} test rows: "
        f"max diff {parity.max_abs_diff:.2g} in {label}"
        + (
            f", labels agree on {parity.label_agreement:.2%}"
            if parity.label_agreement is not None
            else ""
        )
    )
    metrics: dict[str, Any] = {
        "onnx_max_abs_diff": parity.max_abs_diff,
        "parity_tolerance": parity.tolerance,
        "parity_rows": parity.rows,
        "service_name": ctx.config.deploy.service_name,
        "port": ctx.config.deploy.port,
    }
    if parity.label_agreement is not None:
        metrics["label_agreement"] = parity.label_agreement
    outputs = {
        "service": service,
        "onnx": service / "model.onnx",
        "dockerfile": service / "Dockerfile",
        "prometheus": service / "prometheus.yml",
        "metadata": service / "metadata.json",
    }
    return PhaseResult(metrics=metrics, outputs=outputs, gate_failures=_gate(parity, schema))


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty folder beside `target`; it replaces `target` only if the block succeeds.

    Two renames swap it in (Linux has no portable atomic folder exchange): a reader sees the old
    service or the new one, each whole, or for an instant none; never a mix.
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for leftover in parent.glob(f".{target.name}.*"):  # from a run killed mid-way
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it 0700; the service runs as another user
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / target.name)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_service(
    folder: Path, ctx: PhaseContext, schema: Schema, rows: list[dict[str, Any]]
) -> None:
    """Copy the plain files of the service template; render the `.j2` ones."""
    values = _template_values(ctx, schema, rows)
    source = templates.templates_dir() / SERVICE_TEMPLATES
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix == ".pyc":
            continue
        if path.suffix == ".j2":
            text = templates.render(f"{SERVICE_TEMPLATES}/{path.name}", **values)
            (folder / path.stem).write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, folder / path.name)
    shutil.copyfile(SERVING_RUNTIME, folder / SERVING_RUNTIME.name)


def _template_values(
    ctx: PhaseContext, schema: Schema, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    import onnxruntime

    name = ctx.config.deploy.service_name
    return {
        "service_name": name,
        "host": service_host(name),
        "port": ctx.config.deploy.port,
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "onnxruntime_version": onnxruntime.__version__,
        "task": schema.task,
        "target": schema.target,
        "features": [
            {**f, "send_as": _send_as(f["kind"], f["type"])} for f in _features(ctx, schema)
        ],
        "classes": [str(c) for c in schema.classes or []],
        "created_at": timestamp(),
        "example": _shell_quoted_example(schema, rows),
    }


def _features(ctx: PhaseContext, schema: Schema) -> list[dict[str, str]]:
    """Each feature's name, kind, and the semantic type its source column had (data phase)."""
    types = ctx.upstream["data"].metrics.get("types") or {}
    return [
        {"name": f.name, "kind": f.kind, "type": types.get(f.name, f.kind)} for f in schema.features
    ]


def _send_as(kind: str, column_type: str) -> str:
    """How a client writes a feature's value: the value the model saw, not the raw column's."""
    if kind == "numeric":
        return "number: seconds since 1970-01-01 UTC" if column_type == "datetime" else "number"
    return '"true" or "false"' if column_type == "boolean" else "string"


def service_host(name: str) -> str:
    """A DNS-safe form of the service name, for image tags, hosts and scrape jobs."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model-service"


def _shell_quoted_example(schema: Schema, rows: list[dict[str, Any]]) -> str:
    """A one-row request from the first test row, ready to sit inside shell single quotes."""
    first = rows[0] if rows else {}
    row = {f.name: _json_value(first.get(f.name)) for f in schema.features}
    return json.dumps({"rows": [row]}, default=str).replace("'", "'\\''")


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and np.isnan(value) else value


def service_parity(service: Path, pipeline_path: Path, schema: Schema, test_path: Path) -> Parity:
    """The service's predictor on raw rows vs the native pipeline on `feature_frame` rows.

    The raw rows are plain Python values (None for missing), as a JSON client would send them;
    the pipeline's side reads the split as the model phase did (pandas, `feature_frame`).
    """
    import joblib
    import pandas as pd

    try:
        predictor = load_predictor(service)
    except Exception as exc:  # onnxruntime and the contract checks raise many kinds
        raise QualityGateError(f"the generated service cannot load its model: {exc}") from exc
    rows = pq.read_table(test_path).slice(0, PARITY_MAX_ROWS).to_pylist()
    if not rows:
        return compare_probabilities(np.zeros((0, 0)), np.zeros((0, 0)))
    pipeline = joblib.load(pipeline_path)
    frame = feature_frame(pd.read_parquet(test_path).head(PARITY_MAX_ROWS), schema)
    served = predictor.predict_records(rows)
    if schema.task == "regression":
        values = np.array([r["prediction"] for r in served], dtype=np.float64)
        return compare_values(pipeline.predict(frame), values)
    classes = schema.classes or []
    native_proba = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    proba = np.array([[r["proba"][str(c)] for c in classes] for r in served], dtype=np.float64)
    if predictor.threshold is not None:  # the model phase's decision threshold, as served
        ids = (native_proba[:, 1] >= predictor.threshold).astype(np.int64)
    else:
        ids = np.asarray(pipeline.predict(frame)).ravel()  # CatBoost's predict is [N, 1]
    labels = [classes[int(i)] for i in ids]
    same = np.array([r["prediction"] == n for r, n in zip(served, labels, strict=True)])
    return compare_probabilities(native_proba, proba, same)


def _gate(parity: Parity, schema: Schema) -> list[str]:
    if parity.ok:
        return []
    if parity.rows == 0:
        return ["the test split has no rows, so the service's parity could not be checked"]
    what = "values" if schema.task == "regression" else "class probabilities"
    return [
        f"the generated service's {what} differ from the trained pipeline's by "
        f"{parity.max_abs_diff:.3g} (tolerance {parity.tolerance:.3g}) on {parity.rows} test "
        "rows; the model cannot be served as trained"
    ]


def decision_threshold(ctx: PhaseContext, schema: Schema) -> float | None:
    """The binary decision threshold the model phase chose (`metrics["threshold"]`), if any."""
    raw = ctx.upstream["model"].metrics.get("threshold")
    if isinstance(raw, dict):
        raw = raw.get("value")
    if raw is None or schema.task != "binary":
        return None
    return float(raw)


def _metadata(ctx: PhaseContext, schema: Schema) -> dict[str, Any]:
    """What GET /metadata answers: plain JSON, read by the service without mlwizard."""
    import onnxruntime

    model = ctx.upstream["model"]
    scores = model.metrics
    best = scores.get("best_model")
    return {
        "name": ctx.config.deploy.service_name,
        "model": best,
        "model_version": model.fingerprint[:12],
        "task": schema.task,
        "target": schema.target,
        "features": _features(ctx, schema),
        "classes": schema.classes,
        "missing_token": schema.missing_token,
        "metrics": {
            "metric": scores.get("metric"),
            "test": scores.get("test"),
            "validation": (scores.get("validation") or {}).get(best),
            "baseline_validation": scores.get("baseline"),
        },
        "decision_threshold": decision_threshold(ctx, schema),
        "parity": None,  # filled in once checked
        "created_at": timestamp(),
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
    }
