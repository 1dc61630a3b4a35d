"""Training on a sample when the training split is larger than memory and the budget allow.

The data phase stays out of core (DuckDB) at any size, but a candidate's search holds its
training rows in memory, once per worker, several times over (the frame, the encoded matrix, the
fold copies), and its time grows with them. When the training split has more rows than
`row_cap` allows, the workers train on a seeded sample of it, stratified by class for
classification, drawn by DuckDB without loading the split; validation, test and drift still use
every row. The phase says so in its messages and metrics (`training_sample`).

The cap is the smaller of a memory cap (half the memory available now, shared by the workers, at
`EXPANSION` times the split's in-memory row size) and a budget cap (`ROWS_PER_BUDGET_S` rows per
second of budget); `MLWIZARD_MAX_TRAIN_ROWS` sets it outright. The sample is a function of the
split, the seed and the cap, and the run cache keys on its content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwizard.core.discovery.feasibility import TRAINING_ROWS_PER_BUDGET_S

if TYPE_CHECKING:
    from mlwizard.core.contract.schema import Schema
    from mlwizard.core.kernel.context import PhaseContext

MAX_ROWS_ENV = "MLWIZARD_MAX_TRAIN_ROWS"
EXPANSION = 8.0  # in-memory bytes a training row costs a worker, per byte of its Arrow size
MEMORY_SHARE = 0.5
ROWS_PER_BUDGET_S = TRAINING_ROWS_PER_BUDGET_S  # discovery's estimate counts the same cap
MIN_ROWS = 1_000


@dataclass(frozen=True)
class Sample:
    path: Path
    rows: int
    of_rows: int
    cap: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "of_rows": self.of_rows, "cap": self.cap, "reason": self.reason}


def prepare(
    ctx: PhaseContext, train: Path, schema: Schema, seed: int, budget_s: float, workers: int
) -> tuple[Path, Sample | None]:
    """The training file the workers read: `train`, or a sample of it (said in a message)."""
    cap, reason = row_cap(train, budget_s, workers or os.cpu_count() or 1)
    sample = draw(
        train,
        ctx.artifact("train-sample.parquet"),
        cap=cap,
        reason=reason,
        seed=seed,
        target=schema.target,
        stratify=schema.task != "regression",
    )
    if sample is None:
        ctx.artifact("train-sample.parquet").unlink(missing_ok=True)
        return train, None
    how = "a stratified" if schema.task != "regression" else "a"
    ctx.message(
        f"the training split has {sample.of_rows:,} rows, more than the {reason} allows "
        f"({cap:,}): candidates train on {how} seeded sample of {sample.rows:,} rows; "
        "validation, test and drift use every row",
        training_sample=sample.to_dict(),
    )
    return sample.path, sample


def row_cap(train: Path, budget_s: float, workers: int) -> tuple[int, str]:
    """How many training rows the workers can hold and use in the budget, and why."""
    configured = os.environ.get(MAX_ROWS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured), f"{MAX_ROWS_ENV}={configured}"
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(train).metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = max(1.0, size / max(1, meta.num_rows)) * EXPANSION
    memory = _available_bytes() * MEMORY_SHARE / max(1, workers) / per_row
    budget = ROWS_PER_BUDGET_S * budget_s
    if memory < budget:
        return max(MIN_ROWS, int(memory)), "memory available to the workers"
    return max(MIN_ROWS, int(budget)), "time budget"


def draw(
    train: Path, out: Path, *, cap: int, reason: str, seed: int, target: str, stratify: bool
) -> Sample | None:
    """A seeded sample of at most about `cap` rows of `train` in `out`, or None when it fits."""
    import duckdb
    import pyarrow.parquet as pq

    from mlwizard.core.kernel import atomic
    from mlwizard.core.sql import quote_ident

    total = pq.ParquetFile(train).metadata.num_rows
    if total <= cap:
        return None
    fraction = cap / total
    partition = f"PARTITION BY {quote_ident(target)}" if stratify else ""
    # Each class keeps its share of the rows (rounded up: no class vanishes); rows are picked by
    # a hash of their position and the seed, and keep their order.
    query = f"""
        SELECT * EXCLUDE (file_row_number, _pick, _class_rows) FROM (
            SELECT *,
                row_number() OVER ({partition} ORDER BY hash(file_row_number, $seed)) AS _pick,
                count(*) OVER ({partition}) AS _class_rows
            FROM read_parquet($path, file_row_number = true)
        ) WHERE _pick <= ceil(_class_rows * $fraction)
        ORDER BY file_row_number
    """
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        relation = con.sql(query, params={"path": str(train), "seed": seed, "fraction": fraction})
        with atomic.atomic_path(out) as tmp:
            relation.write_parquet(str(tmp))
    finally:
        con.close()
    rows = pq.ParquetFile(out).metadata.num_rows
    return Sample(out, rows, total, cap, reason)


def _available_bytes() -> int:
    """MemAvailable (free plus reclaimable cache), else free pages, else 4 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30
