"""The checkpoint contract, on the real discovery, data and operations phases."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from helpers.frames import synthetic_frame
from mlwizard.cli.app import app
from mlwizard.core import runner
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import (
    BadInputError,
    CancelledError,
    QualityGateError,
    UpstreamNotReadyError,
)
from mlwizard.core.kernel.events import Event
from mlwizard.core.model.session import TRIALS_ENV


def statuses(workspace) -> dict[str, str]:
    return {s.phase: s.status for s in runner.project_status(workspace)}


def test_unchanged_inputs_skip_and_changed_data_reruns(make_project) -> None:
    ws = make_project(synthetic_frame())
    first = runner.run(ws, ["discovery", "data"])
    assert [o.status for o in first.phases.values()] == ["done", "done"]
    checkpoint = ws.read_checkpoint("data")
    assert checkpoint.inputs.keys() >= {"source", "config.data", "upstream.discovery"}

    again = runner.run(ws, ["discovery", "data"])
    assert [o.status for o in again.phases.values()] == ["skipped", "skipped"]
    assert ws.read_checkpoint("data").finished_at == checkpoint.finished_at

    source = ws.source_path(ws.load_config())
    source.write_text(source.read_text().replace("yes", "YES", 5))
    assert statuses(ws)["discovery"] == "stale"
    assert statuses(ws)["data"] == "stale"
    rerun = runner.run(ws, ["discovery", "data"])
    assert [o.status for o in rerun.phases.values()] == ["done", "done"]


def test_config_change_invalidates_the_phase_and_its_dependants(make_project) -> None:
    ws = make_project(synthetic_frame())
    runner.run(ws, ["discovery", "data"])
    update_config_file(ws.config_path, {"split": {"test_fraction": 0.3}})
    state = {s.phase: s for s in runner.project_status(ws)}
    assert state["discovery"].status == "done"
    assert state["data"].status == "stale" and "config.split" in state["data"].reason
    report = runner.run(ws, ["discovery", "data"])
    assert [o.status for o in report.phases.values()] == ["skipped", "done"]


def test_execution_settings_do_not_invalidate(make_project) -> None:
    ws = make_project(synthetic_frame())
    before = runner.current_inputs(ws, ws.load_config(), "model")[0]
    update_config_file(ws.config_path, {"model": {"time_budget": 5, "workers": 1}})
    assert runner.current_inputs(ws, ws.load_config(), "model")[0] == before


def test_phase_with_missing_upstream_names_the_command(make_project) -> None:
    ws = make_project(synthetic_frame())
    with pytest.raises(UpstreamNotReadyError, match=r"needs 'discovery'.*--phase discovery"):
        runner.run_phase(ws, "data")


def test_failure_is_recorded_and_nothing_half_written(make_project) -> None:
    ws = make_project(synthetic_frame())
    source = ws.source_path(ws.load_config())
    synthetic_frame().drop(columns=["label"]).to_csv(source, index=False)  # the target is gone
    report = runner.run(ws, ["discovery"])
    assert isinstance(report.error, BadInputError) and report.exit_code == 2
    assert "target column 'label' not found" in str(report.error)
    checkpoint = ws.read_checkpoint("discovery")
    assert checkpoint.status == "failed" and "label" in checkpoint.error
    assert statuses(ws)["discovery"] == "failed"
    assert not ws.artifact_dir("discovery").exists()


def test_cancel_stops_a_phase_and_it_reruns(make_project) -> None:
    ws = make_project(synthetic_frame())
    runner.run(ws, ["discovery"])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        runner.run_phase(ws, "data", cancel=cancel)
    assert statuses(ws)["data"] == "cancelled"  # issue 9, bug 5: a cancel is not a failure
    assert runner.run(ws, ["data"]).phases["data"].status == "done"


def test_damaged_checkpoint_counts_as_not_run(make_project) -> None:
    ws = make_project(synthetic_frame())
    runner.run(ws, ["discovery"])
    ws.checkpoint_path("discovery").write_text("{ truncated")
    assert statuses(ws)["discovery"] == "pending"


def test_events_narrate_the_run(make_project) -> None:
    ws = make_project(synthetic_frame())
    seen: list[Event] = []
    runner.run(ws, ["discovery", "data"], emit=seen.append)
    kinds = [(e.phase, e.kind) for e in seen if e.kind != "message"]
    assert kinds == [
        ("discovery", "phase_started"),
        ("discovery", "phase_finished"),
        ("data", "phase_started"),
        ("data", "phase_finished"),
        ("", "run_finished"),
    ]
    checkpoint = json.loads(ws.checkpoint_path("data").read_text())
    assert checkpoint["versions"]["duckdb"] and checkpoint["duration_s"] >= 0


def test_a_gate_failure_blocks_what_depends_on_it(make_project) -> None:
    ws = make_project(synthetic_frame())
    runner.run(ws, ["discovery"])
    checkpoint = ws.read_checkpoint("discovery")
    checkpoint.gate_failures = ["test roc_auc 0.61 is below the success threshold 0.8"]
    ws.write_checkpoint(checkpoint)
    skipped = runner.run(ws, ["discovery"])  # results stand; the gate still fails on rerun
    assert skipped.exit_code == 1 and "below the success threshold" in str(skipped.error)
    assert skipped.phases["discovery"].status == "skipped"
    with pytest.raises(QualityGateError, match="needs 'discovery', whose results failed"):
        runner.run_phase(ws, "data")


def test_status_never_calls_a_failed_gate_done(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9, bug 2: a phase whose results failed its gate is `failed` in `status`, `--json`
    and the TUI, with the reason and the command that fixes it; it is still not recomputed."""
    monkeypatch.setenv(TRIALS_ENV, "1")
    ws = make_project(synthetic_frame())
    update_config_file(ws.config_path, {"model": {"candidates": ["linear"]}})
    report = runner.run(ws, ["discovery", "data", "model", "deploy"], time_budget=300)
    assert report.exit_code == 0, report.error
    checkpoint = ws.read_checkpoint("deploy")
    assert checkpoint is not None
    checkpoint.gate_failures = ["service parity 0.0016 exceeds 1e-04 on test rows"]
    ws.write_checkpoint(checkpoint)
    state = runner.phase_state(ws, ws.load_config(), "deploy")
    assert (state.status, state.up_to_date) == ("failed", True)
    assert "quality gate failed: service parity 0.0016" in state.reason
    assert "mlwizard run --phase model" in state.fix
    result = CliRunner().invoke(app, ["status", "--project", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    deploy = next(p for p in json.loads(result.stdout)["phases"] if p["phase"] == "deploy")
    assert deploy["status"] == "failed" and deploy["gate_failures"] == checkpoint.gate_failures
    assert "mlwizard run --phase model" in deploy["fix"]
    table = CliRunner().invoke(app, ["status", "--project", str(ws.root)], terminal_width=200)
    deploy_line = next(line for line in table.stdout.splitlines() if "deploy" in line)
    assert "failed" in deploy_line and "done" not in deploy_line


def test_a_phase_that_forgets_a_declared_output_fails_and_says_which(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_project(synthetic_frame())

    def forgetful(ctx: PhaseContext) -> PhaseResult:
        return PhaseResult(metrics={"ran": True})  # records no discovery.json

    monkeypatch.setattr(runner.PhaseSpec, "load", lambda self: forgetful)
    report = runner.run(ws, ["discovery"])
    assert report.exit_code == 3  # a bug in the phase, not bad input
    assert "did not record its output(s) discovery" in (report.phases["discovery"].error or "")
    assert runner.phase_state(ws, ws.load_config(), "discovery").status == "failed"


def test_outputs_written_through_the_context_land_in_the_checkpoint(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_project(synthetic_frame())

    def writes_through_context(ctx: PhaseContext) -> PhaseResult:
        ctx.write_json("discovery", "discovery.json", {"task": "binary"})
        ctx.write_text("notes", "notes.md", "# notes\n")
        return PhaseResult()

    monkeypatch.setattr(runner.PhaseSpec, "load", lambda self: writes_through_context)
    runner.run(ws, ["discovery"])
    checkpoint = ws.read_checkpoint("discovery")
    assert checkpoint is not None and checkpoint.status == "done"
    assert set(checkpoint.outputs) == {"discovery", "notes"}
    assert json.loads(ws.resolve(checkpoint.outputs["discovery"]).read_text()) == {"task": "binary"}


def test_require_names_the_phase_to_rerun(make_project) -> None:
    ws = make_project(synthetic_frame())
    runner.run(ws, ["discovery", "data"])
    config = ws.load_config()
    data = ws.read_checkpoint("data")
    assert data is not None
    ctx = PhaseContext("model", ws, config, {"data": data})
    assert ctx.require("data", "train").is_file()
    with pytest.raises(BadInputError, match="recorded no 'nope' artifact"):
        ctx.require("data", "nope")
    ctx.require("data", "train").unlink()
    with pytest.raises(BadInputError, match=r"missing; rerun `mlwizard run --phase data`"):
        ctx.require("data", "train")


def test_ctrl_c_is_recorded_as_cancelled_not_as_an_internal_error(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9, bug 5: after Ctrl-C the reason was `KeyboardInterrupt: `."""
    ws = make_project(synthetic_frame())

    def interrupted(ctx: PhaseContext) -> PhaseResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.PhaseSpec, "load", lambda self: interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_phase(ws, "discovery")
    state = runner.phase_state(ws, ws.load_config(), "discovery")
    assert (state.status, state.checkpoint and state.checkpoint.error) == (
        "cancelled",
        "phase discovery cancelled",
    )
    assert "KeyboardInterrupt" not in state.reason and "mlwizard run --phase discovery" in state.fix
