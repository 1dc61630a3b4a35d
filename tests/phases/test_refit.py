"""The refits after the choice: train + validation for the test score, every labelled row for
the deployed model, each predicting through ONNX with parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest

from helpers.model import fake_project
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export import onnx_export
from mlwizard.core.export.parity import check_parity
from mlwizard.core.kernel.config import ModelSection
from mlwizard.core.model import phase as model
from mlwizard.core.model.session import TRIALS_ENV


@pytest.fixture(autouse=True)
def _one_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")


def _categories(pipeline: Any) -> set[str]:
    """Every category any encoder inside `pipeline` (or an ensemble's members) learned."""
    found: set[str] = set()
    stack = [pipeline]
    while stack:
        item = stack.pop()
        if hasattr(item, "categories_"):
            for values in item.categories_:
                found |= {str(v) for v in values}
        for attribute in ("steps", "transformers_", "estimators_"):
            for child in getattr(item, attribute, None) or []:
                stack.append(child[1] if isinstance(child, tuple) else child)
    return found


def _split_rows(ctx: Any) -> pd.DataFrame:
    parts = [pd.read_parquet(ctx.upstream_artifact("data", n)) for n in ("train", "valid", "test")]
    return pd.concat(parts, ignore_index=True)


def test_deployed_model_is_refitted_on_every_labelled_row_with_onnx_parity(
    tmp_path: Path,
) -> None:
    ctx, _ = fake_project(tmp_path, "binary", candidates=("dummy", "hist_gradient_boosting"))
    result = model.run(ctx)
    training = result.metrics["training"]
    assert training["deployed_fit_on"] == "train+valid+test"
    assert training["test_model_fit_on"] == "train+valid"
    assert training["rows"] == {"train": 600, "train+valid": 850, "train+valid+test": 1100}
    # "marseille" and "enterprise" appear in the validation and test rows only.
    deployed = joblib.load(result.outputs["pipeline"])
    assert {"marseille", "enterprise"} <= _categories(deployed)
    run = joblib.load(_run(ctx, result.metrics["best_model"]))
    assert "marseille" not in _categories(run)
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(_split_rows(ctx), schema)
    parity = check_parity(deployed, result.outputs["onnx"], frame, schema)
    assert parity.ok and parity.rows == 1100, parity
    assert result.metrics["parity"]["max_abs_diff"] <= parity.tolerance
    evaluation = json.loads(result.outputs["evaluation"].read_text())
    assert evaluation["test"]["model_fit_on"] == "train+valid"


def _run(ctx: Any, name: str) -> Path:
    """The chosen run's own pipeline file (fitted on the training split only)."""
    board = json.loads((ctx.workspace.artifact_dir("model") / "leaderboard.json").read_text())
    row = next(r for r in board["rows"] if r["name"] == name)
    return ctx.workspace.resolve(row["onnx"]).with_suffix(".joblib")


def test_refit_full_false_deploys_the_tested_train_and_validation_model(tmp_path: Path) -> None:
    ctx, _ = fake_project(tmp_path, "regression", candidates=("dummy", "linear"))
    ctx.config = type(ctx.config)(
        project=ctx.config.project,
        discovery=ctx.config.discovery,
        split=ctx.config.split,
        model=ModelSection(
            candidates=("dummy", "linear"), workers=2, time_budget=300.0, refit_full=False
        ),
    )
    result = model.run(ctx)
    training = result.metrics["training"]
    assert training["deployed_fit_on"] == "train+valid" == training["test_model_fit_on"]
    assert training["deployed_is_tested_model"] and "train+valid+test" not in training["rows"]
    deployed = joblib.load(result.outputs["pipeline"])
    assert "marseille" in _categories(deployed)
    # The test score in the metrics is the deployed model's own, through its ONNX graph.
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    test = pd.read_parquet(ctx.upstream_artifact("data", "test"))
    session = onnx_export.make_session(result.outputs["onnx"])
    predicted = onnx_export.predict_onnx(session, feature_frame(test, schema), schema)
    from mlwizard.core.model.metrics import evaluate

    scores = evaluate("regression", test["target"].to_numpy(), predicted["variable"].ravel(), 0)
    assert scores["r2"] == pytest.approx(result.metrics["test"]["r2"], abs=1e-6)
