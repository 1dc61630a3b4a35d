"""Runs mirrored to Weights & Biases in offline mode, read back from W&B's own run files.

W&B writes each offline run as a record log of protobuf messages (`run-*.wandb`, LevelDB's log
format); `wandb sync` uploads them later. The test reads them with W&B's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.model import fake_project
from mlwizard.core.kernel.config import ModelSection
from mlwizard.core.model import phase as model
from mlwizard.core.model.session import TRIALS_ENV

pytest.importorskip("wandb")
BLOCK = 32768  # LevelDB log blocks; each record piece has a 7-byte header


def _records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    i, pieces = 7, b""
    while i + 7 <= len(data):
        if BLOCK - i % BLOCK < 7:  # a block's tail too short for a header is padding
            i += BLOCK - i % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[i : i + 7])
        if kind == 0 and length == 0:
            break
        pieces += data[i + 7 : i + 7 + length]
        i += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def _offline_run(folder: Path) -> dict[str, Any]:
    """The run's name, config, summary and artifacts, as W&B recorded them."""
    (log,) = folder.glob("run-*.wandb")
    run: dict[str, Any] = {"summary": {}, "artifacts": [], "config": {}}
    for record in _records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["name"], run["group"] = record.run.display_name, record.run.run_group
            run["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or ".".join(item.nested_key)
                run["summary"][key] = json.loads(item.value_json)
        elif kind == "artifact":
            run["artifacts"].append((record.artifact.name, record.artifact.type))
    return run


@pytest.mark.slow  # W&B starts its service process: tens of seconds on a loaded machine
def test_runs_are_written_offline_for_a_later_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # unset: offline
    monkeypatch.setenv("WANDB_API_KEY", "")
    ctx, _ = fake_project(tmp_path, "binary", candidates=("dummy", "linear"), workers=1)
    settings = ModelSection(candidates=("dummy", "linear"), workers=1, wandb_project="churn")
    ctx.config = type(ctx.config)(**{**ctx.config.__dict__, "model": settings})
    result = model.run(ctx)
    from mlwizard.core.model.wandb_tracking import flush_all

    flush_all(timeout=240)
    folders = sorted((tmp_path / "wandb").glob("offline-run-*"))
    runs = {r["name"]: r for r in map(_offline_run, folders)}
    assert set(runs) == {"dummy", "linear"}, runs
    linear, rows = runs["linear"], {c["name"]: c for c in result.metrics["candidates"]}
    assert linear["summary"]["status"] == "done" and linear["summary"]["deployable"] is True
    assert linear["summary"]["validation.roc_auc"] == pytest.approx(rows["linear"]["score"])
    assert any(key.endswith("C") for key in linear["config"]), linear["config"]  # its parameters
    assert ("linear-onnx", "model") in linear["artifacts"]
    assert runs["dummy"]["artifacts"] == []  # no ONNX model: nothing to attach
    assert linear["group"] == runs["dummy"]["group"]  # one phase run
