"""Issue 13, item 5: progress bars on a terminal, plain lines otherwise, nothing on stdout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from helpers.frames import synthetic_frame
from mlwizard.cli import output
from mlwizard.cli.app import app
from mlwizard.core.data.phase import STEPS as DATA_STEPS
from mlwizard.core.kernel import events as ev

EVENTS = [
    ev.Event("model", "phase_started", "not run yet"),
    ev.Event("model", "message", "linear: started", payload=ev.CandidateStarted("linear", 3.0)),
    ev.Event("model", "message", "", payload=ev.StepProgress("candidates", 1, 3, "linear")),
    ev.Event("model", "message", "", payload=ev.StepProgress("candidates", 3, 3, "dummy")),
    ev.Event("model", "phase_finished", "done in 4.0s"),
]


def _console(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> io.StringIO:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=100, highlight=False)
    monkeypatch.setattr(output, "err", console)
    return buffer


def test_plain_lines_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = _console(monkeypatch, terminal=False)
    with output.progress() as sink:
        for event in EVENTS:
            sink(event)
    lines = buffer.getvalue().splitlines()
    assert "  model      candidates 1/3 (linear)" in lines
    assert any(line.startswith("✓ model") for line in lines)
    assert all(line.strip() for line in lines)  # no empty lines for progress-only events
    assert capsys.readouterr().out == ""


def test_bars_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = _console(monkeypatch, terminal=True)
    monkeypatch.delenv("MLWIZARD_PLAIN_PROGRESS", raising=False)
    with output.progress() as sink:
        assert isinstance(sink, output._Bars)
        for event in EVENTS[:3]:
            sink(event)
        task = sink.tasks["model:candidates"]
        shown = next(t for t in sink.progress.tasks if t.id == task)
        assert (shown.completed, shown.total) == (1, 3)
        for event in EVENTS[3:]:
            sink(event)
        assert not sink.tasks
    assert "linear: started" in buffer.getvalue()
    assert capsys.readouterr().out == ""


def _step(done: int, label: str) -> ev.Event:
    return ev.Event("data", "message", "", payload=ev.StepProgress(ev.PHASE_STEPS, done, 3, label))


STEP_EVENTS = [
    ev.Event("data", "phase_started", "not run yet"),
    _step(0, "read"),
    _step(1, "profile"),
    ev.Event("data", "message", "a finding"),
    _step(2, "split"),
    _step(3, ""),
    ev.Event("data", "phase_finished", "done in 1.0s"),
]


def test_phase_steps_as_plain_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = _console(monkeypatch, terminal=False)
    with output.progress() as sink:
        for event in STEP_EVENTS:
            sink(event)
    lines = buffer.getvalue().splitlines()
    steps = [line for line in lines if " step " in line]
    assert steps == [
        "  data       step 1/3: read",
        "  data       step 2/3: profile",
        "  data       step 3/3: split",
    ]
    assert lines.index(steps[1]) < lines.index("  data       a finding") < lines.index(steps[2])
    assert lines[-1].startswith("✓ data")  # the end of the steps adds no line of its own
    assert capsys.readouterr().out == ""


def test_phase_steps_fill_the_phase_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _console(monkeypatch, terminal=True)
    monkeypatch.delenv("MLWIZARD_PLAIN_PROGRESS", raising=False)
    with output.progress() as sink:
        for event in STEP_EVENTS[:3]:
            sink(event)
        assert list(sink.tasks) == ["data"]  # one bar for the phase, not one more per step
        shown = next(t for t in sink.progress.tasks if t.id == sink.tasks["data"])
        assert (shown.completed, shown.total, shown.description) == (1, 3, "data · profile")
        for event in STEP_EVENTS[3:6]:
            sink(event)
        shown = next(t for t in sink.progress.tasks if t.id == sink.tasks["data"])
        assert (shown.completed, shown.total, shown.description) == (3, 3, "data")
        sink(STEP_EVENTS[-1])
        assert not sink.tasks
    assert capsys.readouterr().out == ""


def test_run_shows_the_data_phase_steps_on_stderr_only(make_project) -> None:
    """The real CLI on a real project: the steps in order on stderr, one JSON object on stdout."""
    ws = make_project(synthetic_frame(120))
    done = CliRunner().invoke(
        app, ["run", "--phase", "data", "--with-upstream", "--json", "-p", str(ws.root)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["phases"]["data"]["status"] == "done"
    shown = [line.strip() for line in done.stderr.splitlines() if " step " in line]
    n = len(DATA_STEPS)
    assert shown == [f"data       step {i}/{n}: {name}" for i, name in enumerate(DATA_STEPS, 1)]
    assert Path(ws.root, "artifacts", "data", "schema.json").is_file()
