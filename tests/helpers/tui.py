"""Real projects for the TUI tests, and helpers to drive the app with bounded waits.

`finished_project` is the bundled penguins data taken through all five phases headless, once per
test session, with a fixed seed, two fast candidates and a capped search, so that what the
screens show is the same on every run. Fields that change from run to run whatever the seed
(durations, timestamps, float noise in the ONNX parity check) are then set to fixed values, so
snapshots of the screens are stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerFailed

from mlwizard.core import runner
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.core.scaffold import create_project

PENGUINS = Path(str(resources.files("mlwizard.datasets") / "penguins.csv"))
FAST_MODEL = {"candidates": ["dummy", "linear"], "time_budget": 60.0, "workers": 1}
FAST_TRIALS = "2"
FIXED_TIME = "2026-01-01T00:00:00+00:00"
VOLATILE: dict[str, Any] = {
    "duration_s": 1.0,
    "fit_s": 1.0,
    "started_at": FIXED_TIME,
    "finished_at": FIXED_TIME,
    "created_at": FIXED_TIME,
    "max_abs_diff": 1e-7,
    "onnx_max_abs_diff": 1e-7,
}


@contextlib.contextmanager
def fast_trials() -> Iterator[None]:
    old = os.environ.get(TRIALS_ENV)
    os.environ[TRIALS_ENV] = FAST_TRIALS
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRIALS_ENV, None)
        else:
            os.environ[TRIALS_ENV] = old


def scaffold_penguins(root: Path) -> Workspace:
    create_project(root, data=PENGUINS, target="species")
    update_config_file(root / "mlwizard.toml", {"model": dict(FAST_MODEL)})
    return Workspace(root)


@functools.cache
def build_finished_project(base: Path) -> Path:
    """Penguins through every phase headless; built once per session (cached on `base`)."""
    root = base / "demo"
    ws = scaffold_penguins(root)
    with fast_trials():
        report = runner.run(ws, runner.PHASE_NAMES, time_budget=FAST_MODEL["time_budget"])
    assert report.exit_code == 0, report.to_json()
    normalize_volatile(root)
    return root


def normalize_volatile(root: Path) -> None:
    """Set durations, timestamps and parity noise to fixed values in checkpoints and artifacts."""
    paths = [*(root / ".mlwizard" / "checkpoints").glob("*.json")]
    paths += [p for p in (root / "artifacts").rglob("*.json") if p.is_file()]
    for path in paths:
        value = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(_fixed(value), indent=1), encoding="utf-8")


def _fixed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: VOLATILE[k] if k in VOLATILE else _fixed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fixed(v) for v in value]
    return value


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def artifact_names(root: Path) -> set[str]:
    """Files under artifacts/, with content hashes in names replaced (they name runs), and the
    project's own name (the schedule's systemd units are named after it)."""
    import re

    names = set()
    for path in (root / "artifacts").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(root).as_posix()
            rel = re.sub(r"-[0-9a-f]{16}(?=\.)", "-HASH", rel)
            # A run that stood in for its family's unfinished full run (a busy machine).
            rel = rel.replace("/candidates/insured/", "/candidates/")
            names.add(rel.replace(f"mlwizard-{root.name}.", "mlwizard-PROJECT."))
    return names


def plain(renderable: Any, width: int = 100) -> str:
    """A Rich renderable as plain text."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


async def settle(app: Any, pilot: Pilot[Any]) -> None:
    """Wait for the running workers, then let the app handle what they posted."""
    with contextlib.suppress(WorkerFailed, WorkerCancelled):
        await app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.001) -> None:
    """Poll `condition` every `step` s, yielding to the app's loop; fail after `timeout`.

    Plain `asyncio.sleep`, not `pilot.pause`, which also waits for screen updates and would
    add its own delay to the latency being measured.
    """
    deadline = time.perf_counter() + timeout
    for _ in range(int(timeout / step) + 1):  # bounded even if the clock misbehaves
        if condition():
            return
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(step)
    if not condition():
        raise AssertionError(f"condition not met within {timeout * 1000:.0f} ms")


COMMITTED_PROJECT = Path(__file__).resolve().parents[1] / "data" / "tui_project.tar.gz"


def committed_finished_project(target: Path) -> Path:
    """A copy of the committed finished project (`tests/data/make_tui_project.py`), its
    checkpoints re-signed with the inputs the current code reads: every phase is done and up to
    date, whatever the config's defaults are now, and nothing is trained at test time."""
    with tarfile.open(COMMITTED_PROJECT) as archive:
        archive.extractall(target, filter="data")
    root = target
    ws = Workspace(root)
    config = ws.load_config()
    for phase in runner.PHASE_NAMES:
        checkpoint = ws.read_checkpoint(phase)
        assert checkpoint is not None, f"the committed project has no {phase} checkpoint"
        checkpoint.inputs, not_ready = runner.current_inputs(ws, config, phase)
        assert not not_ready, not_ready
        checkpoint.fingerprint = hash_value(checkpoint.inputs)
        ws.write_checkpoint(checkpoint)
    return root
