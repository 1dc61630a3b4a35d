"""The model version's manifest: everything needed to rebuild it and check it is the same model.

Data hashes, the configuration, the seed, package versions, and the exact trial plan: every
candidate's configurations in the order tried, how far each got before the clock stopped it
(folds scored, pruned), and the recipe of its final fit (configuration, rows, boosting rounds).
`reproduce` replays the recipes without a clock and compares metrics and ONNX predictions with
the digests recorded here.

The model tested and the model deployed are usually refits of the chosen run on more rows
(`refit`): `refits` records, for each, the splits it was fitted on, each member's refit settings,
its ONNX bytes' sha256 and its test predictions' digest, or `null` with the notes saying why it
was not made (then there is nothing to rebuild for it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.versions import package_versions
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.refit import Model, Refits

FILE = "manifest.json"
VERSION = 2  # 2: `refits` and `result.onnx_threads`


def digest(values: np.ndarray) -> str:
    """sha256 of predictions as float32 bytes: what the ONNX model outputs, bit for bit."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).hexdigest()


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    return digest_bytes(path.read_bytes())


def _onnx_digest(run: RunResult) -> str | None:
    return file_digest(run.onnx_path) if run.onnx and run.onnx_path.is_file() else None


def _plan_entry(run: RunResult) -> dict[str, Any]:
    search = run.search or {}
    return {
        "candidate": run.candidate,
        "status": run.status,
        "reason": run.reason or None,
        "reused": run.reused,
        "complete": run.complete,
        "deployable": run.deployable,
        "validation": run.validation,
        "planned": search.get("planned"),
        "stopped": search.get("stopped") or None,
        # Every configuration tried, in order, and how far it got.
        "trials": search.get("trials") or [],
        "recipe": run.recipe,
        "members": run.params.get("members") if run.candidate == "ensemble" else None,
        "weights": run.params.get("weights") if run.candidate == "ensemble" else None,
        "notes": run.notes,
        "onnx_sha256": file_digest(Path(run.onnx))
        if run.onnx and Path(run.onnx).is_file()
        else None,
    }


def write(
    ctx: PhaseContext,
    *,
    paths: dict[str, Path],
    runs: list[RunResult],
    best: RunResult,
    metric: str,
    seed: int,
    budget_s: float,
    split: dict[str, str],
    validation: dict[str, Any],
    test: dict[str, Any],
    test_prediction: np.ndarray,
    onnx_path: Path,
    training: dict[str, Any] | None = None,
    onnx_threads: int = 1,
    refits: dict[str, Any] | None = None,
) -> Path:
    config = ctx.config
    manifest = {
        "manifest_version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": best.candidate,
        "seed": seed,
        "metric": metric,
        "time_budget_s": budget_s,
        "data": {
            "fingerprint": ctx.upstream["data"].fingerprint,
            **{name: ctx.workspace.file_hash(path) for name, path in sorted(paths.items())},
        },
        "files": {name: ctx.workspace.relative(path) for name, path in sorted(paths.items())},
        "config": {
            "model": {"candidates": list(config.model.candidates)},
            "split": asdict(config.split),
            "cv_split": split,  # the strategy the data phase split with, and its column
            "discovery": ctx.upstream["discovery"].metrics.get("metric"),
        },
        "packages": package_versions(),
        "plan": [_plan_entry(run) for run in runs],
        "result": {
            "validation": validation,
            "test": test,
            "onnx_sha256": file_digest(onnx_path),
            "test_predictions_sha256": digest(test_prediction),
            # onnxruntime's thread count: a tree ensemble's sums depend on it.
            "onnx_threads": onnx_threads,
        },
        # The recipe and the result above are the chosen run's own (training-split) model; the
        # model tested and the model deployed are its refits (`refits_record`).
        "training": training,
        "refits": refits,
    }
    json.dumps(manifest, default=str)  # fail here, not half-written, if something is not JSON
    return atomic.write_json(ctx.artifact(FILE), manifest)


def refits_record(
    refits: Refits,
    *,
    predictions: dict[str, np.ndarray],
    test: dict[str, Any],
    deployed_file: Path,
) -> dict[str, Any]:
    """What `reproduce` needs to rebuild the refits and check them.

    `predictions`: each made refit's ONNX predictions on the test split ("test", "deployed");
    `test`: the tested model's test scores; `deployed_file`: the model.onnx written.
    """

    def made(model: Model | None, kind: str) -> dict[str, Any] | None:
        if model is None:
            return None
        return {
            "fit_on": list(model.fit_on),
            "rows": model.rows,
            "members": model.members,
            "onnx_sha256": digest_bytes(model.onnx),
            "test_predictions_sha256": digest(predictions[kind]),
            **({"test": test} if kind == "test" else {}),
        }

    tested = "+".join(refits.test.fit_on) if refits.test else "train"
    return {
        "threads": refits.threads,
        "test": made(refits.test, "test"),
        "deployed": made(refits.deployed, "deployed"),
        "tested_model_fit_on": tested,
        "deployed_model_fit_on": "+".join(refits.deployed.fit_on) if refits.deployed else tested,
        "notes": list(refits.notes),
        "model_onnx_sha256": file_digest(deployed_file),
    }
