"""Issue 13, item 5: progress bars on a terminal, plain lines otherwise, nothing on stdout."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from mlwizard.cli import output
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
