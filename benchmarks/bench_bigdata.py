"""The data phase on a table larger than a comfortable memory: 10M rows, out of core (DuckDB).

    python benchmarks/bench_bigdata.py [--rows 10000000] [--format parquet|csv] [--phases ...]

A seeded table (8 numeric columns with missing values, 2 categoricals, a binary target) is
written by DuckDB straight to disk, never held in memory; a project is made on it, and each
phase runs in its own `mlwizard run --phase P` process. Each phase's peak RSS is that process's
own (`getrusage(RUSAGE_CHILDREN)` in a wrapper process that runs only it), with its wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, mlwizard, save

WRAPPER = (
    "import resource, subprocess, sys, json; "
    "code = subprocess.run(sys.argv[1:]).returncode; "
    "print(json.dumps({'code': code, "
    "'max_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
)


def make_table(path: Path, rows: int, fmt: str) -> float:
    import duckdb

    start = time.perf_counter()
    numeric = ", ".join(
        f"CASE WHEN hash(i * {k + 7}) % 20 = 0 THEN NULL ELSE "
        f"(hash(i * {k + 3}) % 100000) / 1000.0 END AS x{k}"
        for k in range(8)
    )
    query = (
        f"SELECT {numeric}, "
        "['north','south','east','west','centre'][(1 + hash(i * 11) % 5)::BIGINT] AS region, "
        "'shop_' || (hash(i * 13) % 200)::VARCHAR AS shop, "
        "CASE WHEN (hash(i * 3) % 100000) / 1000.0 + (hash(i * 5) % 100000) / 2000.0 "
        "+ (hash(i * 17) % 30000) / 1000.0 > 95 THEN 'yes' ELSE 'no' END AS label "
        f"FROM range({rows}) t(i)"
    )
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    target = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
    con.execute(f"COPY ({query}) TO '{path}' {target}")
    return time.perf_counter() - start


def run_phase(project: Path, phase: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "mlwizard", "run", "--phase", phase, "-p", str(project)]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "phase": phase,
        "exit_code": report["code"],
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(report["max_rss_mb"]),
        "stderr_tail": done.stderr.strip().splitlines()[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--phases", default="discovery,data")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "rows": args.rows, "format": args.format}
    with tempfile.TemporaryDirectory(prefix="mlwizard-big-") as tmp:
        table = Path(tmp) / f"big.{args.format}"
        results["write_s"] = round(make_table(table, args.rows, args.format), 1)
        results["file_mb"] = round(table.stat().st_size / 2**20)
        project = Path(tmp) / "project"
        mlwizard("new", project, "--target", "label")
        from mlwizard.core.kernel.config import update_config_file

        update_config_file(project / "mlwizard.toml", {"data": {"source": str(table)}})
        results["phases"] = []
        for phase in args.phases.split(","):
            outcome = run_phase(project, phase)
            results["phases"].append(outcome)
            print(outcome, file=sys.stderr)
            if outcome["exit_code"] != 0:
                break
        checkpoint = project / ".mlwizard" / "checkpoints" / "data.json"
        if checkpoint.is_file():
            metrics = json.loads(checkpoint.read_text())["metrics"]
            results["data_metrics"] = {
                k: metrics.get(k) for k in ("rows", "splits") if k in metrics
            }
    results["machine"]["load_average_end"] = machine()["load_average"]
    save(results, args.out)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
