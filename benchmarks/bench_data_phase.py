"""Benchmark: the whole data phase against one bare DuckDB aggregate scan of the same CSV.

    .venv/bin/python benchmarks/bench_data_phase.py                  # 2M rows x 20 columns
    .venv/bin/python benchmarks/bench_data_phase.py --rows 200000 --repeat 1   # a quick look

The CSV is `bench_profile.py`'s (12 numeric, 7 categorical columns with nulls, a binary yes/no
target; cached in `--data-dir`). Each measurement runs in a fresh subprocess that reports its
wall time, CPU time and peak resident memory (`VmHWM`, interpreter included); runs are
interleaved (bare, data, bare, data, ...) so that a noisy neighbour hits both alike.

- **bare**: one DuckDB aggregate over every column (`count(*)` and `min` of each): the cost of
  parsing the file once, the floor.
- **data**: `mlwizard.core.runner.run(ws, ["data"])` on a project whose source is the CSV (the
  discovery phase has run beforehand, outside the measurement): reading, profile, audit,
  leakage models, split, writing the snapshot, splits and reports.

Goal (issue 12): data <= 3x the bare scan and <= 1 GB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_profile import TARGET, _load, _peak_mb, dataset

KINDS = ("bare", "data")
GOAL_RATIO = 3.0
GOAL_PEAK_MB = 1024


def prepare(path: Path, root: Path) -> Path:
    """A project on the CSV (by absolute path, not copied), discovery done."""
    from mlwizard.core import runner
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.scaffold import write_config

    root.mkdir(parents=True, exist_ok=True)
    write_config(root, str(path), TARGET)
    report = runner.run(Workspace(root), ["discovery"])
    if report.error is not None:
        raise SystemExit(f"discovery failed: {report.error}")
    return root


def measure(kind: str, path: Path, project: Path) -> dict[str, float]:
    import duckdb

    before = resource.getrusage(resource.RUSAGE_SELF)
    if kind == "bare":
        from mlwizard.core.sql import quote_ident

        con = duckdb.connect(":memory:")
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        relation = con.read_csv(str(path))
        exprs = ["count(*)"] + [f"min({quote_ident(c)})" for c in relation.columns]
        relation.aggregate(", ".join(exprs)).fetchall()
    else:
        from mlwizard.core import runner
        from mlwizard.core.kernel.workspace import Workspace

        ws = Workspace(project)
        state = ws.checkpoint_path("data")
        state.unlink(missing_ok=True)  # run the phase, not its skip
        started = time.perf_counter()
        report = runner.run(ws, ["data"])
        if report.error is not None:
            raise SystemExit(f"data phase failed: {report.error}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mb": _peak_mb(after)}


def _run_child(kind: str, path: Path, project: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--csv", str(path), "--project", str(project)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument(
        "--data-dir", type=Path, default=Path.home() / ".cache" / "mlwizard" / "bench"
    )
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.csv, args.project)))
        return

    path = dataset(args.data_dir, args.rows)
    project = Path(tempfile.mkdtemp(prefix="mlwizard-bench-data-"))
    try:
        prepare(path, project)
        print(
            f"{args.rows:,} rows x 20 columns, {path.stat().st_size / 1e6:.0f} MB CSV; "
            f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; "
            f"best of {args.repeat}; load average before: {_load()}"
        )
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
        for round_ in range(args.repeat):
            for kind in KINDS:
                runs[kind].append(_run_child(kind, path, project))
                last = runs[kind][-1]
                print(
                    f"  run {round_ + 1} {kind:5s} wall {last['wall']:7.2f} s  "
                    f"cpu {last['cpu']:7.2f} s  peak {last['peak_mb']:6.0f} MB",
                    flush=True,
                )
    finally:
        shutil.rmtree(project, ignore_errors=True)
    print(f"load average after: {_load()}")
    floor = min(r["wall"] for r in runs["bare"])
    floor_cpu = min(r["cpu"] for r in runs["bare"])
    print(
        f"\n{'':6s} {'best wall':>10s} {'median':>8s} {'best cpu':>9s} {'peak MB':>8s} "
        f"{'x bare (wall)':>14s} {'x bare (cpu)':>13s}"
    )
    for kind in KINDS:
        walls = [r["wall"] for r in runs[kind]]
        cpu = min(r["cpu"] for r in runs[kind])
        peak = max(r["peak_mb"] for r in runs[kind])
        print(
            f"{kind:6s} {min(walls):9.2f}s {statistics.median(walls):7.2f}s {cpu:8.2f}s "
            f"{peak:8.0f} {min(walls) / floor:13.2f}x {cpu / floor_cpu:12.2f}x"
        )
    wall = min(r["wall"] for r in runs["data"])
    peak = max(r["peak_mb"] for r in runs["data"])
    ratio = wall / floor
    verdict = "meets" if ratio <= GOAL_RATIO and peak <= GOAL_PEAK_MB else "misses"
    print(
        f"\ndata phase: {ratio:.2f}x the bare scan, {peak:.0f} MB peak — {verdict} the goal "
        f"(<= {GOAL_RATIO}x, <= {GOAL_PEAK_MB} MB)"
    )


if __name__ == "__main__":
    main()
