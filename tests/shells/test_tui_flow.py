"""The whole flow in the TUI on the bundled demo data, with the real phases, compared with the
same project taken through the phases headless; and keys during a real model run."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from helpers.tui import (
    FAST_MODEL,
    PENGUINS,
    artifact_names,
    build_finished_project,
    plain,
    scaffold_penguins,
    settle,
    wait_until,
)
from mlwizard.core import runner
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.tui.app import MlwizardApp
from mlwizard.tui.screens import NewProjectScreen
from mlwizard.tui.widgets import BarChart, PhaseStepper

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIZE = (100, 30)
RESPONSE_TIMEOUT = 10.0  # a hang guard, not a speed bound (see benchmarks/bench_tui_keys.py)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def finished_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_finished_project(tmp_path_factory.getbasetemp())


async def run_and_wait(app: MlwizardApp, pilot: Any, phase: str, timeout: float) -> None:
    app.simulate_key("r")
    await wait_until(lambda: app.phase_status(phase) in ("running", "done"), 2.0)
    await wait_until(
        lambda: app.running_phase is None and app.phase_status(phase) != "pending", timeout, 0.02
    )
    await settle(app, pilot)
    assert app.phase_status(phase) == "done", app.screen.query_one(PhaseStepper).row(phase).reason


async def press_and_time(app: MlwizardApp, count: int) -> list[tuple[float, bool]]:
    """Press `s` `count` times; (seconds until the UI handled it, model still running) each."""
    timings = []
    gc.collect()
    for _ in range(count):
        requests = app.status_requests
        t0 = time.perf_counter()
        app.simulate_key("s")
        await wait_until(lambda n=requests: app.status_requests > n, RESPONSE_TIMEOUT)
        timings.append((time.perf_counter() - t0, app.running_phase == "model"))
        await wait_until(lambda n=requests: app.status_refreshes >= n + 1, 2.0)
    return timings


async def test_full_flow_matches_the_headless_run(
    tmp_path: Path,
    finished_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "2")
    root = tmp_path / "flow"
    root.mkdir()
    (root / "penguins.csv").write_bytes(PENGUINS.read_bytes())
    app = MlwizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # A bare folder: the app offers to create the project.
        assert isinstance(app.screen, NewProjectScreen)
        app.screen.query_one("#new-data", Input).value = "penguins.csv"
        app.screen.query_one("#new-target", Input).value = "species"
        await pilot.click("#new-create")
        await settle(app, pilot)
        await settle(app, pilot)
        # Model settings a user would edit in mlwizard.toml: the same fast ones as headless.
        update_config_file(root / "mlwizard.toml", {"model": dict(FAST_MODEL)})

        # Discovery: the form is filled from the config; save and run.
        assert app.current_mode == "discovery"
        assert app.screen.query_one("#source", Input).value == "penguins.csv"
        await pilot.press("ctrl+r")
        await wait_until(lambda: app.phase_status("discovery") == "done", 30, 0.02)
        await wait_until(lambda: app.running_phase is None, 5, 0.02)
        await settle(app, pilot)
        summary = str(app.screen.query_one("#discovery-summary", Static).content)
        assert "multiclass task on 'species'" in summary

        # Data: profile per column, a chart, the splits.
        await pilot.press("2")
        await run_and_wait(app, pilot, "data", 60)
        assert app.screen.query_one("#profile", DataTable).row_count == 8
        assert app.screen.query_one("#chart", BarChart).bars
        assert "train" in str(app.screen.query_one("#splits", Static).content)

        # Model: a time budget, a live leaderboard, keys answered while it runs.
        await pilot.press("3")
        await pilot.pause()
        # The headless run's budget: a shorter one can bind on a busy machine, and then the
        # insured default-settings run stands in (correct, but not the same project).
        app.screen.query_one("#budget", Input).value = str(int(FAST_MODEL["time_budget"]))
        app.simulate_key("r")
        await wait_until(lambda: app.running_phase == "model", 2.0)
        # Past the start-up of the worker processes (forking holds the GIL): a run has finished.
        await wait_until(
            lambda: (
                any(r.get("status") not in (None, "running") for r in app.live_runs.values())
                or app.running_phase is None
            ),
            60,
            0.01,
        )
        timings = await press_and_time(app, 5)
        await wait_until(lambda: app.running_phase is None, 180, step=0.05)
        await settle(app, pilot)
        assert app.phase_status("model") == "done"
        assert set(app.live_runs) == {"dummy", "linear"}  # every run showed up live
        assert app.screen.query_one("#leaderboard", DataTable).row_count == 2
        detail = app.screen.query_one("#detail", Static)
        assert "confusion matrix" in plain(detail.content)

        # Deployment: parity, previews, the service started, asked and stopped.
        await pilot.press("4")
        await run_and_wait(app, pilot, "deploy", 60)
        assert app.screen.query_one("#parity", DataTable).row_count >= 1
        await pilot.press("u")
        await wait_until(lambda: app.service is not None or app.service_busy is None, 60, 0.05)
        assert app.service is not None, "the service did not start"
        await pilot.press("t")
        await wait_until(lambda: app.last_response is not None, 20, 0.05)
        answer = app.last_response
        assert answer is not None and answer.error is None, answer
        assert answer.status == 200
        assert answer.body["predictions"][0]["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}
        await pilot.press("d")
        await wait_until(lambda: app.service_busy is None, 15, 0.05)
        assert app.service is None

        # Operations: drift per feature and the advice.
        await pilot.press("5")
        await run_and_wait(app, pilot, "operations", 60)
        assert app.screen.query_one("#drift", DataTable).row_count == 7
        assert "retrain" in plain(app.screen.query_one("#advice", Static).content).lower()
        assert app.progress_percent == 100

        shown = {p: app.screen.query_one(PhaseStepper).row(p).status for p in runner.PHASE_NAMES}

        # Quitting stops a running service.
        app.start_service()
        await wait_until(lambda: app.service is not None or app.service_busy is None, 60, 0.05)
        assert app.service is not None
        process = app.service.process
        await pilot.press("q")
    assert app.return_code == 0
    assert process.poll() is not None, "the service outlived the app"
    # The TUI wrote the same checkpoints and artifacts as the headless run.
    headless = [s.status for s in runner.project_status(Workspace(finished_project))]
    ours = [s.status for s in runner.project_status(Workspace(root))]
    assert ours == headless == ["done"] * 5
    assert list(shown.values()) == ours
    assert artifact_names(root) == artifact_names(finished_project)
    with capsys.disabled():
        during = [t for t, running in timings if running]
        print(
            f"\nreal model run: {len(during)}/{len(timings)} keys pressed during it, handled in "
            f"max {max(t for t, _ in timings) * 1000:.1f} ms: "
            f"{[round(t * 1000) for t, _ in timings]}"
        )


async def test_keys_answer_during_a_real_model_run_and_c_cancels_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = scaffold_penguins(tmp_path / "p")
    # A search long enough to be still running while the keys are pressed.
    update_config_file(
        ws.config_path,
        {"model": {"candidates": ["linear", "hist_gradient_boosting"], "time_budget": 120.0}},
    )
    assert runner.run(ws, ["discovery", "data"]).exit_code == 0
    app = MlwizardApp(ws.root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "model"
        app.simulate_key("r")
        await wait_until(lambda: app.running_phase == "model", 2.0)
        # Past the start-up of the worker processes (forking holds the GIL): a run has finished
        # and another is running.
        await wait_until(
            lambda: (
                any(r.get("status") == "done" for r in app.live_runs.values())
                and any(r.get("status") == "running" for r in app.live_runs.values())
            ),
            60,
            0.01,
        )
        timings = await press_and_time(app, 10)
        assert all(running for _, running in timings), "the run ended before the keys"
        assert app.screen.query_one("#leaderboard", DataTable).row_count >= 1
        t0 = time.perf_counter()
        app.simulate_key("c")
        await wait_until(lambda: app.running_phase is None, 30, 0.01)
        cancel_s = time.perf_counter() - t0
        await settle(app, pilot)
        reason = app.screen.query_one(PhaseStepper).row("model").reason
        assert (app.phase_status("model"), "cancelled" in reason) == ("cancelled", True), reason
    latencies = [t for t, _ in timings]
    with capsys.disabled():
        print(
            f"\nreal model run: key handled in max {max(latencies) * 1000:.1f} ms "
            f"(mean {sum(latencies) / len(latencies) * 1000:.1f}) over {len(latencies)} keys; "
            f"cancel to idle {cancel_s:.2f} s"
        )
