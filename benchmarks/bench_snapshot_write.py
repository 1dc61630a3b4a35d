"""The data phase's snapshot write (CSV -> Parquet) per compression, against a bare scan.

One process, one DuckDB connection (default threads), the 2M x 20 CSV of `bench_data_phase.py`
(made by it first). Wall and CPU seconds per write, then the bare aggregate scan. Run through the
benchmark lock: `flock /work/tools/bench.lock python benchmarks/bench_snapshot_write.py`.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import duckdb

CSV = Path.home() / ".cache" / "mlwizard" / "bench" / "profile-2000000x20-seed0.csv"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--compression", nargs="+", default=["snappy", "uncompressed", "zstd"])
    args = parser.parse_args()
    con = duckdb.connect(":memory:")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for compression in args.compression:
            out = Path(tmp) / f"{compression}.parquet"
            started, cpu = time.perf_counter(), _cpu()
            con.read_csv(str(args.csv)).write_parquet(str(out), compression=compression)
            rows.append(
                {
                    "step": f"write_parquet {compression}",
                    "wall": round(time.perf_counter() - started, 2),
                    "cpu": round(_cpu() - cpu, 2),
                    "mb": round(out.stat().st_size / 2**20),
                }
            )
    started, cpu = time.perf_counter(), _cpu()
    relation = con.read_csv(str(args.csv))
    exprs = ["count(*)"] + [f'min("{c}")' for c in relation.columns]
    relation.aggregate(", ".join(exprs)).fetchall()
    rows.append(
        {
            "step": "bare scan",
            "wall": round(time.perf_counter() - started, 2),
            "cpu": round(_cpu() - cpu, 2),
        }
    )
    print(json.dumps({"duckdb": duckdb.__version__, "csv": str(args.csv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
