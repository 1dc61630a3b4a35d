"""The HTTP contract, in process (FastAPI's TestClient runs the app's lifespan)."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

BUNDLE = Path(__file__).resolve().parents[1]
SAMPLES = json.loads((BUNDLE / "models/champion/samples.json").read_text())


@pytest.fixture(scope="module")
def client():
    from app import create_app

    with TestClient(create_app()) as client:
        yield client


def test_ready_and_health(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["status"] == "ready"


def test_predict_answers_every_row(client: TestClient) -> None:
    response = client.post(
        "/predict", json={"rows": SAMPLES["rows"]}, headers={"X-Request-ID": "t-1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "t-1"
    body = response.json()
    assert len(body["predictions"]) == len(SAMPLES["rows"])
    for row in body["predictions"]:
        assert row["prediction"] is not None
        for p in (row.get("proba") or {}).values():
            assert 0.0 <= p <= 1.0


def test_bad_rows_get_422_naming_the_column(client: TestClient) -> None:
    row = dict(SAMPLES["rows"][0])
    name = next(iter(row))
    row[name] = [1, 2]  # neither a number nor a string
    response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 422
    assert name in response.json()["detail"][0]["loc"]


def test_oversized_body_gets_413(client: TestClient) -> None:
    import app

    limit = app.Settings.from_env().max_body_bytes
    response = client.post(
        "/predict", content=b" " * (limit + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_metrics_carry_the_model_label(client: TestClient) -> None:
    client.post("/predict", json={"rows": SAMPLES["rows"][:1]})
    text = client.get("/metrics").text
    assert 'model_predictions_total{model="champion",served="true"}' in text
