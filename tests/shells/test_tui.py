"""The Textual app on real projects in tmp_path, driven by Pilot.

Some phases are replaced by small functions (through `PhaseSpec.load`) where a test needs a phase
that is slow, quick or broken on purpose; these tests still exercise the real runner,
checkpoints, status logic and screens, not mocks of them.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Select, Static

from helpers.tui import PENGUINS, scaffold_penguins, settle, wait_until
from mlwizard.core import runner
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.tui.app import MlwizardApp
from mlwizard.tui.commands import WizardCommands
from mlwizard.tui.screens import HelpScreen, NewProjectScreen
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.widgets import PhaseStepper

pytestmark = pytest.mark.anyio

SIZE = (100, 30)
# How long the UI may take to answer a key before the test calls it unresponsive: a hang guard
# that a loaded machine keeps, not a speed bound (key latency is measured in benchmarks/).
RESPONSE_TIMEOUT = 10.0
PhaseFn = Callable[[PhaseContext], PhaseResult]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mlwizard.toml").write_text('# my notes\n[data]\nsource = "data.csv"\ntarget = "y"\n')
    rows = [f"{i},{(i * 7) % 11 / 10:.1f},{'ab'[i % 2]},{int(i % 3 == 0)}" for i in range(60)]
    (root / "data.csv").write_text("n,x,c,y\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def fake_phases(monkeypatch: pytest.MonkeyPatch) -> dict[str, PhaseFn]:
    """Phase name -> function to run instead of the real module (others load as usual)."""
    fakes: dict[str, PhaseFn] = {}
    real_load = runner.PhaseSpec.load

    def load(self: runner.PhaseSpec) -> PhaseFn:
        return fakes[self.name] if self.name in fakes else real_load(self)

    monkeypatch.setattr(runner.PhaseSpec, "load", load)
    return fakes


def quick_phase(ctx: PhaseContext) -> PhaseResult:
    ctx.message("quick work")
    for name in runner.spec(ctx.phase).outputs:  # what the runner requires a phase to record
        ctx.write_json(name, f"{name}.json", {})
    return PhaseResult(metrics={"ok": 1})


def slow_phase(ctx: PhaseContext) -> PhaseResult:
    # Long enough (~10 s) never to finish by itself on a loaded machine; the tests cancel it.
    # It checks ctx.cancel every 10 ms, as a real phase does between steps.
    ctx.message("slow phase started")
    for _ in range(1000):
        ctx.check_cancelled()
        time.sleep(0.01)
    return PhaseResult()


def capture_notifications(app: MlwizardApp) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    notify = app.notify

    def record(message: str, **kwargs: Any) -> None:
        seen.append((message, kwargs.get("severity", "information")))
        notify(message, **kwargs)

    app.notify = record  # type: ignore[method-assign]
    return seen


def statuses(app: MlwizardApp) -> dict[str, str]:
    """What the stepper of the current screen shows for each phase."""
    stepper = app.screen.query_one(PhaseStepper)
    return {phase: stepper.row(phase).status for phase in runner.PHASE_NAMES}


def row(app: MlwizardApp, phase: str) -> Any:
    return app.screen.query_one(PhaseStepper).row(phase)


def write_done_checkpoint(root: Path, phase: str) -> None:
    ws = Workspace(root)
    inputs, not_ready = runner.current_inputs(ws, ws.load_config(), phase)
    assert not not_ready
    ws.write_checkpoint(
        Checkpoint(phase=phase, status="done", inputs=inputs, fingerprint=hash_value(inputs))
    )


# -- status and resuming -------------------------------------------------------------------------
async def test_new_project_opens_on_discovery_with_five_pending_phases(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "discovery"
        assert statuses(app) == dict.fromkeys(runner.PHASE_NAMES, "pending")
        assert "not run yet" in row(app, "model").reason
        assert app.progress_percent == 0
        assert app.sub_title == str(project.resolve())
        assert not app.screen.query_one("#notice").has_class("-visible")


async def test_reopening_resumes_at_the_first_phase_not_done(project: Path) -> None:
    write_done_checkpoint(project, "discovery")
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "data"
        assert statuses(app)["discovery"] == "done"
        assert "up to date" in row(app, "discovery").reason
        assert statuses(app)["data"] == "pending"
        assert app.progress_percent == 15


async def test_headless_data_phase_opens_on_the_model_screen(tmp_path: Path) -> None:
    ws = scaffold_penguins(tmp_path / "p")
    report = runner.run(ws, ["discovery", "data"])
    assert report.exit_code == 0
    app = MlwizardApp(ws.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "model"
        assert statuses(app) == {
            "discovery": "done",
            "data": "done",
            "model": "pending",
            "deploy": "pending",
            "operations": "pending",
        }
        assert app.progress_percent == 35
        await pilot.press("2")  # and the data screen shows what the headless run wrote
        await settle(app, pilot)
        profile = app.screen.query_one("#profile", DataTable)
        assert profile.row_count == 8


async def test_data_screen_toggles_a_column_between_kept_and_excluded(tmp_path: Path) -> None:
    ws = scaffold_penguins(tmp_path / "p")
    assert runner.run(ws, ["discovery", "data"]).exit_code == 0
    app = MlwizardApp(ws.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#profile", DataTable)
        table.move_cursor(row=table.get_row_index("year"))
        await pilot.press("x")
        await settle(app, pilot)
        await settle(app, pilot)
        config = tomllib.loads(ws.config_path.read_text())
        assert config["data"]["exclude"] == ["year"]
        assert config["data"]["keep"] == []
        assert statuses(app)["data"] == "stale"  # the change waits for a rerun
        assert "excluded" in str(table.get_row("year")[2])
        table.move_cursor(row=table.get_row_index("year"))
        await pilot.press("x")
        await settle(app, pilot)
        await settle(app, pilot)
        config = tomllib.loads(ws.config_path.read_text())
        assert config["data"]["exclude"] == []
        assert statuses(app)["data"] == "done"  # back to the inputs it ran on


async def test_refresh_sees_a_changed_config(project: Path) -> None:
    write_done_checkpoint(project, "discovery")
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        config = project / "mlwizard.toml"
        config.write_text(config.read_text() + '\n[discovery]\ntask = "binary"\n')
        await pilot.press("s")
        await settle(app, pilot)
        assert statuses(app)["discovery"] == "stale"
        assert "config.discovery" in row(app, "discovery").reason


async def test_number_keys_and_clicks_switch_phase_screens(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key, phase in (("3", "model"), ("4", "deploy"), ("5", "operations"), ("2", "data")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == phase
            assert isinstance(app.screen, PhaseScreen) and phase == app.screen.PHASE
        await pilot.press("1")
        await pilot.pause()
        assert app.current_mode == "discovery"
        await pilot.click("#phase-model")
        await pilot.pause()
        assert app.current_mode == "model"


# -- discovery ---------------------------------------------------------------------------------
async def test_discovery_form_saves_to_the_config_and_runs(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "data.csv").write_text(
        "a,b,label\n" + "".join(f"{i},{i % 5},{'yn'[i % 2]}\n" for i in range(40))
    )
    (root / "mlwizard.toml").write_text('# keep me\n[data]\nsource = ""\n')
    app = MlwizardApp(root)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert app.current_mode == "discovery"
        await pilot.click("#source")
        await pilot.press(*"missing.csv", "enter")
        await settle(app, pilot)
        assert "file not found" in str(screen.query_one("#source-status", Static).content)
        screen.query_one("#source", Input).value = "data.csv"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "3 columns" in str(screen.query_one("#source-status", Static).content)
        screen.query_one("#target", Select).value = "label"
        screen.query_one("#task", Select).value = "binary"
        await pilot.pause()
        assert screen.query_one("#costs").display  # binary: the costs are asked for
        screen.query_one("#metric", Select).value = "accuracy"
        screen.query_one("#threshold", Input).value = "nope"
        await pilot.press("escape", "ctrl+s")  # leave the field; save refuses a bad number
        await pilot.pause()
        assert any("not a number" in m for m, _ in notes)
        screen.query_one("#threshold", Input).value = "0.6"
        screen.query_one("#cost-fp", Input).value = "1"
        screen.query_one("#cost-fn", Input).value = "5"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        await settle(app, pilot)
        text = (root / "mlwizard.toml").read_text()
        assert text.startswith("# keep me")  # comments kept
        saved = tomllib.loads(text)
        assert saved["data"] == {"source": "data.csv", "target": "label"}
        assert saved["discovery"] == {
            "task": "binary",
            "metric": "accuracy",
            "success_threshold": 0.6,
            "cost_false_positive": 1.0,
            "cost_false_negative": 5.0,
        }
        assert statuses(app)["discovery"] == "done"
        summary = str(screen.query_one("#discovery-summary", Static).content)
        assert "binary task on 'label'" in summary
        assert "test accuracy ≥ 0.6" in summary


async def test_folder_without_config_offers_to_create_one(tmp_path: Path) -> None:
    (tmp_path / "penguins.csv").write_bytes(PENGUINS.read_bytes())
    app = MlwizardApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, NewProjectScreen)
        await pilot.press("escape")  # look around first: nothing breaks, nothing runs
        await pilot.pause()
        notice = app.screen.query_one("#notice", Static)
        assert notice.has_class("-visible")
        assert "mlwizard.toml" in str(notice.content)
        await pilot.press("r", "a")
        await settle(app, pilot)
        assert app.running_phase is None and app.is_running
        assert not (tmp_path / "mlwizard.toml").exists()


async def test_new_project_dialog_writes_a_config(tmp_path: Path) -> None:
    (tmp_path / "penguins.csv").write_bytes(PENGUINS.read_bytes())
    app = MlwizardApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, NewProjectScreen)
        app.screen.query_one("#new-data", Input).value = "penguins.csv"
        app.screen.query_one("#new-target", Input).value = "species"
        await pilot.click("#new-create")
        await settle(app, pilot)
        await settle(app, pilot)
        config = tomllib.loads((tmp_path / "mlwizard.toml").read_text())
        assert config["data"]["source"] == "penguins.csv"
        assert config["data"]["target"] == "species"
        assert app.problem is None
        assert statuses(app)["discovery"] == "pending"
        screen = app.screen
        assert screen.query_one("#source", Input).value == "penguins.csv"
        assert screen.query_one("#target", Select).value == "species"


async def test_target_drop_down_fills_once_the_typed_path_reads(tmp_path: Path) -> None:
    """Issue 9: no need to press Read; a half-typed path is not reported as an error."""
    (tmp_path / "data.csv").write_text(
        "a,b,label\n" + "".join(f"{i},{i % 3},x\n" for i in range(20))
    )
    (tmp_path / "mlwizard.toml").write_text('[data]\nsource = ""\n')
    app = MlwizardApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.click("#source")
        await pilot.press(*"data.cs")
        await pilot.pause(0.8)
        await settle(app, pilot)
        assert "✘" not in str(screen.query_one("#source-status", Static).content)
        await pilot.press("v")
        target = screen.query_one("#target", Select)
        await wait_until(lambda: len(target._options) > 3, RESPONSE_TIMEOUT, 0.05)
        assert "3 columns" in str(screen.query_one("#source-status", Static).content)


async def test_invalid_config_shows_its_error(tmp_path: Path) -> None:
    (tmp_path / "mlwizard.toml").write_text("[data\n")
    app = MlwizardApp(tmp_path)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "not valid TOML" in str(app.screen.query_one("#notice", Static).content)
        assert any("not valid TOML" in m and s == "error" for m, s in notes)


# -- running -------------------------------------------------------------------------------------
async def test_r_runs_this_screens_phase(project: Path, fake_phases: dict[str, PhaseFn]) -> None:
    write_done_checkpoint(project, "discovery")
    fake_phases["data"] = quick_phase
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "data"
        await pilot.press("r")
        await settle(app, pilot)
        assert statuses(app)["data"] == "done"
        assert statuses(app)["model"] == "pending"  # `r` runs one phase only
        assert app.progress_percent == 35
        assert "data: " in app.activity


async def test_a_runs_all_remaining_phases(project: Path, fake_phases: dict[str, PhaseFn]) -> None:
    fake_phases.update(dict.fromkeys(runner.PHASE_NAMES, quick_phase))
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert statuses(app) == dict.fromkeys(runner.PHASE_NAMES, "done")
        assert app.progress_percent == 100
        assert app.screen.query_one("#overall").percentage == 1.0
        await pilot.press("a")  # nothing left: says so, runs nothing
        await settle(app, pilot)
        assert statuses(app) == dict.fromkeys(runner.PHASE_NAMES, "done")


async def test_keys_respond_while_a_slow_phase_runs_and_c_cancels(
    project: Path, fake_phases: dict[str, PhaseFn]
) -> None:
    write_done_checkpoint(project, "discovery")
    fake_phases["data"] = slow_phase
    app = MlwizardApp(project)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.simulate_key("r")
        await wait_until(lambda: row(app, "data").status == "running", RESPONSE_TIMEOUT)
        # Press keys while the phase body runs, after the core's own start-up work for it.
        await wait_until(lambda: "slow phase started" in app.activity, RESPONSE_TIMEOUT)

        for _ in range(5):
            requests, refreshes = app.status_requests, app.status_refreshes
            # Not `pilot.press`: it also waits for the whole process to go idle.
            app.simulate_key("s")
            # The UI thread handles the key while the phase runs, and shows the fresh status
            # read by a thread worker.
            await wait_until(lambda n=requests: app.status_requests > n, RESPONSE_TIMEOUT)
            await wait_until(lambda n=refreshes: app.status_refreshes > n, RESPONSE_TIMEOUT)
            assert row(app, "data").status == "running"  # a refresh keeps the overlay
        assert app.running_phase == "data"

        app.simulate_key("c")
        # The phase checks ctx.cancel every 10 ms; the rest is the core recording the failure.
        await wait_until(lambda: app.running_phase is None, RESPONSE_TIMEOUT)
        await settle(app, pilot)
        assert row(app, "data").status == "cancelled"  # issue 9, bug 5: not "failed"
        assert "cancelled" in row(app, "data").reason
        assert ("phase data cancelled", "warning") in notes


async def test_the_activity_line_shows_the_running_step(
    project: Path, fake_phases: dict[str, PhaseFn]
) -> None:
    """Issue 13, item 5: the TUI reads the phases' step events, as the CLI does."""

    def stepped(ctx: PhaseContext) -> PhaseResult:
        steps = ctx.steps("read", "profile")
        steps.begin("read")
        steps.begin("profile")
        for _ in range(1000):  # until cancelled, saying nothing else
            ctx.check_cancelled()
            time.sleep(0.01)
        return PhaseResult()

    write_done_checkpoint(project, "discovery")
    fake_phases["data"] = stepped
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.simulate_key("r")
        await wait_until(lambda: app.activity == "data: step 2/2, profile", RESPONSE_TIMEOUT)
        assert row(app, "data").status == "running"
        app.simulate_key("c")
        await wait_until(lambda: app.running_phase is None, RESPONSE_TIMEOUT)
        await settle(app, pilot)


