"""A bundle with two real models: shadow, canary, the prediction log's exact shape, the cache,
and `write_bundle` as the operations phase calls it."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from helpers.deploy import Project, build_project, running_service
from mlwizard.core.deploy import bundle
from mlwizard.core.deploy import phase as deploy
from mlwizard.core.kernel.config import Config, DeploySection
from mlwizard.core.kernel.errors import BadInputError

LOG_KEYS = [
    "ts",
    "request_id",
    "model",
    "version",
    "served",
    "features",
    "prediction",
    "probabilities",
]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path, Path]:
    """A champion (linear) and a challenger (gradient boosting) deployed from the same data."""
    root = tmp_path_factory.mktemp("two")
    champion = build_project(root / "champion")
    deploy.run(champion.ctx)
    challenger = build_project(root / "challenger", candidate="hist_gradient_boosting")
    deploy.run(challenger.ctx)
    folder = bundle.write_bundle(
        champion.ctx.workspace,
        champion.service / "models" / "champion",
        challenger.service / "models" / "champion",
        target=root / "bundle",
        config=Config(deploy=DeploySection(service_name="Churn API", shadow=True)),
    )
    return champion, folder, root


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_lines(path: Path, count: int) -> list[dict]:
    """The log is written after the answer is sent (a background task): wait for it, bounded."""
    for _ in range(100):
        if path.exists() and len(path.read_text().splitlines()) >= count:
            break
        time.sleep(0.05)
    return _log(path)


def test_write_bundle_carries_both_models(two_models: tuple[Project, Path, Path]) -> None:
    _, folder, _ = two_models
    for name in ("champion", "challenger"):
        for file in ("model.onnx", "schema.json", "metadata.json", "samples.json"):
            assert (folder / "models" / name / file).is_file()
    assert json.loads((folder / "bundle.json").read_text())["shadow"] is True
    champion = json.loads((folder / "models/champion/metadata.json").read_text())
    challenger = json.loads((folder / "models/challenger/metadata.json").read_text())
    assert (champion["model"], challenger["model"]) == ("linear", "hist_gradient_boosting")


def test_write_bundle_refuses_a_folder_that_is_not_a_model(
    two_models: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, _, _ = two_models
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.onnx").write_bytes(b"x")
    with pytest.raises(BadInputError, match=r"not a model folder \(missing schema\.json, metadata"):
        bundle.write_bundle(project.ctx.workspace, tmp_path / "half", target=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_shadow_scores_every_request_and_logs_both_models(
    two_models: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, folder, _ = two_models
    log = tmp_path / "logs" / "predictions.ndjson"
    rows = project.test_rows()[:3]
    with running_service(folder, tmp_path / "uvicorn.log", env={"PREDICTION_LOG": str(log)}) as url:
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, headers={"X-Request-ID": "r-1"})
        assert answer.status_code == 200 and answer.json()["model"] == "champion"
        lines = _wait_lines(log, 6)
        metrics = httpx.get(f"{url}/metrics").text
    assert len(lines) == 6
    assert all(list(line) == LOG_KEYS for line in lines)
    assert [(x["model"], x["served"]) for x in lines] == [("champion", True)] * 3 + [
        ("challenger", False)
    ] * 3
    versions = {
        name: json.loads((folder / "models" / name / "metadata.json").read_text())["model_version"]
        for name in ("champion", "challenger")
    }
    for line in lines:
        assert line["request_id"] == "r-1"
        assert line["version"] == versions[line["model"]]
        assert datetime.fromisoformat(line["ts"]).tzinfo is not None
        assert set(line["probabilities"]) == {"churn", "stay"}
        assert line["prediction"] in {"churn", "stay"}
    assert [x["features"] for x in lines[:3]] == rows == [x["features"] for x in lines[3:]]
    served = answer.json()["predictions"]
    assert [x["prediction"] for x in lines[:3]] == [p["prediction"] for p in served]
    assert 'model_predictions_total{model="challenger",served="false"} 3.0' in metrics
    assert 'model_predictions_total{model="champion",served="true"} 3.0' in metrics
    assert 'model_ready{model="challenger"} 1.0' in metrics


def _bucket(request_id: str) -> float:
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2.0**64


def test_canary_answers_a_share_by_request_id(
    two_models: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, folder, _ = two_models
    log = tmp_path / "predictions.ndjson"
    env = {"PREDICTION_LOG": str(log), "SHADOW": "false", "CANARY_SHARE": "0.5"}
    row = project.test_rows()[0]
    ids = [f"req-{i}" for i in range(30)]
    with running_service(folder, tmp_path / "uvicorn.log", env=env) as url:
        models = {}
        for request_id in ids:
            answer = httpx.post(
                f"{url}/predict", json={"rows": [row]}, headers={"X-Request-ID": request_id}
            )
            models[request_id] = answer.json()["model"]
        again = httpx.post(f"{url}/predict", json={"rows": [row]}, headers={"X-Request-ID": ids[0]})
        lines = _wait_lines(log, len(ids) + 1)
        metrics = httpx.get(f"{url}/metrics").text
    expected = {i: "challenger" if _bucket(i) < 0.5 else "champion" for i in ids}
    assert models == expected and set(models.values()) == {"champion", "challenger"}
    assert again.json()["model"] == models[ids[0]]  # the same id goes to the same model
    assert len(lines) == len(ids) + 1 and all(line["served"] for line in lines)
    assert {line["request_id"]: line["model"] for line in lines} == models
    challenged = sum(1 for m in models.values() if m == "challenger")
    pattern = (
        r'http_requests_total\{method="POST",model="challenger",path="/predict",status="200"\}'
    )
    found = re.search(pattern + r" (\S+)", metrics)
    assert found and float(found.group(1)) >= challenged


def test_the_cache_answers_repeated_rows(
    two_models: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, folder, _ = two_models
    rows = project.test_rows()[:2]
    env = {"PREDICTION_CACHE_SIZE": "8", "SHADOW": "false"}
    with running_service(folder, tmp_path / "uvicorn.log", env=env) as url:
        first = httpx.post(f"{url}/predict", json={"rows": rows}).json()
        second = httpx.post(f"{url}/predict", json={"rows": [rows[1], rows[0]]}).json()
        metrics = httpx.get(f"{url}/metrics").text
    assert second["predictions"] == first["predictions"][::-1]
    assert 'model_cache_hits_total{model="champion"} 2.0' in metrics
