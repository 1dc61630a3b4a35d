"""Deploy: build the champion's model folder, prove it predicts what the model does, optimise it,
and write the deployment bundle around it (`bundle.write_bundle`).

The model folder is built in a work folder beside the bundle: the serving `predictor.py` (the
code the service runs) is fed the test split's raw rows and compared with the native pipeline on
`feature_frame` rows, which covers the ONNX conversion and the serving-side input preparation
in one check. A model that cannot even load stops here and the previous bundle stays. The shells
are told which step is running (`STEPS`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.deploy import bundle, modeldir, optimise, parity, validate
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult, PhaseSteps
from mlwizard.core.kernel.workspace import FEATURES_FILE

WORK_PREFIX = ".work."
STEPS = ("model folder", "parity", "optimise", "bundle", "validate")
# Kept for callers of the old names.
service_host = bundle.service_host
staged_folder = bundle.staged_folder
ServiceParity = parity.ServiceParity


def run(ctx: PhaseContext) -> PhaseResult:
    schema_path = ctx.require("data", "schema")
    test_path = ctx.require("data", "test")
    train_path = ctx.require("data", "train")
    model_path = ctx.require("model", "onnx")
    pipeline_path = ctx.require("model", "pipeline")
    schema = Schema.load(schema_path)
    steps = ctx.steps(*STEPS)
    steps.begin("model folder")
    service = ctx.artifact("service")
    bundle.remove_leftovers(service, WORK_PREFIX)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, suffix=".tmp", dir=service.parent))
    try:
        champion = work / "champion"
        champion.mkdir()
        shutil.copyfile(model_path, champion / "model.onnx")
        shutil.copyfile(schema_path, champion / "schema.json")
        if schema.derived:  # the features.py the data phase derived them with
            shutil.copyfile(ctx.require("data", "features"), champion / FEATURES_FILE)
        metadata = modeldir.metadata(ctx, schema, decision_threshold(ctx, schema))
        metadata["domain"] = modeldir.domain(train_path, schema)
        atomic.write_json(champion / "metadata.json", metadata)  # the predictor reads it too
        ctx.check_cancelled()
        checked, sample = _check_and_sample(
            ctx, champion, pipeline_path, schema, test_path, work, steps
        )
        metadata.update(checked)
        atomic.write_json(champion / "metadata.json", metadata)
        atomic.write_json(champion / "samples.json", sample)
        ctx.check_cancelled()
        steps.begin("bundle")
        bundle.write_bundle(ctx.workspace, champion, target=service, config=ctx.config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps.begin("validate")
    checks = validate.run_checks(service)
    steps.finish()
    served = parity.ServiceParity(**_parity_fields(metadata["parity"]))
    ctx.message(_summary(ctx, service, served, schema, metadata["optimisation"]["chosen"], checks))
    return PhaseResult(
        metrics=_metrics(ctx, served, metadata, checks),
        outputs=_outputs(service),
        gate_failures=parity.gate(served, schema.task),
    )


def _check_and_sample(
    ctx: PhaseContext,
    champion: Path,
    pipeline_path: Path,
    schema: Schema,
    test_path: Path,
    work: Path,
    steps: PhaseSteps,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parity of the model as trained, the optimised variants, and the shipped sample rows."""
    import joblib
    import pandas as pd

    steps.begin("parity")
    pipeline = joblib.load(pipeline_path)
    checked = parity.model_parity(champion, pipeline, schema, test_path)  # raises if unloadable

    def parity_of(folder: Path) -> parity.ServiceParity:
        return parity.model_parity(folder, pipeline, schema, test_path)

    table = pq.read_table(test_path)
    rows = modeldir.json_rows(table, schema)
    steps.begin("optimise")
    report = optimise.optimise(champion, work / "variants", parity_of, rows, checked)
    ctx.check_cancelled()
    chosen = checked if report["chosen"] == "original" else parity_of(champion)
    predictor = parity.load_model_predictor(champion)
    served = predictor.predict_records(rows)
    frame = feature_frame(pd.read_parquet(test_path).head(len(rows)), schema)
    native, labels = parity.native_outputs(pipeline, frame, schema, predictor.threshold)
    found: dict[str, Any] = {
        "parity": chosen.to_dict(),
        "optimisation": report,
        "model_card": modeldir.model_card_extras(ctx),
    }
    if schema.task == "regression":
        everything = predictor.predict_columns(
            {name: table.column(name).to_pylist() for name in schema.request_columns}
        )
        values = np.asarray(everything["prediction"], dtype=np.float64)
        found["prediction_buckets"] = modeldir.prediction_buckets(values)
    return found, modeldir.samples(rows, _plain(served), native, labels)


def _plain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as JSON: numpy floats become Python floats."""
    out = []
    for record in records:
        item = {"prediction": _py(record["prediction"])}
        if record.get("proba") is not None:
            item["proba"] = {k: float(v) for k, v in record["proba"].items()}
        out.append(item)
    return out


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _parity_fields(raw: dict[str, Any]) -> dict[str, Any]:
    diff = raw.get("max_abs_diff")
    return {
        "rows": raw["rows"],
        "max_abs_diff": float("nan") if diff is None else diff,
        "tolerance": raw["tolerance"],
        "label_agreement": raw.get("label_agreement"),
    }


def _summary(
    ctx: PhaseContext,
    service: Path,
    served: parity.ServiceParity,
    schema: Schema,
    chosen: str,
    checks: dict[str, Any],
) -> str:
    label = "probabilities" if schema.task != "regression" else "values"
    label = {"clustering": "cluster ids", "anomaly": "anomaly scores"}.get(schema.task, label)
    agreement = (
        f", labels agree on {served.label_agreement:.2%}"
        if served.label_agreement is not None
        else ""
    )
    passed = sum(1 for c in checks.values() if c["status"] == "passed")
    ran = sum(1 for c in checks.values() if c["status"] != "not installed")
    return (
        f"bundle written to {ctx.workspace.relative(service)}; parity on {served.rows} test rows: "
        f"max diff {served.max_abs_diff:.2g} in {label}{agreement}; model: {chosen}; "
        f"validators: {passed}/{ran} passed"
    )


def _metrics(
    ctx: PhaseContext,
    served: parity.ServiceParity,
    metadata: dict[str, Any],
    checks: dict[str, Any],
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "onnx_max_abs_diff": served.max_abs_diff,
        "parity_tolerance": served.tolerance,
        "parity_rows": served.rows,
        "service_name": ctx.config.deploy.service_name,
        "port": ctx.config.deploy.port,
        "optimisation": metadata["optimisation"]["chosen"],
        "checks": checks,
    }
    if served.label_agreement is not None:
        metrics["label_agreement"] = served.label_agreement
    return metrics


def _outputs(service: Path) -> dict[str, Path]:
    return {
        "service": service,
        "onnx": service / "models/champion/model.onnx",
        "metadata": service / "models/champion/metadata.json",
        "dockerfile": service / "Dockerfile",
        "compose": service / "docker-compose.yml",
        "prometheus": service / "monitoring/prometheus.yml",
        "alerts": service / "monitoring/alerts.yml",
        "kubernetes": service / "k8s",
        "workflow": service / ".github/workflows/bundle.yml",
        "model_card": service / "MODEL_CARD.md",
    }


def decision_threshold(ctx: PhaseContext, schema: Schema) -> float | None:
    """The binary decision threshold the model phase chose (`metrics["threshold"]`), if any."""
    raw = ctx.upstream["model"].metrics.get("threshold")
    if isinstance(raw, dict):
        raw = raw.get("value")
    if raw is None or schema.task != "binary":
        return None
    return float(raw)
