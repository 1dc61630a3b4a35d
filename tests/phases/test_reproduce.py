"""Issue 13, item 4: a model version is reproducible from its manifest -- the chosen run's model,
the tested refit and the deployed refit -- and identical models give identical ONNX bytes."""

from __future__ import annotations

import hashlib
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
    fit in 10 s (on a quiet machine it can fit in 20); the larger budgets are for a machine so
    busy that nothing fits in the smaller ones."""
    ws = real_project(tmp_path_factory.mktemp("bound"), wide_frame(3000), MODEL)
    for budget in (10, 20, 60):
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
    # Every final fit can be replayed; an ensemble is rebuilt from its members.
    assert done and all(e["recipe"] or e["members"] for e in done)
    # Every configuration tried, in order, with how far it got (on a very busy machine only the
    # insured default runs may have finished: then there is no search to list).
    assert all({"params", "folds_scored", "pruned"} <= t.keys() for e in done for t in e["trials"])
    done = cli.invoke(app, ["reproduce", "-p", str(bound_project)])
    assert done.exit_code == 0, done.output
    assert "chosen run (fitted on train): ONNX test predictions identical" in done.output
    assert "chosen run (fitted on train): ONNX bytes identical" in done.output
    refits = _manifest(bound_project)["refits"]
    if refits["test"] is None:  # the clock left no time to refit: said, nothing rebuilt for it
        assert refits["notes"] and "nothing else to rebuild" in done.output
    else:
        assert "tested model (refit on train+valid" in done.output
    assert "artifacts/model/model.onnx: the deployed model recorded" in done.output


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
    errors = [line for line in done.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NOT identical" in errors[0], done.output


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
    _reproduces_the_refits(tmp_path / "first" / "project")


def _reproduces_the_refits(root: Path) -> None:
    """`reproduce` rebuilds the tested and the deployed refits, and names the one that differs."""
    record = _manifest(root)
    refits = record["refits"]
    assert refits["test"]["fit_on"] == ["train", "valid"]
    assert refits["deployed"]["fit_on"] == ["train", "valid", "test"]
    deployed = (root / "artifacts" / "model" / "model.onnx").read_bytes()
    assert refits["deployed"]["onnx_sha256"] == refits["model_onnx_sha256"]
    assert refits["model_onnx_sha256"] == hashlib.sha256(deployed).hexdigest()
    done = cli.invoke(app, ["reproduce", "-p", str(root)])
    assert done.exit_code == 0, done.output
    for model in (
        "tested model (refit on train+valid, ",
        "deployed model (refit on train+valid+test, ",
    ):
        assert f"{model}" in done.output
        lines = [line for line in done.output.splitlines() if model in line]
        assert any("ONNX bytes identical" in line for line in lines), done.output
        assert any("ONNX test predictions identical" in line for line in lines), done.output
    assert "identical: chosen run, tested model, deployed model" in done.output

    path = root / "artifacts" / "model" / "manifest.json"
    original = path.read_text()
    refits["deployed"]["onnx_sha256"] = "0" * 64
    path.write_text(json.dumps(record))
    try:
        done = cli.invoke(app, ["reproduce", "-p", str(root)])
    finally:
        path.write_text(original)
    assert done.exit_code == 1
    errors = [line for line in done.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "deployed model" in errors[0], done.output


def _manifest_incomplete(root: Path) -> list[str]:
    plan = _manifest(root / "project")["plan"]
    return [e["candidate"] for e in plan if e["status"] == "done" and not e["complete"]]
