"""The Textual app on real projects in tmp_path, driven by Pilot.

Phases that are still being written are replaced by small functions (through `PhaseSpec.load`),
so these tests exercise the real runner, checkpoints and status logic, not mocks of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Log, Static
from textual.worker import WorkerFailed

from mlwizard.core import pipeline
from mlwizard.core.errors import BadInputError
from mlwizard.core.hashing import hash_value
from mlwizard.core.pipeline import PhaseContext, PhaseResult
from mlwizard.core.workspace import Checkpoint, Workspace
from mlwizard.tui.app import MlwizardApp
from mlwizard.tui.widgets import PhaseStepper

pytestmark = pytest.mark.anyio

SIZE = (100, 30)
KEY_LATENCY_LIMIT = 0.1  # seconds from a key press to the UI having handled it
PhaseFn = Callable[[PhaseContext], PhaseResult]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mlwizard.toml").write_text('[data]\nsource = "data.csv"\ntarget = "y"\n')
    rows = [f"{i},{(i * 7) % 11 / 10:.1f},{'ab'[i % 2]},{int(i % 3 == 0)}" for i in range(60)]
    (root / "data.csv").write_text("n,x,c,y\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def fake_phases(monkeypatch: pytest.MonkeyPatch) -> dict[str, PhaseFn]:
    """Phase name -> function to run instead of the real module (others load as usual)."""
    fakes: dict[str, PhaseFn] = {}
    real_load = pipeline.PhaseSpec.load

    def load(self: pipeline.PhaseSpec) -> PhaseFn:
        return fakes[self.name] if self.name in fakes else real_load(self)

    monkeypatch.setattr(pipeline.PhaseSpec, "load", load)
    return fakes


def quick_phase(ctx: PhaseContext) -> PhaseResult:
    ctx.message("quick work")
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


async def settle(app: MlwizardApp, pilot: Pilot[Any]) -> None:
    """Wait for the running workers, then let the app handle what they posted."""
    with contextlib.suppress(WorkerFailed):
        await app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll `condition` every millisecond, yielding to the app's loop; fail after `timeout`.

    Plain `asyncio.sleep`, not `pilot.pause`, which also waits for screen updates and would
    add its own delay to the latency being measured.
    """
    deadline = time.perf_counter() + timeout
    for _ in range(int(timeout * 1000) + 1):  # bounded even if the clock misbehaves
        if condition():
            return
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.001)
    if not condition():
        raise AssertionError(f"condition not met within {timeout * 1000:.0f} ms")


def log_text(app: MlwizardApp) -> str:
    return "\n".join(app.query_one(Log).lines)


def statuses(app: MlwizardApp) -> dict[str, str]:
    return {phase: app.phase_status(phase) for phase in pipeline.PHASE_NAMES}


def write_done_checkpoint(root: Path, phase: str) -> None:
    ws = Workspace(root)
    inputs, not_ready = pipeline.current_inputs(ws, ws.load_config(), phase)
    assert not not_ready
    ws.write_checkpoint(
        Checkpoint(phase=phase, status="done", inputs=inputs, fingerprint=hash_value(inputs))
    )


# -- status --------------------------------------------------------------------------------------
async def test_new_project_shows_five_pending_phases(project: Path) -> None:
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert statuses(app) == dict.fromkeys(pipeline.PHASE_NAMES, "pending")
        assert app.query_one(PhaseStepper).row("model").reason == "not run yet"
        assert app.progress_percent == 0
        assert app.sub_title == str(project.resolve())
        assert not app.query_one("#notice").has_class("-visible")


async def test_up_to_date_checkpoint_shows_done(project: Path) -> None:
    write_done_checkpoint(project, "discovery")
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert statuses(app)["discovery"] == "done"
        assert app.query_one(PhaseStepper).row("discovery").reason == "up to date"
        assert statuses(app)["data"] == "pending"
        assert app.progress_percent == 15


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
        assert "config.discovery" in app.query_one(PhaseStepper).row("discovery").reason


# -- running -------------------------------------------------------------------------------------
async def test_r_runs_the_real_discovery_phase(project: Path) -> None:
    pytest.importorskip("mlwizard.core.phases.discovery")
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert statuses(app)["discovery"] == "done", app.query_one(PhaseStepper).row("discovery")


async def test_r_runs_the_next_phase(project: Path, fake_phases: dict[str, PhaseFn]) -> None:
    write_done_checkpoint(project, "discovery")
    fake_phases["data"] = quick_phase
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert statuses(app)["data"] == "done"
        assert statuses(app)["model"] == "pending"  # `r` runs one phase only
        assert app.progress_percent == 35
        log = log_text(app)
        assert "data: phase started" in log
        assert "data: message — quick work" in log
        assert "data: phase finished" in log