async def test_core_error_is_a_notification_and_a_failed_phase(
    project: Path, fake_phases: dict[str, PhaseFn]
) -> None:
    def bad(ctx: PhaseContext) -> PhaseResult:
        raise BadInputError("data.csv: target column [y] is constant")

    fake_phases["discovery"] = bad
    app = MlwizardApp(project)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert ("data.csv: target column [y] is constant", "error") in notes
        assert row(app, "discovery").status == "failed"
        assert "target column [y] is constant" in row(app, "discovery").reason


async def test_unexpected_error_is_a_notification_not_a_crash(
    project: Path, fake_phases: dict[str, PhaseFn]
) -> None:
    def broken(ctx: PhaseContext) -> PhaseResult:
        raise RuntimeError("boom")

    fake_phases["discovery"] = broken
    app = MlwizardApp(project)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert ("RuntimeError: boom", "error") in notes
        assert app.phase_status("discovery") == "failed"
        assert app.is_running
        fake_phases["discovery"] = quick_phase  # the app still works after the error
        await pilot.press("r")
        await settle(app, pilot)
        assert app.phase_status("discovery") == "done"


async def test_upstream_not_ready_is_a_notification(project: Path) -> None:
    app = MlwizardApp(project)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5", "r")
        await settle(app, pilot)
        assert any("needs 'data'" in m and s == "error" for m, s in notes)
        assert app.is_running


