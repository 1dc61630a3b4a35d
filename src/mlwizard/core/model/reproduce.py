"""Rebuild a model version from its manifest, without a clock, and check it is the same model.

Each finished candidate's final fit is replayed from its recipe (configuration, rows, boosting
rounds), whatever the time budget cut when it first ran: the clock decided how far the search
got, the recipe records where it ended. Validation metrics must be identical for every
candidate. Then the three models of the version are rebuilt and checked in turn, each for its
ONNX bytes (sha256) and its ONNX test predictions: the chosen run's own (training-split) model,
the tested model (its refit on train + validation, whose test metrics must match too) and the
deployed model (its refit on every labelled row) -- the refits from the splits and settings the
manifest records. A refit the model phase did not make (its notes say why) has nothing to
rebuild: the model that stood in for it is the one checked. Different ONNX bytes are a
difference, unless package versions changed since (then a note: converters may rename nodes).
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
from mlwizard.core.model import candidates, cv, ensemble, fitting, manifest, refit
from mlwizard.core.model.metrics import evaluate


@dataclass
class Reproduction:
    model: str
    checked: list[str] = field(default_factory=list)  # what matched
    differences: list[str] = field(default_factory=list)  # what did not
    notes: list[str] = field(default_factory=list)  # neither (e.g. package versions)
    rebuilt: list[str] = field(default_factory=list)  # the models rebuilt and checked, in short
    roles: str = ""  # which fit is tested and which deployed, e.g. "tested: train+valid; ..."

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
    now = package_versions()
    changed = {k: (v, now.get(k)) for k, v in record["packages"].items() if now.get(k) != v}
    for k, (was, then) in changed.items():
        out.notes.append(f"package {k}: {was} then, {then} now")

    schema = Schema.load(files["schema"])
    seed, n_classes = int(record["seed"]), len(schema.classes or [])
    tables = {name: pd.read_parquet(files[name]) for name in ("train", "valid", "test")}
    x_valid, y_valid = (
        feature_frame(tables["valid"], schema),
        target_vector(tables["valid"], schema),
    )
    split = record["config"].get("cv_split") or {}
    rebuilt: dict[str, Any] = {}
    for entry in record["plan"]:
        if entry["status"] != "done" or not entry.get("recipe"):
            continue
        pipeline = _rebuild(entry, schema, seed, tables["train"], split)
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
    check = _Checker(out, schema, tables["test"], x_valid, record, workspace, not changed)
    check.model("chosen run (fitted on train)", model, record["result"])
    _refits(check, record, rebuilt, chosen, tables)
    return out


@dataclass
class _Checker:
    """Exports a rebuilt model and compares it with what the manifest recorded for it."""

    out: Reproduction
    schema: Schema
    test: pd.DataFrame
    x_valid: pd.DataFrame  # the export's sample, as in the model phase
    record: dict[str, Any]
    workspace: Workspace
    same_packages: bool

    def model(self, label: str, pipeline: Any, recorded: dict[str, Any]) -> None:
        out, schema = self.out, self.schema
        out.rebuilt.append(label.split(" (")[0])
        onnx = export_pipeline(pipeline, schema, self.x_valid)
        sha = manifest.digest_bytes(onnx)
        if sha == recorded["onnx_sha256"]:
            out.checked.append(f"{label}: ONNX bytes identical (sha256 {sha[:12]})")
        elif self.same_packages:
            out.differences.append(
                f"{label}: ONNX bytes differ (sha256 {recorded['onnx_sha256'][:12]} recorded, "
                f"{sha[:12]} rebuilt)"
            )
        else:
            out.notes.append(f"{label}: ONNX bytes differ, with other package versions")
        threads = int(self.record["result"].get("onnx_threads") or 1)
        prediction = _onnx_prediction(onnx, feature_frame(self.test, schema), schema, threads)
        if manifest.digest(prediction) == recorded["test_predictions_sha256"]:
            out.checked.append(f"{label}: ONNX test predictions identical")
        else:
            out.differences.append(f"{label}: ONNX test predictions differ from the recorded ones")
        if "test" in recorded:
            n_classes = len(schema.classes or [])
            y = target_vector(self.test, schema)
            scores = evaluate(schema.task, y, prediction, n_classes, _threshold(self.workspace))
            _compare(f"{label}: test metrics", recorded["test"], scores, out)


def _refits(
    check: _Checker,
    record: dict[str, Any],
    rebuilt: dict[str, Any],
    chosen: dict[str, Any],
    tables: dict[str, pd.DataFrame],
) -> None:
    """Rebuild the tested and the deployed refits the manifest records, and check them."""
    out, schema = check.out, check.schema
    refits = record.get("refits")
    if not refits:
        out.notes.append(
            "the manifest records no refits (written before they were recorded): the tested and "
            "deployed models cannot be rebuilt; rerun the model phase to record them"
        )
        return
    for note in refits.get("notes") or []:
        out.notes.append(f"model phase: {note}")
    for kind, words in (("test", "tested model"), ("deployed", "deployed model")):
        made = refits.get(kind)
        if made is None:
            continue
        fit_on = "+".join(made["fit_on"])
        label = f"{words} (refit on {fit_on}, {made['rows']} rows)"
        table = pd.concat([tables[name] for name in made["fit_on"]], ignore_index=True)
        if len(table) != made["rows"]:
            out.differences.append(f"{label}: {len(table)} rows in {fit_on} now")
            continue
        x, y = feature_frame(table, schema), target_vector(table, schema)
        fitted = []
        for member in made["members"]:
            name = member["candidate"]
            pipeline, settings = refit.refit_fitted(
                rebuilt[name], name, x, y, threads=int(refits["threads"])
            )
            if settings != member["settings"]:
                out.differences.append(
                    f"{label}: {name}'s refit settings {member['settings']} -> {settings}"
                )
            fitted.append((name, pipeline))
        model = refit.combine(record["model"], fitted, schema, chosen.get("weights"))
        check.model(label, model, made)
    deployed = refits["deployed_model_fit_on"]
    out.roles = f"tested: fitted on {refits['tested_model_fit_on']}; deployed: fitted on {deployed}"
    if refits.get("test") is None:
        out.notes.append(
            "no refit on train+valid was made: the test score is the chosen run's own "
            "(fitted on train), checked above; nothing else to rebuild for it"
        )
    if refits.get("deployed") is None:
        out.notes.append(
            f"no refit on every labelled row was made: the deployed model is the one fitted on "
            f"{deployed}, checked above"
        )
    path = check.workspace.artifact_dir("model") / "model.onnx"
    shown = check.workspace.relative(path)
    if not path.is_file():
        out.differences.append(f"{shown}: missing; rerun the model phase")
    elif manifest.file_digest(path) == refits["model_onnx_sha256"]:
        out.checked.append(f"{shown}: the deployed model recorded (fitted on {deployed})")
    else:
        out.differences.append(f"{shown}: not the deployed model recorded; it changed since")


def _onnx_prediction(onnx: bytes, x: pd.DataFrame, schema: Schema, threads: int) -> np.ndarray:
    outputs = predict_onnx(make_session(onnx, threads=threads), x, schema)
    key = "variable" if schema.task == "regression" else "probabilities"
    values = np.asarray(outputs[key], dtype=np.float64)
    return values.ravel() if schema.task == "regression" else values


def _threshold(workspace: Workspace) -> float | None:
    path: Path = workspace.artifact_dir("model") / "decision.json"
    if not path.is_file():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["threshold"])