async def test_a_runs_all_remaining_phases(project: Path, fake_phases: dict[str, PhaseFn]) -> None:
    fake_phases.update(dict.fromkeys(pipeline.PHASE_NAMES, quick_phase))
    app = MlwizardApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert statuses(app) == dict.fromkeys(pipeline.PHASE_NAMES, "done")
        assert app.progress_percent == 100
        assert app.query_one("#progress").percentage == 1.0
        await pilot.press("a")  # nothing left: says so, runs nothing
        await settle(app, pilot)
        assert statuses(app) == dict.fromkeys(pipeline.PHASE_NAMES, "done")


async def test_keys_respond_while_a_slow_phase_runs_and_c_cancels(
    project: Path, fake_phases: dict[str, PhaseFn], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_phases["discovery"] = slow_phase
    app = MlwizardApp(project)
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.simulate_key("r")
        await wait_until(lambda: app.phase_status("discovery") == "running", KEY_LATENCY_LIMIT)
        # Measure while the phase body runs, after the core's own start-up work for the phase.
        await wait_until(lambda: "slow phase started" in log_text(app), 2.0)
        gc.collect()  # not a pause for the garbage earlier tests' apps left behind

        key_latencies, refresh_latencies = [], []
        for _ in range(5):
            requests, refreshes = app.status_requests, app.status_refreshes
            t0 = time.perf_counter()
            # Not `pilot.press`: it also waits for the whole process to go idle, which takes
            # ~100 ms with a busy worker thread; this measures only the app's own response.
            app.simulate_key("s")
            # The UI thread handles the key at once...
            await wait_until(lambda n=requests: app.status_requests > n, KEY_LATENCY_LIMIT)
            key_latencies.append(time.perf_counter() - t0)
            # ...and shows the fresh status read by a thread worker soon after (a looser bound:
            # the thread competes for CPU with whatever else the machine runs).
            await wait_until(lambda n=refreshes: app.status_refreshes > n, 1.0)
            refresh_latencies.append(time.perf_counter() - t0)
            assert app.phase_status("discovery") == "running"  # a refresh keeps the overlay
        assert app.running_phase == "discovery"

        t_cancel = time.perf_counter()
        app.simulate_key("c")
        # The phase checks ctx.cancel every 10 ms; the rest is the core recording the failure.
        await wait_until(lambda: app.running_phase is None, 0.5)
        cancel_latency = time.perf_counter() - t_cancel
        await settle(app, pilot)
        row = app.query_one(PhaseStepper).row("discovery")
        assert row.status == "failed"
        assert "cancelled" in row.reason
        assert ("phase discovery cancelled", "warning") in notes
        assert app.running_phase is None
        with capsys.disabled():
            print(
                f"\nduring a run: key handled in max {max(key_latencies) * 1000:.1f} ms "
                f"(mean {sum(key_latencies) / 5 * 1000:.1f}); status shown in max "
                f"{max(refresh_latencies) * 1000:.1f} ms "
                f"(mean {sum(refresh_latencies) / 5 * 1000:.1f}); "
                f"cancel to idle {cancel_latency * 1000:.1f} ms"
            )


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
        row = app.query_one(PhaseStepper).row("discovery")
        assert (row.status, row.reason) == ("failed", "data.csv: target column [y] is constant")


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


# -- no project, quitting ------------------------------------------------------------------------
async def test_folder_without_config_shows_guidance(tmp_path: Path) -> None:
    app = MlwizardApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        notice = app.query_one("#notice", Static)
        assert notice.has_class("-visible")
        text = str(notice.render())
        assert "mlwizard new DIR --data PATH --target COL" in text
        assert "mlwizard.toml" in text
        assert not app.query_one(PhaseStepper).display
        await pilot.press("r", "a")  # disabled: nothing runs, nothing breaks
        await settle(app, pilot)
        assert app.running_phase is None
        assert app.is_running


async def test_invalid_config_shows_its_error(tmp_path: Path) -> None:
    (tmp_path / "mlwizard.toml").write_text("[data\n")
    app = MlwizardApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "not valid TOML" in str(app.query_one("#notice", Static).render())


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
        await wait_until(lambda: app.phase_status("discovery") == "running", 1.0)
        await pilot.press("q")
    assert app.return_code == 0
    # Quitting asked the core to stop, rather than waiting out the phase's remaining seconds.
    checkpoint = Workspace(project).read_checkpoint("discovery")
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.error) == ("failed", "phase discovery cancelled")


def test_importing_the_package_does_not_import_textual() -> None:
    code = (
        "import sys, mlwizard.tui; "
        "assert 'textual' not in sys.modules, 'textual imported'; "
        "from mlwizard.tui import run_tui; assert 'textual' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
