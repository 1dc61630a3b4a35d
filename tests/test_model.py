"""The model phase end to end on small synthetic projects: real training, export and parity."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwizard.core import events as ev
from mlwizard.core.config import Config, ModelSection, ProjectSection
from mlwizard.core.errors import BadInputError, CancelledError, MlwizardError
from mlwizard.core.features import feature_frame
from mlwizard.core.ml import onnx_export
from mlwizard.core.ml.experiments import STORE_FILE, ExperimentStore
from mlwizard.core.ml.workers import plan
from mlwizard.core.phases import model
from mlwizard.core.pipeline import PhaseContext, PhaseResult
from mlwizard.core.schema import Feature, Schema, input_names
from mlwizard.core.tasks import METRICS
from mlwizard.core.workspace import Checkpoint, Workspace

FEATURES = {
    "age years": "numeric",
    "income": "numeric",
    "visits": "numeric",
    "city": "categorical",
    "plan": "categorical",
}
PARITY_TOLERANCE = 1e-4
CANDIDATES = ("dummy", "linear", "hist_gradient_boosting")


def _table(task: str, rows: int, rng: np.random.Generator, unseen: bool) -> pd.DataFrame:
    """Features with NaN and null categories; `unseen` adds categories training never saw."""
    age = rng.normal(40, 12, rows)
    income = rng.lognormal(10, 0.5, rows)
    visits = rng.integers(0, 30, rows)
    city = rng.choice(np.array(["paris", "lyon", "nice", "lille"]), rows).astype(object)
    plan_ = rng.choice(np.array(["free", "pro", "team"]), rows).astype(object)
    signal = 0.08 * (age - 40) + 1.5 * (city == "paris") - 1.0 * (plan_ == "free") + visits / 15
    age[rng.random(rows) < 0.1] = np.nan
    income[rng.random(rows) < 0.1] = np.nan
    city[rng.random(rows) < 0.1] = None
    if unseen:
        city[rng.random(rows) < 0.1] = "marseille"
        plan_[rng.random(rows) < 0.05] = "enterprise"
    if task == "binary":
        target: Any = np.where(rng.random(rows) < 1 / (1 + np.exp(-(signal - 1))), "churn", "stay")
    elif task == "multiclass":
        target = np.digitize(signal + rng.normal(0, 0.5, rows), [0.3, 1.3]).astype(np.int64)
        target = np.array(["low", "mid", "high"], dtype=object)[target]
    else:
        target = 20 * signal + rng.normal(0, 2, rows)
    visits_nullable = pd.array(visits, dtype="Int64")
    visits_nullable[rng.random(rows) < 0.05] = pd.NA  # a BIGINT column with nulls
    return pd.DataFrame(
        {
            "age years": age,
            "income": income,
            "visits": visits_nullable,
            "city": city,
            "plan": plan_,
            "target": target,
        }
    )


def make_project(
    root: Path,
    task: str,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    seed: int = 7,
    time_budget: float = 300.0,
    candidates: tuple[str, ...] = CANDIDATES,
) -> tuple[PhaseContext, list[ev.Event]]:
    """A project whose discovery and data phases are faked by checkpoints over real files."""
    rng = np.random.default_rng(0)
    data_dir = root / "artifacts" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for name, rows, unseen in (("train", 600, False), ("valid", 250, True), ("test", 250, True)):
        path = data_dir / f"{name}.parquet"
        _table(task, rows, rng, unseen).to_parquet(path, index=False)
        outputs[name] = str(path.relative_to(root))
    columns = list(FEATURES)
    inputs = input_names(columns)
    features = [Feature(c, FEATURES[c], i) for c, i in zip(columns, inputs, strict=True)]
    classes = {"binary": ["churn", "stay"], "multiclass": ["high", "low", "mid"]}.get(task)
    Schema("target", task, features, classes).save(data_dir / "schema.json")  # type: ignore[arg-type]
    outputs["schema"] = "artifacts/data/schema.json"

    metric = metric or {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "r2"}[task]
    discovery = Checkpoint(
        "discovery",
        "done",
        {},
        "fp-discovery",
        metrics={
            "task": task,
            "metric": metric,
            "metric_direction": METRICS[task][metric],  # type: ignore[index]
            "success_threshold": threshold,
        },
    )
    data = Checkpoint("data", "done", {}, f"fp-data-{task}", outputs=outputs)
    config = Config(
        project=ProjectSection(seed=seed),
        model=ModelSection(candidates=candidates, workers=2, time_budget=time_budget),
    )
    events: list[ev.Event] = []
    ctx = PhaseContext(
        "model", Workspace(root), config, {"discovery": discovery, "data": data}, emit=events.append
    )
    return ctx, events


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[PhaseContext, PhaseResult, list]:
    ctx, events = make_project(tmp_path_factory.mktemp("binary"), "binary")
    return ctx, model.run(ctx), events


def _rows(result: PhaseResult) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result.metrics["candidates"]}


def _candidate_parity(ctx: PhaseContext, name: str, split: str) -> onnx_export.Parity:
    """Parity of a saved candidate on a split, checked again from its files."""
    import joblib

    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(pd.read_parquet(ctx.upstream_artifact("data", split)), schema)
    candidates = ctx.workspace.artifact_dir("model") / "candidates"
    pipeline = joblib.load(candidates / f"{name}.joblib")
    return onnx_export.check_parity(
        pipeline, (candidates / f"{name}.onnx").read_bytes(), frame, schema
    )


def test_binary_trains_every_candidate_and_keeps_a_deployable_best(binary):
    ctx, result, _ = binary
    rows = _rows(result)
    assert list(rows) == list(CANDIDATES)
    assert all(row["status"] == "done" for row in rows.values())
    assert not rows["dummy"]["deployable"]
    assert "no ONNX converter for DummyClassifier" in rows["dummy"]["reason"]
    assert rows["linear"]["deployable"] and rows["hist_gradient_boosting"]["deployable"]

    best = result.metrics["best_model"]
    assert rows[best]["deployable"] and best != "dummy"
    assert result.metrics["parity"]["max_abs_diff"] <= PARITY_TOLERANCE
    validation = result.metrics["validation"]["linear"]
    assert {"roc_auc", "accuracy", "f1", "log_loss"} <= validation.keys()
    test = result.metrics["test"]
    for name in ("roc_auc", "accuracy", "f1", "balanced_accuracy"):
        assert 0.0 <= test[name] <= 1.0
    assert result.metrics["baseline"] == pytest.approx(0.5)
    assert result.gate_failures == []
    for name in ("onnx", "pipeline", "leaderboard"):
        assert result.outputs[name].is_file()
    assert (
        result.outputs["onnx"].read_bytes()
        == (ctx.workspace.artifact_dir("model") / "candidates" / f"{best}.onnx").read_bytes()
    )


@pytest.mark.parametrize("name", ["linear", "hist_gradient_boosting"])
def test_exports_match_pipelines_on_nan_null_and_unseen_categories(binary, name):
    ctx, _, _ = binary
    test = pd.read_parquet(ctx.upstream_artifact("data", "test"))
    assert test["age years"].isna().any() and test["city"].isna().any()
    assert (test["city"] == "marseille").any()
    parity = _candidate_parity(ctx, name, "test")
    assert parity.ok and parity.max_abs_diff <= PARITY_TOLERANCE
    assert parity.label_agreement is not None and parity.label_agreement >= 0.99


def test_each_run_is_logged_and_reported(binary):
    ctx, result, events = binary
    runs = ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs(
        result.metrics["phase_run_id"]
    )
    assert sorted(r["candidate"] for r in runs) == sorted(CANDIDATES)
    by_name = {r["candidate"]: r for r in runs}
    assert by_name["linear"]["data_fingerprint"] == "fp-data-binary"
    assert by_name["linear"]["seed"] == 7
    assert by_name["linear"]["onnx_path"] == "artifacts/model/candidates/linear.onnx"
    assert by_name["dummy"]["onnx_path"] is None and by_name["dummy"]["reason"]
    assert by_name["hist_gradient_boosting"]["params"]["random_state"] == 7
    _, expected_threads = plan(2, len(CANDIDATES))
    assert all(r["metrics"]["threads"] <= expected_threads for r in runs)

    finished = [e.data for e in events if e.data.get("status")]
    assert sorted(d["candidate"] for d in finished) == sorted(CANDIDATES)
    assert {"candidate", "status", "score", "duration_s", "deployable"} <= finished[0].keys()


def test_same_seed_gives_identical_metrics_and_an_impossible_threshold_fails(binary, tmp_path):
    _, first, _ = binary
    ctx, _ = make_project(tmp_path, "binary", threshold=1.01)
    second = model.run(ctx)
    assert second.metrics["validation"] == first.metrics["validation"]
    assert second.metrics["test"] == first.metrics["test"]
    assert len(second.gate_failures) == 1
    assert "below the success threshold 1.01" in second.gate_failures[0]


def test_regression(tmp_path):
    ctx, _ = make_project(tmp_path, "regression", metric="rmse")
    result = model.run(ctx)
    rows = _rows(result)
    assert all(row["status"] == "done" for row in rows.values())
    assert "DummyRegressor" in rows["dummy"]["reason"]
    assert {"r2", "rmse", "mae"} <= result.metrics["test"].keys()
    assert result.metrics["test"]["rmse"] > 0
    assert result.metrics["metric_direction"] == "minimize"
    assert (
        result.metrics["validation"][result.metrics["best_model"]]["rmse"]
        < result.metrics["baseline"]
    )
    assert result.gate_failures == []
    for name in ("linear", "hist_gradient_boosting"):
        parity = _candidate_parity(ctx, name, "test")
        assert parity.ok, parity


def test_multiclass(tmp_path):
    ctx, _ = make_project(tmp_path, "multiclass")
    result = model.run(ctx)
    assert all(row["status"] == "done" for row in result.metrics["candidates"])
    test = result.metrics["test"]
    for name in ("accuracy", "f1_macro", "roc_auc"):
        assert 0.0 <= test[name] <= 1.0
    session = onnx_export.make_session(result.outputs["onnx"])
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    frame = feature_frame(pd.read_parquet(ctx.upstream_artifact("data", "test")), schema)
    outputs = onnx_export.predict_onnx(session, frame, schema)
    assert outputs["probabilities"].shape == (len(frame), 3)
    assert outputs["label"].dtype == np.int64


def test_time_budget_too_short_for_anything(tmp_path):
    ctx, _ = make_project(tmp_path, "binary", time_budget=0.3)
    with pytest.raises(MlwizardError, match="no candidate finished within the time budget"):
        model.run(ctx)
    runs = ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs()
    assert sorted(r["status"] for r in runs) == ["skipped"] * len(CANDIDATES)


def test_no_deployable_candidate_is_an_error(tmp_path):
    ctx, _ = make_project(tmp_path, "binary", candidates=("dummy",))
    with pytest.raises(MlwizardError, match="no candidate can be deployed: dummy: done"):
        model.run(ctx)
    assert (ctx.workspace.artifact_dir("model") / "leaderboard.json").is_file()


def test_cancelled_before_start(tmp_path):
    ctx, _ = make_project(tmp_path, "binary")
    ctx.cancel = threading.Event()
    ctx.cancel.set()
    with pytest.raises(CancelledError):
        model.run(ctx)


def test_cancel_while_training_stops_the_pool_and_logs_what_finished(tmp_path):
    ctx, _ = make_project(tmp_path, "binary")
    ctx.cancel = threading.Event()

    def cancel_after_first_run(event: ev.Event) -> None:
        if event.data.get("status"):
            ctx.cancel.set()

    ctx.emit = cancel_after_first_run
    with pytest.raises(CancelledError):
        model.run(ctx)
    statuses = [r["status"] for r in ExperimentStore(ctx.workspace.state_dir / STORE_FILE).runs()]
    assert len(statuses) == len(CANDIDATES) and "done" in statuses
    assert set(statuses) <= {"done", "cancelled"}


def test_unknown_candidate_is_a_readable_error(tmp_path):
    ctx, _ = make_project(tmp_path, "binary", candidates=("linear", "svm"))
    with pytest.raises(BadInputError, match="unknown svm"):
        model.run(ctx)


def test_feed_maps_missing_strings_to_the_token():
    schema = Schema(
        "y",
        "binary",
        [Feature("c", "categorical", "f000_c"), Feature("x", "numeric", "f001_x")],
        [0, 1],
    )
    frame = pd.DataFrame(
        {"f000_c": np.array(["a", None, np.nan], dtype=object), "f001_x": [1.0, np.nan, 2.0]}
    )
    feed = onnx_export.onnx_feed(frame, schema)
    assert feed["f000_c"].ravel().tolist() == ["a", schema.missing_token, schema.missing_token]
    assert feed["f001_x"].dtype == np.float32 and feed["f001_x"].shape == (3, 1)
