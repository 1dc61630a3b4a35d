"""A high-cardinality categorical through the real data and model phases: target-encoded inside
every CV fold and refit, deployed through ONNX with parity, served from the raw strings."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from helpers.model import real_project
from mlwizard.core import runner
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.model import cardinality, insurance
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.serving.predictor import Predictor

CITIES = 300


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.integers(0, CITIES, rows)
    effect = np.random.default_rng(99).normal(size=CITIES)[city]  # a fixed effect per city
    amount = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "amount": amount,
            "shop": rng.choice(["north", "south", "east"], rows),
            "city": [f"city {c}" for c in city],
        }
    )
    score = 1.5 * effect + 0.5 * amount + rng.normal(0, 0.3, rows)
    frame["label"] = np.where(score > 0.3, "yes", "no")
    return frame


@pytest.mark.timeout(600)  # a data and a model phase on a shared 2-core machine
def test_a_city_with_300_values_is_target_encoded_through_cv_export_and_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    model = {"candidates": ["dummy", "hist_gradient_boosting"], "workers": 1}
    ws = real_project(tmp_path, _frame(1500, 0), model)
    # Above the insurance's cap: on a busy machine a binding budget lets the default-settings
    # run (no CV) stand in, and this test is about the cross-validated one.
    budget = insurance.MAX_BUDGET_S + 100
    outcome = runner.run_phase(ws, "model", time_budget=budget)
    assert outcome.status == "done", outcome.error
    schema = Schema.load(ws.resolve(ws.read_checkpoint("data").outputs["schema"]))
    city = next(f for f in schema.features if f.name == "city")
    assert city.kind == "categorical"  # the service-facing contract: a raw string column

    board = json.loads((ws.root / "artifacts" / "model" / "leaderboard.json").read_text())
    run = next(r for r in board["rows"] if r["name"] == "hist_gradient_boosting")
    # CV scored the encoded pipeline (on a busy machine the budget may stop it after one fold).
    assert run["deployable"] and run["cv"]["scores"], run
    assert "categories" in run["parity"]["splits"], run["parity"]
    deployed = joblib.load(ws.resolve(outcome.artifacts["pipeline"]))
    assert cardinality.encoded(deployed) == [city.input]
    parity = outcome.metrics["parity"]
    assert parity["ok"] and "categories" in parity["splits"], parity

    schema_file = ws.resolve(ws.read_checkpoint("data").outputs["schema"])
    predictor = Predictor(ws.resolve(outcome.artifacts["onnx"]), schema_file)
    records = [
        {"amount": 0.2, "shop": "north", "city": "city 7"},
        {"amount": 0.2, "shop": "north", "city": "a city nobody has seen"},
        {"amount": None, "shop": None, "city": None},
    ]
    served = predictor.predict_records(records)
    frame = pd.DataFrame(records).assign(label="yes")
    native = deployed.predict_proba(feature_frame(frame, schema))[:, 1]
    got = np.array([r["proba"]["yes"] for r in served])
    assert np.allclose(got, native, atol=1e-5), (got, native)
