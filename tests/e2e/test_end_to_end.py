"""The whole pipeline through the real CLI on the demo data, then the service on uvicorn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from helpers.deploy import running_service
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import make_session, onnx_feed

PHASES = ("discovery", "data", "model", "deploy", "operations")
TIME_BUDGET = "30"


def mlwizard(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlwizard", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def run_all(project: Path, *extra: str | Path) -> dict[str, Any]:
    done = mlwizard("run", "--phase", "all", "--json", "-p", project, *extra)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)  # exactly one JSON object: anything else fails to parse


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_csv: Path) -> Path:
    folder = tmp_path_factory.mktemp("e2e")
    data = folder / "penguins.csv"
    shutil.copyfile(demo_csv, data)
    return folder / "demo"


@pytest.fixture(scope="module")
def first_run(project: Path) -> dict[str, Any]:
    return run_all(
        project,
        "--data",
        project.parent / "penguins.csv",
        "--target",
        "species",
        "--time-budget",
        TIME_BUDGET,
    )


@pytest.fixture(scope="module")
def service_url(first_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    service = Path(first_run["phases"]["deploy"]["artifacts"]["service"])
    with running_service(service, tmp_path_factory.mktemp("logs") / "uvicorn.log") as url:
        yield url


def test_every_phase_reports_its_contract(first_run: dict[str, Any], project: Path) -> None:
    assert first_run["project"] == str(project.resolve())
    phases = first_run["phases"]
    assert {name: phases[name]["status"] for name in PHASES} == dict.fromkeys(PHASES, "done")
    assert phases["discovery"]["metrics"]["task"] == "multiclass"
    model = phases["model"]["metrics"]
    assert model["best_model"] != "dummy"
    assert {"accuracy", "f1_macro"} <= set(model["test"])
    assert 0.8 <= model["test"]["accuracy"] <= 1.0  # penguins are easy; the baseline gets ~0.44
    deploy = phases["deploy"]
    assert deploy["metrics"]["onnx_max_abs_diff"] < 1e-4
    for name in ("onnx", "service", "dockerfile"):
        assert Path(deploy["artifacts"][name]).exists(), name
    assert set(phases["operations"]["metrics"]["psi"]) == set(phases["data"]["metrics"]["features"])


def _test_rows(project: Path) -> tuple[pd.DataFrame, Schema]:
    schema = Schema.load(project / "artifacts" / "data" / "schema.json")
    table = pd.read_parquet(project / "artifacts" / "data" / "test.parquet")
    return table, schema


def _records(table: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    columns = [f.name for f in schema.features]
    frame = table[columns].astype(object)
    return frame.where(frame.notna(), None).to_dict(orient="records")


def test_service_matches_onnxruntime_in_process(
    first_run: dict[str, Any], project: Path, service_url: str
) -> None:
    table, schema = _test_rows(project)
    answer = httpx.post(
        f"{service_url}/predict", json={"rows": _records(table, schema)}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]

    model = Path(first_run["phases"]["deploy"]["artifacts"]["onnx"])
    session = make_session(model)
    label, proba = session.run(
        ["label", "probabilities"], onnx_feed(feature_frame(table, schema), schema)
    )
    assert [row["prediction"] for row in served] == [schema.classes[i] for i in label]
    served_proba = np.array([[row["proba"][str(c)] for c in schema.classes] for row in served])
    np.testing.assert_allclose(served_proba, proba, atol=1e-5)
    assert len(served) == len(table) > 0


def test_malformed_request_names_the_field(
    first_run: dict[str, Any], project: Path, service_url: str
) -> None:
    table, schema = _test_rows(project)
    row = _records(table, schema)[0]
    row["bill_length_mm"] = "long"
    answer = httpx.post(f"{service_url}/predict", json={"rows": [row]}, timeout=10)
    assert answer.status_code == 422
    assert "bill_length_mm" in answer.text


def test_batch_predict_reproduces_the_service(
    first_run: dict[str, Any], project: Path, service_url: str, tmp_path: Path
) -> None:
    table, schema = _test_rows(project)
    source = tmp_path / "to_score.csv"
    table.drop(columns=[schema.target]).to_csv(source, index=False)
    output = tmp_path / "scored.parquet"
    done = mlwizard("predict", "-p", project, source, "-o", output)
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(output)
    served = httpx.post(
        f"{service_url}/predict", json={"rows": _records(table, schema)}, timeout=30
    ).json()["predictions"]
    assert scored["prediction"].tolist() == [row["prediction"] for row in served]
    for cls in schema.classes:
        np.testing.assert_allclose(
            scored[f"proba_{cls}"], [row["proba"][str(cls)] for row in served], atol=1e-6
        )


def test_unchanged_inputs_skip_and_changed_data_reruns_downstream(
    first_run: dict[str, Any], project: Path
) -> None:
    again = run_all(project, "--time-budget", TIME_BUDGET)
    assert {n: again["phases"][n]["status"] for n in PHASES} == dict.fromkeys(PHASES, "skipped")

    data = project / "data" / "penguins.csv"
    if not data.exists():  # `run --data` points at the file where it is
        data = project.parent / "penguins.csv"
    text = data.read_text()
    data.write_text(text.replace("39.1,18.7,181", "39.3,18.7,181", 1))
    changed = run_all(project, "--time-budget", TIME_BUDGET)
    assert {n: changed["phases"][n]["status"] for n in PHASES} == dict.fromkeys(PHASES, "done")
