"""Benchmark: the data profile against one bare DuckDB scan and against pandas.

    .venv/bin/python benchmarks/bench_profile.py                  # 5M rows x 20 columns, best of 3
    .venv/bin/python benchmarks/bench_profile.py --rows 200000 --repeat 1   # a quick look

The CSV (mixed numeric and categorical columns, with nulls) is generated once, seeded, and cached in
`--data-dir` (default `~/.cache/mlwizard/bench`). Each measurement runs in a fresh subprocess, which
reports its own wall time, CPU time and peak resident memory (`VmHWM`, interpreter included), so
no run inherits another's memory or caches inside DuckDB. Runs are interleaved
(bare, profile, pandas, bare, ...) so that a noisy neighbour hits all three alike.

- **bare**: one DuckDB aggregate over every column, `count(*)` and `min` of each: the floor, the
  cost of parsing the file once.
- **profile**: `mlwizard.core.data.profile.profile_dataset` with a target (what the data phase
  runs).
- **pandas**: `pandas.read_csv` then `DataFrame.describe(include="all")`.

Goal (issue 3): profile <= 2.5x the bare scan and <= 1.5 GB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

KINDS = ("bare", "profile", "pandas")
TARGET = "label"
GOAL_RATIO = 2.5
GOAL_PEAK_MB = 1536


def _chunk(rng: np.random.Generator, rows: int, offset: int) -> pa.Table:
    """12 numeric columns, 7 categorical ones and a binary target that depends on two of them."""

    def with_nulls(values: np.ndarray, fraction: float) -> pa.Array:
        return pa.array(values, mask=rng.random(rows) < fraction)

    normal = rng.normal(size=rows)
    colour = rng.choice(np.array(["red", "green", "blue"]), size=rows)
    signal = normal + np.where(colour == "red", 1.0, 0.0) + rng.normal(scale=0.8, size=rows)
    devices = np.array(["ios", "android", "web", "tv", "other"])
    columns = {
        "num_normal": with_nulls(normal, 0.05),
        "num_uniform": pa.array(rng.uniform(0, 100, rows)),
        "num_count": pa.array(rng.poisson(3, rows)),
        "num_skewed": with_nulls(rng.lognormal(0, 1, rows), 0.02),
        "num_corr": pa.array(0.8 * normal + 0.6 * rng.normal(size=rows)),
        "num_price": pa.array(np.round(rng.gamma(2, 20, rows), 2)),
        "num_digit": pa.array(rng.integers(0, 10, rows)),
        "num_shifted": pa.array(rng.normal(-50, 5, rows)),
        "num_sparse": with_nulls(rng.normal(size=rows), 0.4),
        "num_big": pa.array(rng.exponential(1e6, rows)),
        "num_age": with_nulls(rng.integers(18, 91, rows), 0.03),
        "num_score": pa.array(rng.beta(2, 5, rows)),
        "cat_colour": with_nulls(colour, 0.08),
        "cat_city": pa.array(np.char.add("city_", rng.integers(0, 50, rows).astype(str))),
        "cat_code": pa.array(np.char.add("c", rng.integers(0, 50_000, rows).astype(str))),
        "cat_flag": pa.array(rng.random(rows) < 0.3),
        "cat_grade": with_nulls(rng.choice(np.array(list("ABCDEF")), size=rows), 0.1),
        "cat_device": pa.array(rng.choice(devices, size=rows, p=[0.3, 0.4, 0.2, 0.05, 0.05])),
        "cat_id": pa.array(np.char.add("u", np.arange(offset, offset + rows).astype(str))),
        TARGET: pa.array(np.where(signal > 0.5, "yes", "no")),
    }
    return pa.table(columns)


def dataset(directory: Path, rows: int, seed: int = 0) -> Path:
    """The cached CSV for `rows`, generated (in 500k-row chunks, then renamed) when missing."""
    path = directory / f"profile-{rows}x20-seed{seed}.csv"
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    try:
        with open(tmp, "wb") as handle:
            writer = None
            for offset in range(0, rows, 500_000):
                table = _chunk(rng, min(500_000, rows - offset), offset)
                writer = writer or pacsv.CSVWriter(handle, table.schema)
                writer.write_table(table)
            if writer is not None:
                writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    size = path.stat().st_size / 1e6
    print(f"generated {path} ({size:.0f} MB) in {time.perf_counter() - started:.1f} s")
    return path


# --- one measurement, in its own process -------------------------------------------------------


def measure(kind: str, path: Path) -> dict[str, float]:
    """Run one measurement here and return wall/CPU seconds of the work and this process's peak."""
    if kind == "pandas":
        import pandas as pd

        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        frame = pd.read_csv(path)
        frame.describe(include="all")
    else:
        import duckdb

        from mlwizard.core.data.profile import profile_dataset
        from mlwizard.core.ingest.sources import quote_ident

        con = duckdb.connect(":memory:")
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        relation = con.read_csv(str(path))
        if kind == "bare":
            exprs = ["count(*)"] + [f"min({quote_ident(c)})" for c in relation.columns]
            relation.aggregate(", ".join(exprs)).fetchall()
        else:
            profile_dataset(con, relation, target=TARGET, task="binary", seed=0)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mb": _peak_mb(after)}


