"""The model phase on real projects: a hard time budget, and a `kill -9` mid-run that a rerun
resumes from without retraining what had finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.model import ALL_CANDIDATES, real_project, wide_frame
from mlwizard.core import runner
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.errors import MlwizardError
from mlwizard.core.model.experiments import STORE_FILE, ExperimentStore
from mlwizard.core.model.session import TRIALS_ENV

BUDGET_S = 15.0
TOLERANCE = 0.05


def test_a_short_budget_bounds_the_whole_phase(tmp_path: Path) -> None:
    """Every family with its full search on 30k rows cannot fit in 15 s: the phase keeps the best
    run that finished, says what it skipped, and ends within 5% of the budget."""
    ws = real_project(tmp_path, wide_frame(30_000), {"candidates": list(ALL_CANDIDATES)})
    events: list[ev.Event] = []
    started = time.perf_counter()

    def emit(event: ev.Event) -> None:  # a timeline, printed if the test fails
        events.append(event)
        print(f"{time.perf_counter() - started:6.2f}s {event.kind} {event.message[:150]}")

    try:
        outcome = runner.run_phase(ws, "model", time_budget=BUDGET_S, emit=emit)
    except MlwizardError as exc:  # only if not even one run fits (a very busy machine)
        outcome = None
        assert "time budget" in str(exc)
    elapsed = time.perf_counter() - started
    print(f"budget {BUDGET_S}s, phase took {elapsed:.2f}s ({100 * elapsed / BUDGET_S - 100:+.1f}%)")
    assert elapsed <= BUDGET_S * (1 + TOLERANCE)
    if outcome is not None:
        metrics = outcome.metrics
        assert metrics["skipped"] or metrics["incomplete"]
        assert metrics["best_model"] not in metrics["skipped"]
        texts = [e.message for e in events]
        assert any(t.startswith(("skipped by the time budget", "search cut short")) for t in texts)


def _workers_of(pid: int) -> list[int]:
    """The pool's spawn workers among the children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_kill_9_mid_run_then_a_rerun_reuses_the_finished_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "2")
    model = {"candidates": ["dummy", "linear", "catboost"], "workers": 2}
    ws = real_project(tmp_path, wide_frame(2500, seed=1), model)
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlwizard", "run", "--phase", "model", "-p", str(ws.root)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, TRIALS_ENV: "2", "NO_COLOR": "1"},
        )
        try:
            assert _wait_for(lambda: ": done in" in log.read_text(errors="replace"), 120), (
                log.read_text(errors="replace")
            )
            workers = _workers_of(process.pid)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
    assert workers, "the pool's workers were not found"
    # Orphaned workers notice their parent is gone and exit on their own.
    assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10)
    assert ws.read_checkpoint("model") is None  # the killed run never finished the phase

    saved = ws.artifact_dir("model") / "candidates"
    finished = {p.stem.rsplit("-", 1)[0]: p for p in saved.glob("*.json")}
    assert finished and set(finished) < set(model["candidates"])
    done = {path.stem for path in finished.values()}  # a killed run may have left a model file
    stamps = {p: p.stat().st_mtime_ns for p in saved.iterdir() if p.stem in done}
    recorded = ExperimentStore(ws.state_dir / STORE_FILE).runs()
    assert {r["candidate"] for r in recorded} <= set(finished)  # each run saved as it finished
    assert recorded  # the run reported before the kill is in the store

    events: list[ev.Event] = []
    outcome = runner.run_phase(ws, "model", time_budget=30, emit=events.append)
    assert set(outcome.metrics["reused"]) == set(finished)
    for name in finished:
        assert any(
            e.message.startswith(f"{name}: reused from an earlier run (not retrained)")
            for e in events
        )
        assert not any(e.message.startswith(f"{name}: started") for e in events)
    assert stamps and all(stamps[p] == p.stat().st_mtime_ns for p in stamps)
    trained = [e.payload.candidate for e in events if isinstance(e.payload, ev.CandidateStarted)]
    assert set(trained) == set(model["candidates"]) - set(finished)
