"""The candidate sweep with 2 workers against 1: same data, same candidates, side by side, on the
local pool and on a Dask cluster (a scheduler and 1 or 2 `dask worker --nthreads 1` processes on
127.0.0.1, started by this script).

    python benchmarks/bench_workers.py [--dataset credit] [--repeats 3] [--candidates ...]
        [--engines local,dask] [--code main=/path/to/tree --code branch=/path/to/tree]

One project is prepared (discovery and data phases); every repetition copies it afresh, so the
model phase starts with no run cache, sets `[model] workers` and runs `mlwizard run --phase model`
in a new process. The two settings alternate (1, 2, then 2, 1, ...) so that a noisy neighbour
hits both alike. The time budget is generous, so that both settings do the same work: each
candidate's search runs every configuration it plans; the script checks it and prints the number.

Two durations per run: the model phase as its checkpoint records it, and the sweep, from the
first candidate run's start to the last one's end, read from the experiment store
(`mlwizard.core.model.experiment_query.list_runs`), and the same span over the candidates' worker
jobs alone (without the ensemble the parent builds after the pool). One worker gets every core's
threads; two get half each (`workers.plan`), and the last jobs running take the cores idle
workers leave (the pool's elastic tail).

`--code LABEL=TREE` (repeatable): run the model phase with the mlwizard of each source tree (a
folder with `src/` and `templates/`, e.g. `git archive main src templates`), alternating trees
within each repetition, so that two commits are compared side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATASETS,
    checkpoint,
    describe,
    fresh_copy,
    load,
    machine,
    mlwizard,
    save,
    set_model_config,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.servers import running_dask  # the tests' launcher: scheduler + workers on 127.0.0.1

WORKERS = (1, 2)
ENGINES = ("local", "dask")


def sweep_seconds(project: Path, workers_only: bool = False) -> float:
    """First recorded run's start to the last one's end; `workers_only`: the candidates' worker
    jobs alone, without the ensemble the parent builds after them (the same in both settings)."""
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.model.experiment_query import list_runs

    runs = [r for r in list_runs(Workspace(project)) if r.started_at and r.duration_s]
    if workers_only:
        runs = [r for r in runs if r.candidate != "ensemble"]
    start = min(r.started_at for r in runs)
    end = max(r.started_at + timedelta(seconds=r.duration_s) for r in runs)
    return (end - start).total_seconds()


def one_run(
    prepared: Path,
    into: Path,
    workers: int,
    engine: str = "local",
    address: str = "",
    tree: Path | None = None,
) -> dict[str, Any]:
    project = fresh_copy(prepared, into)
    set_model_config(project, workers=workers)
    executor = ["--executor", f"dask://{address[len('tcp://') :]}"] if engine == "dask" else []
    env = {"PYTHONPATH": str(tree / "src")} if tree is not None else None
    report, wall = mlwizard(
        "run", "--phase", "model", "-p", project, "--json", *executor, ok=(0, 1), env=env
    )
    metrics = report["phases"]["model"]["metrics"]
    candidates = metrics["candidates"]
    return {
        "engine": engine,
        "workers": metrics["workers"],
        "threads_per_worker": metrics["threads_per_worker"],
        "model_phase_s": checkpoint(project, "model")["duration_s"],
        "sweep_s": round(sweep_seconds(project), 2),
        "jobs_sweep_s": round(sweep_seconds(project, workers_only=True), 2),
        "process_wall_s": round(wall, 2),
        "trials": {c["name"]: c.get("trials") for c in candidates},
        "all_complete": all(c["status"] == "done" and c.get("complete", True) for c in candidates),
        "best_model": metrics["best_model"],
    }


def summary(results: dict[str, Any]) -> str:
    engines = sorted({r.get("engine", "local") for r in results["runs"]}, key=ENGINES.index)
    codes = list(dict.fromkeys(r.get("code", "") for r in results["runs"]))
    parts = []
    for engine in engines:
        for code in codes:
            runs = [
                r
                for r in results["runs"]
                if r.get("engine", "local") == engine and r.get("code", "") == code
            ]
            label = f"{engine}, {code}" if code else engine
            parts.append(f"### {label}\n\n" + _summary({**results, "runs": runs}, label, results))
    return "\n\n".join(parts)


def _summary(results: dict[str, Any], engine: str, into: dict[str, Any]) -> str:
    by_workers = {w: [r for r in results["runs"] if r["workers"] == w] for w in WORKERS}
    lines = [
        "| workers × threads | model phase (s), each run | median | sweep (s), each run | median |",
        "|---|---|---|---|---|",
    ]
    medians: dict[int, dict[str, float]] = {}
    for w, runs in by_workers.items():
        phase = [r["model_phase_s"] for r in runs]
        sweep = [r["sweep_s"] for r in runs]
        medians[w] = {"phase": statistics.median(phase), "sweep": statistics.median(sweep)}
        threads = runs[0]["threads_per_worker"] if runs else "?"
        lines.append(
            f"| {w} × {threads} | {', '.join(f'{x:.1f}' for x in phase)} | "
            f"{medians[w]['phase']:.1f} | {', '.join(f'{x:.1f}' for x in sweep)} | "
            f"{medians[w]['sweep']:.1f} |"
        )
    phase_ratio = medians[1]["phase"] / medians[2]["phase"]
    sweep_ratio = medians[1]["sweep"] / medians[2]["sweep"]
    jobs = {
        w: [r["jobs_sweep_s"] for r in runs if "jobs_sweep_s" in r]
        for w, runs in by_workers.items()
    }
    jobs_ratio = (
        statistics.median(jobs[1]) / statistics.median(jobs[2]) if jobs[1] and jobs[2] else None
    )
    paired = []  # each repetition's two runs ran back to back, under the same neighbours
    for repeat in sorted({r["repeat"] for r in results["runs"]}):
        pair = {r["workers"]: r for r in results["runs"] if r["repeat"] == repeat}
        if set(pair) == set(WORKERS):
            paired.append(round(pair[1]["sweep_s"] / pair[2]["sweep_s"], 2))
    into.setdefault("speedup", {})[engine] = {
        "model_phase": round(phase_ratio, 2),
        "sweep": round(sweep_ratio, 2),
        "sweep_per_repeat": paired,
        "jobs_sweep": None if jobs_ratio is None else round(jobs_ratio, 2),
    }
    lines.append("")
    lines.append(
        f"Speed-up of 2 workers over 1 (ratio of medians): sweep {sweep_ratio:.2f}×, "
        f"whole model phase {phase_ratio:.2f}×; sweep, repetition by repetition: "
        f"{', '.join(f'{x:.2f}×' for x in paired)}."
    )
    if jobs_ratio is not None:
        lines.append(
            f"The candidates' worker jobs alone (the sweep without the ensemble the parent builds "
            f"after them): {', '.join(f'{x:.1f}' for x in jobs[1])} s with 1 worker, "
            f"{', '.join(f'{x:.1f}' for x in jobs[2])} s with 2: {jobs_ratio:.2f}×."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="credit", choices=sorted(DATASETS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=900.0, help="generous: no search cut")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--candidates", default="", help="mlwizard [model] candidates (default: the project's)"
    )
    parser.add_argument("--engines", default="local", help="local, dask, or local,dask")
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        help="LABEL=TREE: also run the model phase with the mlwizard of source tree TREE",
    )
    parser.add_argument("--out", type=Path, help="write the raw results as JSON here")
    parser.add_argument("--report", type=Path, help="only print the summary of saved results")
    args = parser.parse_args()
    if args.report:
        print(summary(json.loads(args.report.read_text(encoding="utf-8"))))
        return
    dataset = DATASETS[args.dataset]
    frame = load(dataset)
    trees: dict[str, Path | None] = {"": None}
    if args.code:
        trees = {}
        for item in args.code:
            label, _, path = item.partition("=")
            trees[label] = Path(path).resolve()

    results: dict[str, Any] = {
        "machine": machine(),
        "dataset": args.dataset,
        "data": describe(dataset, frame),
        "budget_s": args.budget,
        "code": {label: str(tree) for label, tree in trees.items() if tree is not None},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="mlwizard-workers-") as tmp:
        data = Path(tmp) / f"{args.dataset}.csv"
        frame.to_csv(data, index=False)
        prepared = Path(tmp) / "prepared"
        mlwizard("new", prepared, "--data", data, "--target", dataset.target)
        settings: dict[str, Any] = {"time_budget": args.budget}
        if args.candidates:
            settings["candidates"] = args.candidates.split(",")
        set_model_config(prepared, **settings)
        from mlwizard.core.kernel.config import update_config_file

        update_config_file(prepared / "mlwizard.toml", {"project": {"seed": args.seed}})
        mlwizard("run", "--phase", "discovery", "-p", prepared)
        mlwizard("run", "--phase", "data", "-p", prepared)
        engines = args.engines.split(",")
        with contextlib.ExitStack() as stack:
            clusters = {}
            if "dask" in engines:  # one cluster per worker count, started once, idle between runs
                for w in WORKERS:
                    folder = Path(tmp) / f"dask-{w}"
                    folder.mkdir()
                    clusters[w] = stack.enter_context(running_dask(folder, w)).address
            for repeat in range(args.repeats):
                order = WORKERS if repeat % 2 == 0 else tuple(reversed(WORKERS))
                labels = list(trees) if repeat % 2 == 0 else list(reversed(trees))
                for engine in engines:
                    for label in labels:
                        for workers in order:
                            into = Path(tmp) / f"{engine}-{label}-w{workers}-r{repeat}"
                            address = clusters.get(workers, "")
                            tree = trees[label]
                            run = one_run(prepared, into, workers, engine, address, tree)
                            run["repeat"], run["code"] = repeat, label
                            run["load_average"] = list(os.getloadavg())
                            results["runs"].append(run)
                            print(f"repeat {repeat}: {run}", file=sys.stderr)
    results["machine"]["load_average_end"] = machine()["load_average"]
    same_work = {tuple(sorted(r["trials"].items())) for r in results["runs"]}  # all engines
    results["same_work"] = len(same_work) == 1 and all(r["all_complete"] for r in results["runs"])
    text = summary(results)
    save(results, args.out)
    print(text)
    if not results["same_work"]:
        print("\nWARNING: the runs did not all do the same work (see trials / all_complete).")


if __name__ == "__main__":
    main()