def _peak_mb(usage: resource.struct_rusage) -> float:
    """This process's peak resident memory. Linux keeps `ru_maxrss` across `exec`, so a child
    would report its parent's peak if that was higher (after generating the CSV, say); `VmHWM`
    belongs to the new address space only."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return usage.ru_maxrss / 1024


def _run_child(kind: str, path: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--csv", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument(
        "--data-dir", type=Path, default=Path.home() / ".cache" / "mlwizard" / "bench"
    )
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.csv)))
        return

    path = dataset(args.data_dir, args.rows)
    kinds = [k for k in KINDS if not (args.skip_pandas and k == "pandas")]
    print(
        f"{args.rows:,} rows x 20 columns, {path.stat().st_size / 1e6:.0f} MB CSV; "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; "
        f"best of {args.repeat}; load average before: {_load()}"
    )
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for round_ in range(args.repeat):
        for kind in kinds:
            runs[kind].append(_run_child(kind, path))
            last = runs[kind][-1]
            print(
                f"  run {round_ + 1} {kind:8s} wall {last['wall']:7.2f} s  "
                f"cpu {last['cpu']:7.2f} s  peak {last['peak_mb']:6.0f} MB",
                flush=True,
            )
    print(f"load average after: {_load()}")
    floor = min(r["wall"] for r in runs["bare"])
    floor_cpu = min(r["cpu"] for r in runs["bare"])
    print(
        f"\n{'':8s} {'best wall':>10s} {'median':>8s} {'best cpu':>9s} {'peak MB':>8s} "
        f"{'x bare (wall)':>14s} {'x bare (cpu)':>13s}"
    )
    for kind in kinds:
        walls = [r["wall"] for r in runs[kind]]
        cpu = min(r["cpu"] for r in runs[kind])
        peak = max(r["peak_mb"] for r in runs[kind])
        print(
            f"{kind:8s} {min(walls):9.2f}s {statistics.median(walls):7.2f}s {cpu:8.2f}s "
            f"{peak:8.0f} {min(walls) / floor:13.2f}x {cpu / floor_cpu:12.2f}x"
        )
    profile_wall = min(r["wall"] for r in runs["profile"])
    profile_peak = max(r["peak_mb"] for r in runs["profile"])
    ratio = profile_wall / floor
    verdict = "meets" if ratio <= GOAL_RATIO and profile_peak <= GOAL_PEAK_MB else "misses"
    print(
        f"\nprofile: {ratio:.2f}x the bare scan, {profile_peak:.0f} MB peak — {verdict} the goal "
        f"(<= {GOAL_RATIO}x, <= {GOAL_PEAK_MB} MB)"
    )
    if "pandas" in runs:
        pandas_wall = min(r["wall"] for r in runs["pandas"])
        print(f"pandas read_csv + describe: {pandas_wall / profile_wall:.1f}x the profile's time")


if __name__ == "__main__":
    main()
