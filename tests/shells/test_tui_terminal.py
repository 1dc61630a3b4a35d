"""What the TUI looks like: snapshots of every screen (100×30) and of the stepper (80×24) on a
finished demo project; and the real `mlwizard tui` in tmux.

The snapshots are drawn from committed artifacts (`tests/data/tui_project/`, made by
`tests/data/make_tui_project.py`): nothing is trained at test time, so a library bump cannot move
them. They live in tests/shells/__snapshots__/test_tui_terminal/; after a deliberate change of
the screens, regenerate them with `pytest tests/shells/test_tui_terminal.py --snapshot-update`
and look at the SVGs before committing them. They depend on the pinned Textual version.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from helpers.tui import committed_finished_project, settle
from mlwizard.core.runner import PHASE_NAMES
from mlwizard.tui.app import MlwizardApp
from mlwizard.tui.widgets import PhaseStepper

pytestmark = pytest.mark.slow

SNAPSHOT_SIZE = (100, 30)
SMALL = (80, 24)


@pytest.fixture
def finished_project(tmp_path: Path) -> Path:
    return committed_finished_project(tmp_path / "demo")


def open_phase(key: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await settle(app, pilot)
        app.sub_title = "demo"  # not the temporary folder's path
        await pilot.press(key)
        await settle(app, pilot)
        await settle(app, pilot)

    return run_before


@pytest.mark.parametrize(
    "key", [str(i) for i in range(1, 6)], ids=[f"{i}-{p}" for i, p in enumerate(PHASE_NAMES, 1)]
)
def test_phase_screen_snapshot(snap_compare: Any, finished_project: Path, key: str) -> None:
    app = MlwizardApp(finished_project)
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=open_phase(key))


def test_whole_app_at_80x24_snapshot(snap_compare: Any, finished_project: Path) -> None:
    app = MlwizardApp(finished_project)
    assert snap_compare(app, terminal_size=SMALL, run_before=open_phase("3"))


class StepperApp(App[None]):
    """The stepper alone, in each state it can show."""

    STATES = (
        ("discovery", "done", "15% · up to date"),
        ("data", "stale", "20% · changed: config.data"),
        ("model", "running", "running… (c to cancel)"),
        ("deploy", "failed", "20% · phase deploy cancelled"),
        ("operations", "pending", "15% · not run yet"),
    )

    def compose(self) -> ComposeResult:
        yield PhaseStepper(id="stepper")

    def on_mount(self) -> None:
        stepper = self.query_one(PhaseStepper)
        stepper.styles.width = 28
        for phase, status, reason in self.STATES:
            stepper.row(phase).show(status, reason)  # type: ignore[arg-type]
        stepper.show_progress(15)
        stepper.mark_current("model")


def test_stepper_snapshot_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(StepperApp(), terminal_size=SMALL)


# -- the real thing, in tmux ---------------------------------------------------------------------
PHASE_LINE = re.compile(r"(Discovery|Data|Model|Deployment|Operations)\s+(\w+)")


def test_tmux_shows_five_done_phases_and_q_quits_with_0(
    finished_project: Path, tmp_path: Path
) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    exe = Path(sys.executable).with_name("mlwizard")
    if not exe.exists():
        pytest.skip(f"no mlwizard script beside {sys.executable}")
    exit_file = tmp_path / "exit"
    command = (
        f"{shlex.quote(str(exe))} tui --project {shlex.quote(str(finished_project))}; "
        f"echo EXIT=$? > {shlex.quote(str(exit_file))}"
    )
    server = f"mlwizard-test-{uuid.uuid4().hex[:8]}"  # a private tmux server, ours alone
    session = "tui"
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TMUX", None)

    def tmux_run(*args: str) -> str:
        done = subprocess.run(
            [tmux, "-L", server, *args], env=env, capture_output=True, text=True, timeout=10
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    tmux_run("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", "-c", command)
    try:
        screen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = tmux_run("capture-pane", "-p", "-t", session)
            phases = dict(PHASE_LINE.findall(screen))
            if len(phases) == 5 and set(phases.values()) == {"done"}:
                break
            time.sleep(0.25)
        phases = dict(PHASE_LINE.findall(screen))
        assert phases == {
            "Discovery": "done",
            "Data": "done",
            "Model": "done",
            "Deployment": "done",
            "Operations": "done",
        }, screen
        assert "Retrain" in screen or "retrain" in screen.lower(), screen  # opened on Operations
        tmux_run("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not exit_file.exists():
            time.sleep(0.1)
        assert exit_file.exists(), tmux_run("capture-pane", "-p", "-t", session)
        assert exit_file.read_text().strip() == "EXIT=0"
    finally:
        subprocess.run(
            [tmux, "-L", server, "kill-server"], env=env, capture_output=True, timeout=10
        )
