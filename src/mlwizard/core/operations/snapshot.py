"""What a model version is registered with, read from a project whose phases are done.

The reference profile (features from the training split; predictions and metrics overall and by
slice from the test split, scored by the bundle's own predictor) and the manifest's facts (model,
data version, metrics). Used by the operations phase and by `retrain` for the challenger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlwizard.core.contract.schema import UNSUPERVISED
from mlwizard.core.deploy.batch import TrainingColumns, load_predictor
from mlwizard.core.kernel.errors import UpstreamNotReadyError
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.operations.drift import connect
from mlwizard.core.operations.evaluation import (
    metrics_by_slice,
    prediction_bins,
    prediction_counts,
    score_batches,
)
from mlwizard.core.operations.reference import build_reference
from mlwizard.core.operations.registry import bundle_schema

SCORE_BATCH_ROWS = 65_536


def checkpoints(ws: Workspace) -> dict[str, Checkpoint]:
    found = {}
    for phase in ("data", "model", "deploy"):
        checkpoint = ws.read_checkpoint(phase)
        if checkpoint is None or checkpoint.status != "done":
            raise UpstreamNotReadyError(
                f"{ws.root}: the {phase} phase is not done; run `mlwizard run --phase {phase}`"
            )
        found[phase] = checkpoint
    return found


def slice_values(reference: dict[str, Any]) -> dict[str, list[str]]:
    """The slices metrics are reported for: each monitored categorical's top categories."""
    return {
        name: [str(v) for v in spec.get("values") or []]
        for name, spec in reference["features"].items()
        if spec["kind"] == "categorical"
    }


def describe_version(ws: Workspace) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(bundle folder, reference profile, manifest facts) of the project's current model."""
    found = checkpoints(ws)
    data, model, deploy = found["data"], found["model"], found["deploy"]
    bundle = ws.resolve(deploy.outputs["service"])
    schema = bundle_schema(bundle)
    training = TrainingColumns.load(ws)
    con = connect(len(schema.features))
    reference = build_reference(
        con, ws.resolve(data.outputs["train"]), schema, dict(data.metrics.get("types") or {})
    )
    reference["types"] = training.types
    reference["duckdb_types"] = training.duckdb_types
    metric = str(model.metrics.get("metric"))
    direction = str(model.metrics.get("metric_direction") or "maximize")
    predictor = load_predictor(bundle)
    slices = slice_values(reference)
    test = str(ws.resolve(data.outputs["test"]))
    batches = con.sql("SELECT * FROM read_parquet(?)", params=[test]).to_arrow_reader(
        SCORE_BATCH_ROWS
    )
    scored = score_batches(batches, schema, predictor, schema.target, slices)
    spec = prediction_bins(scored, schema)
    reference["prediction"] = {**spec, "counts": prediction_counts(scored, spec)}
    reference["metric"] = {"name": metric, "direction": direction}
    supervised = schema.task not in UNSUPERVISED  # clustering and anomaly have no labels
    reference["performance"] = (
        metrics_by_slice(scored, schema, metric, predictor.threshold, slices)
        if supervised
        else None
    )
    facts = {
        "model_fingerprint": model.fingerprint,
        "model": model.metrics.get("best_model"),
        "task": schema.task,
        "target": schema.target,
        "metric": metric,
        "metric_direction": direction,
        "test": model.metrics.get("test"),
        "threshold": predictor.threshold,
        **_data_version(ws, data),
    }
    return bundle, reference, facts


def _data_version(ws: Workspace, data: Checkpoint) -> dict[str, Any]:
    lineage = data.outputs.get("lineage") or ""
    try:
        if not lineage:
            raise KeyError(lineage)
        current = json.loads(ws.resolve(lineage).read_text(encoding="utf-8"))["current"]
    except (TypeError, OSError, ValueError, KeyError):
        return {"data_version": data.fingerprint[:16], "data_source": None}
    return {"data_version": current.get("version"), "data_source": current.get("source")}