# -- help, palette, quitting ---------------------------------------------------------------------
async def test_help_screen_opens_on_question_mark_and_closes(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_lists_the_main_actions(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        provider = WizardCommands(app.screen)
        names = [name for name, _, _ in provider.commands()]
        for expected in (
            "Open Model",
            "Run Discovery",
            "Run all remaining phases",
            "Cancel the running phase",
            "Start the service",
            "Send a sample request",
            "Help",
        ):
            assert expected in names
        hits = [hit async for hit in provider.search("open oper")]
        assert hits
        hits[0].command()
        await pilot.pause()
        assert app.current_mode == "operations"


async def test_q_exits_with_code_0(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
    assert app.return_code == 0


async def test_q_during_a_run_cancels_it(project: Path, fake_phases: dict[str, PhaseFn]) -> None:
    fake_phases["discovery"] = slow_phase
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.simulate_key("r")
        await wait_until(lambda: app.phase_status("discovery") == "running", 2.0)
        await pilot.press("q")
    assert app.return_code == 0
    # Quitting asked the core to stop, rather than waiting out the phase's remaining seconds.
    checkpoint = Workspace(project).read_checkpoint("discovery")
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.error) == ("cancelled", "phase discovery cancelled")


def test_importing_the_package_does_not_import_textual() -> None:
    code = (
        "import sys, mlwizard.tui; "
        "assert 'textual' not in sys.modules, 'textual imported'; "
        "from mlwizard.tui import run_tui; assert 'textual' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_discovery_form_declines_reinforcement_learning(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "data.csv").write_text(
        "state,action\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20))
    )
    (root / "mlwizard.toml").write_text('[data]\nsource = "data.csv"\ntarget = "action"\n')
    app = MlwizardApp(root)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("escape")
        screen.query_one("#source", Input).value = "data.csv"
        screen.query_one("#source", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        screen.query_one("#problem", Input).value = "an agent learns a policy to maximize reward"
        await pilot.press("escape", "ctrl+s")
        await pilot.pause()
        refusals = [m for m, _ in notes if "reinforcement learning, which mlwizard" in m]
        assert refusals and "classifier of the next action" in refusals[0]
        assert "problem" not in (root / "mlwizard.toml").read_text()  # nothing saved
