"""Sources beyond local files, against real servers on 127.0.0.1: objects in S3 (moto's server),
files over HTTP and a paginated JSON API (`http.server` in a thread). Each lands in the same
snapshot as a local file would, runs every phase, reruns the data phase when the object changes,
and never writes a secret into the project.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers.frames import synthetic_frame
from helpers.servers import S3_ENV, HttpServer, S3Server
from mlwizard.core import runner
from mlwizard.core.ingest import api, remote
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.core.scaffold import create_project

TOKEN = "api-secret-token"
FAST_MODEL = {"candidates": ["dummy", "linear"], "time_budget": 600, "workers": 2}  # does not bind


@pytest.fixture(autouse=True)
def _small_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")


def _project(root: Path, source: Any) -> Workspace:
    ws = Workspace(create_project(root / "project", target="label"))
    update_config_file(ws.config_path, {"data": {"source": source}, "model": FAST_MODEL})
    return ws


def _statuses(ws: Workspace) -> dict[str, str]:
    return {s.phase: s.status for s in runner.project_status(ws)}


def _no_secret_in(root: Path, *secrets: str) -> None:
    for path in root.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} written into {path}"


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_an_s3_object_runs_every_phase_and_a_new_version_reruns_data(
    tmp_path: Path, s3_env: S3Server
) -> None:
    s3 = s3_env.client()
    s3.create_bucket(Bucket="mlwizard-test")
    s3.put_object(Bucket="mlwizard-test", Key="tables/churn.csv", Body=_csv(synthetic_frame()))
    ws = _project(tmp_path, "s3://mlwizard-test/tables/churn.csv")

    report = runner.run(ws, runner.PHASE_NAMES)
    assert report.error is None, report.error
    assert all(o.status == "done" for o in report.phases.values())
    lineage = json.loads(Path(report.phases["data"].artifacts["lineage"]).read_text())["current"]
    assert lineage["source"] == "s3://mlwizard-test/tables/churn.csv" and lineage["rows"] == 400
    assert _statuses(ws)["data"] == "done"

    changed = synthetic_frame(seed=1)
    s3.put_object(Bucket="mlwizard-test", Key="tables/churn.csv", Body=_csv(changed))
    state = {s.phase: s for s in runner.project_status(ws)}
    assert state["discovery"].status == "stale" and "source" in state["discovery"].reason
    assert state["data"].status == "stale"
    again = runner.run(ws, ["discovery", "data"])
    assert again.phases["data"].status == "done"
    newer = json.loads(Path(again.phases["data"].artifacts["lineage"]).read_text())["current"]
    assert newer["version"] != lineage["version"]
    _no_secret_in(ws.root, S3_ENV["AWS_SECRET_ACCESS_KEY"])


def test_an_s3_glob_reads_every_matching_object(tmp_path: Path, s3_env: S3Server) -> None:
    s3 = s3_env.client()
    s3.create_bucket(Bucket="mlwizard-parts")
    frame = synthetic_frame(300)
    for i, part in enumerate((frame[:100], frame[100:200], frame[200:])):
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        s3.put_object(Bucket="mlwizard-parts", Key=f"p/part-{i}.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket="mlwizard-parts", Key="p/README.txt", Body=b"not data")
    s3.put_object(Bucket="mlwizard-parts", Key="p/old/part-9.parquet", Body=b"not matched")
    ws = _project(tmp_path, "s3://mlwizard-parts/p/*.parquet")
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    splits = report.phases["data"].metrics["splits"]
    assert sum(int(s["rows"]) for s in splits.values()) == 300
    missing = _project(tmp_path / "m", "s3://mlwizard-parts/nothing/*.csv")
    with pytest.raises(BadInputError, match="no objects match"):
        runner.run_phase(missing, "discovery")


def test_an_http_file_is_fingerprinted_by_last_modified(
    tmp_path: Path, http_server: HttpServer
) -> None:
    served = http_server.root / "churn.csv"
    served.write_bytes(_csv(synthetic_frame()))
    ws = _project(tmp_path, f"{http_server.url}/files/churn.csv")
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    assert _statuses(ws)["data"] == "done"
    gets = [p for p, _ in http_server.requests]
    assert gets.count("/files/churn.csv") >= 2  # HEADs for the version, one GET for the bytes

    served.write_bytes(_csv(synthetic_frame(seed=2)))
    later = time.time() + 5
    os.utime(served, (later, later))
    assert _statuses(ws)["data"] == "stale"
    assert runner.run(ws, ["discovery", "data"]).phases["data"].status == "done"
    with pytest.raises(BadInputError, match="answered 404"):
        remote.list_objects(f"{http_server.url}/files/absent.csv")


def test_a_paginated_api_runs_every_phase_without_writing_its_token(
    tmp_path: Path, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = synthetic_frame(230)
    http_server.api_records = json.loads(frame.to_json(orient="records"))
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)
    source = {
        "url": f"{http_server.url}/api/items?page=1",
        "records": "items",
        "next": "next",
        "token_env": "TEST_API_TOKEN",
    }
    ws = _project(tmp_path, source)
    report = runner.run(ws, runner.PHASE_NAMES)
    assert report.error is None, report.error
    assert all(o.status == "done" for o in report.phases.values())
    splits = report.phases["data"].metrics["splits"]
    assert sum(int(s["rows"]) for s in splits.values()) == 230
    pages = {p for p, _ in http_server.requests if p.startswith("/api/")}
    assert pages == {f"/api/items?page={i}" for i in range(1, 24)}  # 10 records a page
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, h in http_server.requests)
    _no_secret_in(ws.root, TOKEN)

    http_server.api_records[0]["x2"] = 999.0  # the collection changed
    monkeypatch.setattr(api, "REUSE_S", 0.0)  # past the few seconds one command reuses a walk
    assert _statuses(ws)["data"] == "stale"
    rerun = runner.run(ws, ["discovery", "data"])
    assert rerun.phases["data"].status == "done"
    monkeypatch.delenv("TEST_API_TOKEN")
    with pytest.raises(BadInputError, match="TEST_API_TOKEN is not set"):
        runner.run_phase(ws, "discovery")


def test_urls_are_redacted_in_labels() -> None:
    shown = remote.redact("https://user:hunter2@host/data.csv?api_key=abc&page=2&X-Amz-Signature=s")
    assert "hunter2" not in shown and "abc" not in shown and "=s" not in shown
    assert shown == "https://***@host/data.csv?api_key=***&page=2&X-Amz-Signature=***"
