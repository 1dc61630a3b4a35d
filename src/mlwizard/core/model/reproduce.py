"""Rebuild a model version from its manifest, without a clock, and check it is the same model.

Each finished candidate's final fit is replayed from its recipe (configuration, rows, boosting
rounds), whatever the time budget cut when it first ran: the clock decided how far the search
got, the recipe records where it ended. Validation metrics must be identical for every
candidate; for the chosen model, the ONNX export's test predictions and test metrics too. ONNX
bytes are compared and reported, but predictions decide (package versions may rename nodes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import export_pipeline, make_session, predict_onnx
from mlwizard.core.export.trees import align_thresholds
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.versions import package_versions
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.model import candidates, cv, ensemble, fitting, manifest
from mlwizard.core.model.metrics import evaluate


@dataclass
class Reproduction:
    model: str
    checked: list[str] = field(default_factory=list)  # what matched
    differences: list[str] = field(default_factory=list)  # what did not
    notes: list[str] = field(default_factory=list)  # neither (e.g. package versions)

    @property
    def identical(self) -> bool:
        return not self.differences


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _compare(
    what: str, recorded: dict[str, Any], rebuilt: dict[str, Any], out: Reproduction
) -> None:
    differ = [k for k in recorded if not _same(recorded.get(k), rebuilt.get(k))]
    if differ:
        shown = "; ".join(f"{k} {recorded.get(k)} -> {rebuilt.get(k)}" for k in differ[:4])
        out.differences.append(f"{what}: {shown}")
    else:
        out.checked.append(what)


def load(workspace: Workspace) -> dict[str, Any]:
    path = workspace.artifact_dir("model") / manifest.FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BadInputError(
            f"{workspace.relative(path)}: no model manifest; run `mlwizard run --phase model`"
        ) from None


def _rebuild(
    entry: dict[str, Any],
    schema: Schema,
    seed: int,
    train: pd.DataFrame,
    split: dict[str, str],
) -> Any:
    name, recipe = entry["candidate"], entry["recipe"]
    x, y = feature_frame(train, schema), target_vector(train, schema)
    pipeline = candidates.build(
        name, schema, seed, recipe["params"], int(recipe.get("threads") or 1), rows=len(x)
    )
    if recipe["fit_on"] == "fold":
        folds = cv.plan(
            train,
            y,
            task=schema.task,
            strategy=split.get("strategy", ""),
            column=split.get("column", ""),
            seed=seed,
        )
        rows, _ = folds.folds[int(recipe["fold"])]
        x, y = x.iloc[rows], y[rows]
    family = candidates.FAMILIES[name]
    # The worker's thread count: histogram sums (HistGradientBoosting) depend on it.
    with threadpool_limits(limits=int(recipe.get("threads") or 1)):
        fitting.fit(pipeline, family, x, y, seed=seed, deadline=math.inf, rounds=recipe["rounds"])
    return align_thresholds(pipeline)


def reproduce(workspace: Workspace) -> Reproduction:
    record = load(workspace)
    out = Reproduction(model=record["model"])
    files = {name: workspace.resolve(rel) for name, rel in record["files"].items()}
    for name, path in files.items():
        if not path.is_file():
            raise BadInputError(f"{workspace.relative(path)}: missing; rerun the data phase")
        if workspace.file_hash(path) != record["data"].get(name):
            out.differences.append(f"data: {workspace.relative(path)} changed since the model")
    changed = {
        k: (v, package_versions().get(k))
        for k, v in record["packages"].items()
        if package_versions().get(k) != v
    }
    for k, (was, now) in changed.items():
        out.notes.append(f"package {k}: {was} then, {now} now")

    schema = Schema.load(files["schema"])
    seed, n_classes = int(record["seed"]), len(schema.classes or [])
    train, valid = pd.read_parquet(files["train"]), pd.read_parquet(files["valid"])
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)
    split = record["config"].get("cv_split") or {}
    rebuilt: dict[str, Any] = {}
    for entry in record["plan"]:
        if entry["status"] != "done" or not entry.get("recipe"):
            continue
        pipeline = _rebuild(entry, schema, seed, train, split)
        rebuilt[entry["candidate"]] = pipeline
        scores = evaluate(
            schema.task, y_valid, fitting.predict(pipeline, x_valid, n_classes), n_classes
        )
        _compare(f"{entry['candidate']}: validation metrics", entry["validation"], scores, out)

    chosen = next(e for e in record["plan"] if e["candidate"] == record["model"])
    if chosen.get("members"):
        fitted = [(m, rebuilt[m]) for m in chosen["members"]]
        model = ensemble.from_pipelines(fitted, schema, chosen.get("weights"))
    elif record["model"] in rebuilt:
        model = rebuilt[record["model"]]
    else:
        out.differences.append(f"{record['model']}: no recipe recorded, cannot be rebuilt")
        return out
    onnx = export_pipeline(model, schema, x_valid)
    result = record["result"]
    if manifest.digest_bytes(onnx) == result["onnx_sha256"]:
        out.checked.append("model.onnx: byte-identical")
    else:
        out.notes.append("model.onnx: same model, different bytes (see the predictions check)")
    test = pd.read_parquet(files["test"])
    prediction = _onnx_prediction(onnx, feature_frame(test, schema), schema)
    if manifest.digest(prediction) == result["test_predictions_sha256"]:
        out.checked.append("ONNX test predictions: identical")
    else:
        out.differences.append("ONNX test predictions: differ from the recorded ones")
    cut = _threshold(workspace)
    scores = evaluate(schema.task, target_vector(test, schema), prediction, n_classes, cut)
    _compare("test metrics", result["test"], scores, out)
    return out


def _onnx_prediction(onnx: bytes, x: pd.DataFrame, schema: Schema) -> np.ndarray:
    outputs = predict_onnx(make_session(onnx), x, schema)
    key = "variable" if schema.task == "regression" else "probabilities"
    values = np.asarray(outputs[key], dtype=np.float64)
    return values.ravel() if schema.task == "regression" else values


def _threshold(workspace: Workspace) -> float | None:
    path: Path = workspace.artifact_dir("model") / "decision.json"
    if not path.is_file():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["threshold"])
