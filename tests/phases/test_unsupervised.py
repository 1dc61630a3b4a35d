"""Clustering and anomaly detection through the real phases, and the service that serves them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.deploy import running_service
from mlwizard.core import runner
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import make_session, predict_onnx
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.scaffold import create_project

BUDGET = 240.0  # generous: the runs take seconds of CPU; the budget must not bind on a busy box


def _project(tmp_path: Path, frame: pd.DataFrame, target: str, discovery: dict) -> Workspace:
    source = tmp_path / "input.csv"
    frame.to_csv(source, index=False)
    root = create_project(tmp_path / "project", data=source, target=target)
    update_config_file(root / "mlwizard.toml", {"discovery": discovery})
    return Workspace(root)


def _blobs(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Three well-separated groups in two numerics, a noise numeric, and a categorical that
    follows the group; some values missing."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, rows)
    centres = np.array([[0.0, 0.0], [8.0, 8.0], [-8.0, 8.0]])
    xy = centres[group] + rng.normal(0, 1.0, (rows, 2))
    frame = pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "noise": rng.normal(0, 0.1, rows),
            "colour": np.array(["red", "green", "blue"])[group],
        }
    )
    frame.loc[rng.random(rows) < 0.05, "x"] = np.nan
    return frame


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = _project(tmp_path_factory.mktemp("clustering"), _blobs(), "", {"approach": "clustering"})
    report = runner.run(ws, runner.PHASE_NAMES, time_budget=BUDGET)  # all five phases
    assert report.error is None, report.error
    return ws


def test_clustering_is_monitored_for_drift(clustered: Workspace) -> None:
    operations = clustered.read_checkpoint("operations")
    assert operations is not None and operations.status == "done"
    drift = json.loads(clustered.resolve(operations.outputs["drift"]).read_text())
    assert {"x", "y", "colour"} <= set(drift["features"])


def test_clustering_without_a_target_runs_to_a_service(clustered: Workspace) -> None:
    discovery = clustered.read_checkpoint("discovery")
    model = clustered.read_checkpoint("model")
    assert discovery is not None and model is not None
    assert discovery.metrics["task"] == "clustering" and discovery.metrics["target"] == ""
    assert model.metrics["clusters"] == 3  # chosen by silhouette / BIC, not configured
    board = json.loads((clustered.artifact_dir("model") / "leaderboard.json").read_text())
    assert {r["name"] for r in board["rows"]} == {"kmeans", "minibatch_kmeans", "gaussian_mixture"}
    evaluation = json.loads((clustered.artifact_dir("model") / "evaluation.json").read_text())
    profiles = evaluation["profiles"]
    assert (
        sum(p["rows"] for p in profiles)
        == pq.ParquetFile(clustered.artifact_dir("data") / "train.parquet").metadata.num_rows
    )
    # Each cluster is one colour: the profile names it, with its share.
    assert sorted(p["categorical"]["colour"]["top"] for p in profiles) == ["blue", "green", "red"]
    assert all(p["categorical"]["colour"]["share"] == 1.0 for p in profiles)


def test_service_returns_the_cluster_ids_of_the_onnx_model(
    clustered: Workspace, tmp_path: Path
) -> None:
    service = clustered.artifact_dir("deploy") / "service"
    model_dir = service / "models" / "champion"  # the bundle serves this folder
    schema = Schema.load(model_dir / "schema.json")
    test = pd.read_parquet(clustered.artifact_dir("data") / "test.parquet")
    expected = predict_onnx(
        make_session(model_dir / "model.onnx"), feature_frame(test, schema), schema
    )
    ids = np.asarray(expected["label"]).ravel().tolist()
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in test.to_dict("records")
    ]
    with running_service(service, tmp_path / "uvicorn.log") as url:
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=30).json()
    served = answer["predictions"]
    assert [p["cluster"] for p in served] == ids
    assert [p["prediction"] for p in served] == ids
    assert len(set(ids)) == 3


def test_anomaly_ranks_the_rare_labelled_class_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    normal, rare = 900, 40
    frame = pd.DataFrame(
        {
            "amount": np.r_[rng.normal(50, 10, normal), rng.normal(140, 15, rare)],
            "hour": np.r_[rng.normal(14, 3, normal), rng.normal(3, 1, rare)],
            "items": np.r_[rng.poisson(3, normal), rng.poisson(12, rare)].astype(float),
            "shop": rng.choice(["a", "b", "c"], normal + rare),
            "fraud": ["ok"] * normal + ["fraud"] * rare,
        }
    ).sample(frac=1.0, random_state=0)
    ws = _project(tmp_path, frame, "fraud", {"approach": "anomaly"})
    report = runner.run(ws, ["discovery", "data", "model"], time_budget=BUDGET)
    assert report.error is None, report.error
    discovery = ws.read_checkpoint("discovery")
    assert discovery is not None
    assert discovery.metrics["anomaly_class"] == "fraud"
    assert discovery.metrics["suggestion"]["approach"] == "anomaly"  # 4% of rows: a rare label
    schema = Schema.load(ws.artifact_dir("data") / "schema.json")
    assert "fraud" not in {f.name for f in schema.features}  # the label only evaluates
    model = ws.read_checkpoint("model")
    assert model is not None
    assert model.metrics["test"]["roc_auc"] > 0.95
    ranking = model.metrics["ranking"]
    assert ranking["precision_at_n"] >= 0.75  # the labelled anomalies fill the top of the list
    assert 0.005 <= model.metrics["contamination"] <= 0.2  # estimated without the label
    assert {r["name"] for r in model.metrics["candidates"]} == {
        "isolation_forest",
        "robust_distance",
    }
