"""Issue 13, item 4: a model version is reproducible from its manifest, and identical models give
identical ONNX bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.model import real_project, wide_frame
from mlwizard.cli.app import app
from mlwizard.core import runner
from mlwizard.core.kernel.errors import QualityGateError
from mlwizard.core.model.session import TRIALS_ENV

cli = CliRunner()
MODEL = {"candidates": ["linear", "hist_gradient_boosting"], "workers": 2}


@pytest.fixture(scope="module")
def bound_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HistGradientBoosting's full search (16 configurations x 5 folds on 2,400 rows) does not
    fit in these budgets; the larger one is for a machine so busy that nothing fits in 20 s."""
    ws = real_project(tmp_path_factory.mktemp("bound"), wide_frame(3000), MODEL)
    for budget in (20, 60):
        try:
            runner.run_phase(ws, "model", time_budget=budget)
            break
        except QualityGateError as exc:
            assert "time budget" in str(exc)
    return ws.root


def _manifest(root: Path) -> dict:
    return json.loads((root / "artifacts" / "model" / "manifest.json").read_text())


def test_reproduce_rebuilds_a_search_the_budget_cut(bound_project: Path) -> None:
    plan = _manifest(bound_project)["plan"]
    assert any(e["status"] == "skipped" or not e["complete"] for e in plan)  # the clock bound it
    done = [e for e in plan if e["status"] == "done"]
    assert done and all(e["recipe"] for e in done)  # every final fit can be replayed
    # Every configuration tried, in order, with how far it got (on a very busy machine only the
    # insured default runs may have finished: then there is no search to list).
    assert all({"params", "folds_scored", "pruned"} <= t.keys() for e in done for t in e["trials"])
    done = cli.invoke(app, ["reproduce", "-p", str(bound_project)])
    assert done.exit_code == 0, done.output
    assert "ONNX test predictions: identical" in done.output and "identical" in done.output


def test_reproduce_says_what_differs(bound_project: Path) -> None:
    path = bound_project / "artifacts" / "model" / "manifest.json"
    original = path.read_text()
    record = json.loads(original)
    record["result"]["test_predictions_sha256"] = "0" * 64
    path.write_text(json.dumps(record))
    try:
        done = cli.invoke(app, ["reproduce", "-p", str(bound_project)])
    finally:
        path.write_text(original)
    assert done.exit_code == 1
    assert "differs" in done.output and "ONNX test predictions" in done.output


@pytest.mark.timeout(900)  # two model phases on a shared 2-core machine
def test_two_runs_under_a_budget_that_does_not_bind_are_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    frame = wide_frame(400, seed=3)
    outcomes = []
    for name in ("first", "second"):
        ws = real_project(tmp_path / name, frame, MODEL)
        outcome = runner.run_phase(ws, "model", time_budget=600)
        board = json.loads((ws.artifact_dir("model") / "leaderboard.json").read_text())
        outcomes.append(
            (
                (ws.artifact_dir("model") / "model.onnx").read_bytes(),
                [(r["name"], r["score"], r["cv_mean"]) for r in board["rows"]],
                outcome.metrics["test"],
                outcome.metrics["best_model"],
            )
        )
    first, second = outcomes
    assert not _manifest_incomplete(tmp_path / "first")
    assert first[0] == second[0]  # byte-identical model.onnx
    assert first[1:] == second[1:]


def _manifest_incomplete(root: Path) -> list[str]:
    plan = _manifest(root / "project")["plan"]
    return [e["candidate"] for e in plan if e["status"] == "done" and not e["complete"]]
