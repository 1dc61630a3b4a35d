"""Benchmark: drift of 1M current rows against 1M reference rows x 20 columns.

    .venv/bin/python benchmarks/bench_drift.py --evidently /work/venvs/evidently/bin/python
    .venv/bin/python benchmarks/bench_drift.py --rows 100000 --repeat 1   # a quick look

Two seeded Parquet files (12 numeric columns, 3 with nulls; 8 categorical ones, 2 with nulls;
the current file shifted on 4 columns) are generated once into `--data-dir`. Each measurement
runs in a fresh subprocess that reports its own wall time, CPU time and peak resident memory
(`VmHWM`, interpreter included). Runs are interleaved so a noisy neighbour hits every kind alike.

- **sql**: the plain-SQL floor: one DuckDB query for the reference deciles (`approx_quantile`,
  as mlwizard: PSI bins need fixed edges, not exact deciles) and top categories,
  one query per file with a `histogram()` of each column's bin index (several times faster than
  one `count(*) FILTER` per bin), PSI in Python.
- **mlwizard**: on the connection monitoring uses (`drift.connect`: DuckDB memory bounded at
  256 MB), `reference.build_reference` on the reference file (what the operations phase does
  at training time) then `checks.feature_drift` on the current one (what `mlwizard monitor`
  runs): PSI, noise floor, Jensen–Shannon, chi-square, missing-rate test, new categories.
- **evidently**: Evidently 0.7.23 `Report([DataDriftPreset()])` on the two files read with
  pandas, in its own venv (`pip install evidently==0.7.23 'pandas<3'`), run `--evidently-repeat`
  times (default once: it is the slow one).

Goals (issue 11): mlwizard <= 1.3x the SQL floor, >= 20x faster than Evidently, <= 400 MB peak.
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
import pyarrow.parquet as pq

GOAL_FLOOR_RATIO = 1.3
GOAL_EVIDENTLY_SPEEDUP = 20
GOAL_PEAK_MB = 400
NUMERIC = [f"num_{i:02d}" for i in range(12)]
CATEGORICAL = [f"cat_{i:02d}" for i in range(8)]
DECILES = [i / 10 for i in range(1, 10)]


def _table(rows: int, seed: int, shifted: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(NUMERIC):
        values = rng.normal(loc=0.5 if shifted and i < 2 else 0.0, size=rows) * (1 + i)
        mask = rng.random(rows) < (0.05 + (0.15 if shifted and i == 2 else 0)) if i < 3 else None
        columns[name] = pa.array(values, mask=mask)
    for i, name in enumerate(CATEGORICAL):
        levels = np.array([f"v{j}" for j in range(3 + 4 * i)])
        weights = np.linspace(1, 3, len(levels))
        if shifted and i == 0:
            weights = weights[::-1]
        values = rng.choice(levels, size=rows, p=weights / weights.sum()).astype(object)
        if shifted and i == 1:
            values[rng.random(rows) < 0.05] = "brand_new"
        mask = rng.random(rows) < 0.03 if i < 2 else None
        columns[name] = pa.array(values.tolist(), pa.string(), mask=mask)
    return pa.table(columns)


def ensure_data(folder: Path, rows: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"drift-ref-{rows}.parquet", folder / f"drift-cur-{rows}.parquet"
    for path, seed, shifted in ((paths[0], 1, False), (paths[1], 2, True)):
        if not path.exists():
            pq.write_table(_table(rows, seed, shifted), path)
    return paths


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _psi(ref: list[int], cur: list[int]) -> float:
    import math

    a, b = sum(ref) or 1, sum(cur) or 1
    return sum(
        (max(c / b, 1e-4) - max(r / a, 1e-4)) * math.log(max(c / b, 1e-4) / max(r / a, 1e-4))
        for r, c in zip(ref, cur, strict=True)
    )


def run_sql(ref: Path, cur: Path) -> dict[str, float]:
    """The fastest plain SQL we know for this: one histogram() per column of its bin index."""
    import duckdb

    con = duckdb.connect()
    shape = [f'approx_quantile("{c}", {DECILES})' for c in NUMERIC]
    shape += [f'approx_top_k("{c}", 20)' for c in CATEGORICAL]
    row = con.execute(f"SELECT {', '.join(shape)} FROM read_parquet(?)", [str(ref)]).fetchall()[0]
    exprs = ["count(*)"]
    for name, edges in zip(NUMERIC, row[: len(NUMERIC)], strict=True):
        index = " + ".join(f'("{name}" > {e})::INTEGER' for e in edges)
        exprs += [f'count("{name}")', f"histogram({index})"]
    for name, top in zip(CATEGORICAL, row[len(NUMERIC) :], strict=True):
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in top)
        exprs += [
            f'count("{name}")',
            f'histogram(CASE WHEN "{name}" IN ({quoted}) THEN "{name}" END)',
        ]
    query = f"SELECT {', '.join(exprs)} FROM read_parquet(?)"
    results = [con.execute(query, [str(p)]).fetchall()[0] for p in (ref, cur)]
    values = {}
    for i, name in enumerate(NUMERIC + CATEGORICAL):
        bins = []
        for found in results:
            rows, present, histogram = found[0], found[1 + 2 * i], found[2 + 2 * i]
            counts = dict(histogram)
            keys = sorted(set(dict(results[0][2 + 2 * i])) | set(dict(results[1][2 + 2 * i])))
            bins.append(
                [rows - present, present - sum(counts.values())] + [counts.get(k, 0) for k in keys]
            )
        values[name] = _psi(bins[0], bins[1])
    return values


def run_mlwizard(ref: Path, cur: Path) -> dict[str, float]:

    from mlwizard.core.contract.schema import Feature, Schema
    from mlwizard.core.operations.checks import feature_drift
    from mlwizard.core.operations.drift import connect
    from mlwizard.core.operations.reference import build_reference

    features = [Feature(c, "numeric", c) for c in NUMERIC]
    features += [Feature(c, "categorical", c) for c in CATEGORICAL]
    schema = Schema("y", "binary", features, [0, 1])
    con = connect(len(features))  # what the operations phase and `mlwizard monitor` use
    reference = build_reference(con, ref, schema, {})
    drift = feature_drift(con, "read_parquet(?)", [str(cur)], reference)
    return {name: f["psi"] for name, f in drift.items() if f["level"] == "major"}


EVIDENTLY = """
import json, sys, time, resource
t0, c0 = time.perf_counter(), time.process_time()
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
drifted = snapshot.dict()["metrics"][0]["value"]
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = 0.0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) / 1024
print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak, "result": str(drifted)}))
"""


def child(kind: str, ref: Path, cur: Path) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_sql(ref, cur) if kind == "sql" else run_mlwizard(ref, cur)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = sorted(result)[:6] if kind == "mlwizard" else len(result)
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": _peak_mb(), "result": str(summary)}))


def measure(kind: str, ref: Path, cur: Path, evidently: str | None) -> dict[str, float]:
    if kind == "evidently":
        command = [str(evidently), "-c", EVIDENTLY, str(ref), str(cur)]
    else:
        command = [sys.executable, __file__, "--child", kind, str(ref), str(cur)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently", help="python of a venv with evidently==0.7.23")
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".cache/mlwizard/bench")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "REF", "CUR"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    ref, cur = ensure_data(args.data_dir, args.rows)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {"sql": [], "mlwizard": [], "evidently": []}
    for i in range(args.repeat):
        for kind in ("sql", "mlwizard", "evidently"):
            if kind == "evidently" and (not args.evidently or i >= args.evidently_repeat):
                continue
            runs[kind].append(measure(kind, ref, cur, args.evidently))
            print(kind, runs[kind][-1], file=sys.stderr)
    load_after = os.getloadavg()[0]
    summary = {
        kind: {
            "best_wall": min(r["wall"] for r in found),
            "median_wall": statistics.median(r["wall"] for r in found),
            "best_cpu": min(r["cpu"] for r in found),
            "peak_mb": max(r["peak_mb"] for r in found),
            "runs": len(found),
            "result": found[0]["result"],
        }
        for kind, found in runs.items()
        if found
    }
    floor = summary["sql"]["best_wall"]
    for entry in summary.values():
        entry["wall_vs_sql"] = entry["best_wall"] / floor
    if "evidently" in summary:
        summary["mlwizard"]["evidently_speedup"] = (
            summary["evidently"]["best_wall"] / summary["mlwizard"]["best_wall"]
        )
    record = {
        "rows": args.rows,
        "columns": len(NUMERIC) + len(CATEGORICAL),
        "load_average": [round(load_before, 1), round(load_after, 1)],
        "python": platform.python_version(),
        "summary": summary,
        "goals": {
            "floor_ratio": GOAL_FLOOR_RATIO,
            "evidently_speedup": GOAL_EVIDENTLY_SPEEDUP,
            "peak_mb": GOAL_PEAK_MB,
        },
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
