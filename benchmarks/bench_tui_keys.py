"""Key latency in the TUI while a phase runs: what the tests no longer time.

    python benchmarks/bench_tui_keys.py [--keys 20]

The app runs headless (Textual's `run_test`) on a tiny project whose data phase is replaced by a
slow stand-in that sleeps in 10 ms steps and checks the cancel event, as a real phase does between
steps. While it runs, `s` is pressed `--keys` times; for each press the script records the time
until the app handled the key and until the fresh status (read by a thread worker) was shown.
Then `c` is pressed and the time until the app is idle again is recorded.

The figures are wall-clock on a shared machine: read them as an order of magnitude, and rerun on
a quiet machine before comparing changes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlwizard.core import runner
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.tui.app import MlwizardApp


def slow_phase(ctx: PhaseContext) -> PhaseResult:
    ctx.message("slow phase started")
    for _ in range(6000):  # a minute at most; the benchmark cancels it
        ctx.check_cancelled()
        time.sleep(0.01)
    return PhaseResult()


def make_project(root: Path) -> Path:
    (root / "mlwizard.toml").write_text('[data]\nsource = "data.csv"\ntarget = "y"\n')
    rows = [f"{i},{(i * 7) % 11 / 10:.1f},{'ab'[i % 2]},{int(i % 3 == 0)}" for i in range(60)]
    (root / "data.csv").write_text("n,x,c,y\n" + "\n".join(rows) + "\n")
    ws = Workspace(root)
    inputs, _ = runner.current_inputs(ws, ws.load_config(), "discovery")
    ws.write_checkpoint(
        Checkpoint(phase="discovery", status="done", inputs=inputs, fingerprint=hash_value(inputs))
    )
    return root


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the app did not answer within 30 s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def measure(project: Path, keys: int) -> dict[str, list[float]]:
    app = MlwizardApp(project)
    handled, shown = [], []
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.simulate_key("r")
        await until(lambda: "slow phase started" in app.activity)
        for _ in range(keys):
            requests, refreshes = app.status_requests, app.status_refreshes
            t0 = time.perf_counter()
            app.simulate_key("s")
            await until(lambda n=requests: app.status_requests > n)
            handled.append(time.perf_counter() - t0)
            await until(lambda n=refreshes: app.status_refreshes > n)
            shown.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        app.simulate_key("c")
        await until(lambda: app.running_phase is None)
        cancel = [time.perf_counter() - t0]
    return {"key handled": handled, "status shown": shown, "cancel to idle": cancel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    runner.PhaseSpec.load = lambda self: (  # type: ignore[method-assign]
        slow_phase if self.name == "data" else importlib_load(self)
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(measure(make_project(Path(tmp)), args.keys))
    for name, values in results.items():
        ms = [v * 1000 for v in values]
        print(f"{name:>15}: median {statistics.median(ms):7.1f} ms, max {max(ms):7.1f} ms")


importlib_load = runner.PhaseSpec.load

if __name__ == "__main__":
    main()
