"""Streaming prediction: `mlwizard predict -` (NDJSON in, NDJSON out, row by row) and the
bundle's Redis stream consumer against a real `redis-server` on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis

from helpers.deploy import Project, build_project, free_port
from mlwizard.core.deploy import phase as deploy
from mlwizard.core.deploy.batch import load_predictor, predict_file
from mlwizard.core.deploy.stream import predict_stream
from mlwizard.core.kernel.errors import BadInputError


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = build_project(tmp_path_factory.mktemp("stream") / "project")
    deploy.run(project.ctx)
    return project


def _ndjson(project: Project) -> str:
    frame = project.test_frame()
    return frame.to_json(orient="records", lines=True)


def test_stream_gives_the_same_predictions_as_batch(project: Project, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    project.test_frame().to_csv(csv, index=False)
    batch = pd.read_csv(predict_file(project.ctx.workspace, csv, tmp_path / "out.csv"))
    out = io.StringIO()
    flagged: dict[str, int] = {}
    scored = predict_stream(
        project.ctx.workspace, io.StringIO(_ndjson(project)), out, flagged, chunk_rows=64
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert scored == len(lines) == len(batch) == 200
    assert [x["prediction"] for x in lines] == batch["prediction"].tolist()
    for name in ("proba_churn", "proba_stay"):
        assert [x[name] for x in lines] == pytest.approx(batch[name].tolist(), abs=1e-6)
    assert ["; ".join(x.get("warnings", [])) for x in lines] == batch["warnings"].fillna(
        ""
    ).tolist()
    assert flagged == {"city: unknown category": sum("warnings" in x for x in lines)}
    first = json.loads(_ndjson(project).splitlines()[0])
    assert {k: lines[0][k] for k in first} == first  # the input comes back as written


def test_stream_refuses_bad_lines_naming_them(project: Project) -> None:
    good = json.dumps(project.test_rows()[0])
    for text, message in (
        (f"{good}\nnot json\n", "stdin line 2: not JSON"),
        (f"{good}\n[1, 2]\n", "stdin line 2: a JSON object"),
        ('{"income": 1}\n', "stdin line 1: missing feature"),
    ):
        with pytest.raises(BadInputError, match=message):
            predict_stream(project.ctx.workspace, io.StringIO(text), io.StringIO())


def test_the_cli_answers_each_row_before_the_input_ends(project: Project) -> None:
    """`mlwizard predict -` through a pipe: one line in, one prediction out, stdin still open."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlwizard", "predict", "-", "-p", str(project.ctx.workspace.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin and process.stdout
    try:
        answers = []
        for row in project.test_rows()[:2]:
            process.stdin.write((json.dumps(row) + "\n").encode())
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, "no answer within 60 s while stdin stays open"
            answers.append(json.loads(process.stdout.readline()))
        process.stdin.close()
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    expected = load_predictor(project.service).predict_records(project.test_rows()[:2])
    assert [a["prediction"] for a in answers] == [e["prediction"] for e in expected]
    assert b"Scored 2 row(s)" in process.stderr.read()  # type: ignore[union-attr]


# -- the Redis stream consumer ------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed: .ci/run installs Debian's redis-server"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def test_the_stream_consumer_writes_a_prediction_per_entry(
    project: Project, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    rows = project.test_rows()[:25]
    ids = [client.xadd("rows", {"row": json.dumps(row)}) for row in rows]
    bad = client.xadd("rows", {"row": json.dumps({"nope": 1})})
    done = subprocess.run(
        [
            sys.executable,
            "stream_consumer.py",
            "--redis",
            redis_url,
            "--batch",
            "10",
            "--block-ms",
            "200",
            "--max-entries",
            str(len(rows) + 1),
        ],
        cwd=project.service,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = client.xrange("predictions")
    by_id = {fields[b"id"]: fields for _, fields in out}
    assert len(out) == len(rows) + 1 and set(by_id) == {*ids, bad}
    expected = load_predictor(project.service).predict_records(rows)
    for entry_id, want in zip(ids, expected, strict=True):
        got = by_id[entry_id]
        assert json.loads(got[b"prediction"]) == want["prediction"]
        proba = json.loads(got[b"proba"])
        assert proba == pytest.approx({k: float(v) for k, v in want["proba"].items()}, abs=1e-7)
    assert b"unknown column(s): nope" in by_id[bad][b"error"]
    assert client.xpending("rows", "model")["pending"] == 0  # all acknowledged
