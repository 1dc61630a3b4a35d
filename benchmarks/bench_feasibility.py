"""The feasibility estimate against the measured model phase, on the project's own tables.

Each table runs discovery, data and model through the CLI, in a fresh process, with a budget that
does not bind (default 300 s). The script records the model phase's wall time (its checkpoint),
each candidate's run time, and the peak resident memory of the process tree (polled), then:

- `--calibrate`: fits the per-family cost model (fixed seconds + seconds per million cells) to the
  measured candidate times and writes `src/mlwizard/core/discovery/calibration.json`;
- always: compares discovery's estimate with the measured phase (leave-one-table-out: the table
  being estimated is left out of the fit the estimate is checked with).

Reproduce:  .venv/bin/python benchmarks/bench_feasibility.py --calibrate
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from _common import DATASETS, REPO, checkpoint, load, machine, save

CALIBRATION = REPO / "src" / "mlwizard" / "core" / "discovery" / "calibration.json"


def _peak_rss(process: subprocess.Popen[bytes], stop: threading.Event, out: list[int]) -> None:
    root = psutil.Process(process.pid)
    peak = 0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out.append(peak)


def run_table(spec: str, workdir: Path, budget: float) -> dict[str, Any]:
    """`spec`: a dataset name, or NAME:clustering / NAME:anomaly (the target dropped, or kept as
    the anomaly label)."""
    name, _, approach = spec.partition(":")
    dataset = DATASETS[name]
    frame = load(dataset)
    if approach == "clustering":
        frame = frame.drop(columns=[dataset.target])
    data = workdir / f"{name}.csv"
    frame.to_csv(data, index=False)
    project = workdir / f"project-{name}-{approach or 'supervised'}"
    target = "" if approach == "clustering" else dataset.target
    from mlwizard.core.kernel.config import update_config_file
    from mlwizard.core.scaffold import create_project

    create_project(project, data=data, target=target)
    if approach:
        update_config_file(project / "mlwizard.toml", {"discovery": {"approach": approach}})
    command = [
        sys.executable, "-m", "mlwizard", "run", "--project", str(project),
        "--phase", "all", "--time-budget", str(budget), "--json",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=_peak_rss, args=(process, stop, peak))
    watcher.start()
    stdout, _ = process.communicate()
    stop.set()
    watcher.join()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{name}: exit {process.returncode}")
    discovery = checkpoint(project, "discovery")["metrics"]
    data_cp = checkpoint(project, "data")["metrics"]
    model = checkpoint(project, "model")
    return {
        "table": spec,
        "rows": data_cp["splits"]["train"]["rows"],
        "features": len(data_cp["features"]),
        "model_phase_s": model["duration_s"],
        "peak_rss_mb": round(peak[0] / 2**20),
        "candidates": {
            c["name"]: c["duration_s"] for c in model["metrics"]["candidates"] if c["duration_s"]
        },
        "workers": model["metrics"]["workers"],
        "estimate_at_discovery": discovery.get("feasibility"),
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
        "stdout_ok": bool(stdout),
    }


def slowdown(run: dict[str, Any]) -> float:
    """The run's contention, from the 5-minute load average at its end (it lasted minutes)."""
    from mlwizard.core.discovery.feasibility import contention

    return contention(run["load_average"][1], run.get("cpus") or 2)


def fit(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """Per family, at idle speed: duration = fixed_s + per_mcell_s * (train rows x features / 1e6);
    and the phase's own seconds beyond its candidates' (median over runs)."""
    from mlwizard.core.discovery.feasibility import estimate_seconds

    families: dict[str, Any] = {}
    names = sorted({n for r in runs for n in r["candidates"]})
    for name in names:
        points = [
            (r["rows"] * r["features"] / 1e6, r["candidates"][name] / slowdown(r))
            for r in runs
            if name in r["candidates"]
        ]
        x = np.array([p[0] for p in points])
        y = np.array([p[1] for p in points])
        if len(points) >= 3 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            slope, intercept = max(float(slope), 0.0), float(intercept)
            if intercept < 0:  # keep it through the points' mean
                slope, intercept = float(y.mean() / x.mean()), 0.0
        else:
            slope, intercept = 0.0, float(y.mean())
        families[name] = {"fixed_s": round(intercept, 3), "per_mcell_s": round(slope, 3)}
    overheads = []
    for r in runs:
        table = {"phase_fixed_s": 0.0, "phase_per_mcell_s": 0.0}
        candidates = estimate_seconds(
            r["rows"],
            r["features"],
            list(r["candidates"]),
            r["workers"],
            float("inf"),
            families,
            table=table,
        )
        overheads.append(r["model_phase_s"] / slowdown(r) - candidates)
    return families, max(0.0, float(np.median(overheads)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", default="penguins,credit,chile,slid,ames")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--from-json", type=Path, help="reuse measured runs instead of running")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "feasibility.json"
    )
    args = parser.parse_args()
    if args.from_json:
        runs = json.loads(args.from_json.read_text())["runs"]
    else:
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.tables.split(","):
                runs.append(run_table(name, Path(tmp), args.budget))
                print(json.dumps(runs[-1]), flush=True)
    results: dict[str, Any] = {"machine": machine(), "budget_s": args.budget, "runs": runs}
    if not args.from_json:
        save(results, args.out)
    if args.calibrate:
        table = json.loads(CALIBRATION.read_text()) if CALIBRATION.exists() else {}
        families, overhead = fit(runs)
        table["families"] = {**table.get("families", {}), **families}
        table["phase_fixed_s"] = round(overhead, 2)
        table["measured"] = {
            "tables": [r["table"] for r in runs],
            "date": results["machine"]["date"],
            "load_average": results["machine"]["load_average"],
            "note": "2 shared cores, busy with other engineers' work",
        }
        CALIBRATION.write_text(json.dumps(table, indent=2) + "\n")
    from mlwizard.core.discovery.feasibility import estimate_seconds

    comparison = []
    for run in runs:
        others = [r for r in runs if r is not run]
        families, overhead = fit(others)
        table = {"phase_fixed_s": overhead, "phase_per_mcell_s": 0.0}
        estimated = estimate_seconds(
            run["rows"],
            run["features"],
            list(run["candidates"]),
            run["workers"],
            args.budget,
            families,
            slowdown=slowdown(run),
            table=table,
        )
        comparison.append(
            {
                "table": run["table"],
                "rows x features": f"{run['rows']} x {run['features']}",
                "estimated_s (leave-one-out)": round(estimated, 1),
                "measured_s": run["model_phase_s"],
                "ratio": round(estimated / run["model_phase_s"], 2),
                "contention": round(slowdown(run), 2),
                "budget_binds": estimated >= args.budget,
            }
        )
    results["comparison"] = comparison
    for row in comparison:
        print(row)
    save(results, args.out)


if __name__ == "__main__":
    main()
