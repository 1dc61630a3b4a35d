"""The labelled rows, read once from the snapshot, and the split cut on them and written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlwizard.core import sql
from mlwizard.core.contract.schema import FeatureKind
from mlwizard.core.data import coltypes
from mlwizard.core.data.splits import (
    SPLITS,
    assign_group_splits,
    assign_splits,
    assign_time_splits,
)
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import ColumnType, Config
from mlwizard.core.kernel.errors import BadInputError

if TYPE_CHECKING:
    from duckdb import DuckDBPyRelation


STREAM_ROWS = 122_880  # rows per Arrow batch read from DuckDB (60 of its vectors)
ROW_HASH = "__mlwizard_row_hash"  # hash(target, features) of each row, for split leakage


def read_rows(
    relation: DuckDBPyRelation,
    duckdb_types: dict[str, str],
    types: dict[str, ColumnType],
    kinds: dict[str, FeatureKind],
    target: str,
    split_column: str,
    config: Config,
    identifiers: list[str] = [],  # noqa: B006 - read only
) -> pa.Table:
    """Rows with a target, each candidate feature cast to its kind, plus the split column, the
    identifiers (numbers, or text) for the row-order rule, and `ROW_HASH`: the hash of the
    target and candidate features of each row, computed in the same scan."""
    col = sql.quote_ident(target) if target else ""  # no target: clustering, anomaly detection
    condition = f"{col} IS NOT NULL" if target else "true"
    if target and duckdb_types[target] in sql.FLOAT_TYPES:
        condition += f" AND NOT isnan({col})"
    exprs = [col] if target else []
    for name, kind in kinds.items():
        exprs.append(coltypes.feature_expression(name, duckdb_types[name], types[name], kind))
    if split_column and split_column not in kinds:
        if config.split.strategy == "time":
            exprs.append(coltypes.time_expression(split_column, duckdb_types[split_column]))
        else:
            exprs.append(sql.quote_ident(split_column))
    for name in identifiers:
        if name != split_column:
            cast = "DOUBLE" if sql.is_numeric_type(duckdb_types[name]) else "VARCHAR"
            exprs.append(f"{sql.quote_ident(name)}::{cast} AS {sql.quote_ident(name)}")
    selected = relation.filter(condition).select(", ".join(exprs))
    hashed = ", ".join(sql.quote_ident(n) for n in [*([target] if target else []), *kinds])
    with_hash = selected.select(f"*, hash({hashed}) AS {sql.quote_ident(ROW_HASH)}")
    # Streamed in batches: DuckDB never holds the whole result beside its Arrow copy.
    table = with_hash.to_arrow_reader(STREAM_ROWS).read_all()
    if config.split.strategy == "time" and table.column(split_column).null_count:
        raise BadInputError(
            f"[split] time_column '{split_column}': {table.column(split_column).null_count} rows "
            "with a target have no time (missing or unreadable); fill them in or drop those rows"
        )
    return table


def assign(
    table: pa.Table, config: Config, task: str, labels: np.ndarray, split_column: str
) -> tuple[np.ndarray, str]:
    """Each row's split (0 train, 1 valid, 2 test) and the strategy's name."""
    split = config.split
    seed = config.project.seed
    if split.strategy == "time":
        times = time_key(table.column(split_column))
        assignment = assign_time_splits(
            times, split.valid_fraction, split.test_fraction, split_column
        )
        return assignment, "time"
    if split.strategy == "group":
        groups = _group_codes(table.column(split_column))
        assignment = assign_group_splits(
            groups, split.valid_fraction, split.test_fraction, seed, split_column
        )
        return assignment, "group"
    labelled = len(labels) == table.num_rows  # no labels: clustering, unlabelled anomalies
    stratify = split.strategy == "stratified" and task != "regression" and labelled
    assignment = assign_splits(
        labels if stratify else None,
        table.num_rows,
        split.valid_fraction,
        split.test_fraction,
        seed,
    )
    empty = [name for index, name in enumerate(SPLITS) if not (assignment == index).any()]
    if empty and stratify:
        n_classes = len(np.unique(labels))
        raise BadInputError(
            f"the stratified split leaves {' and '.join(empty)} empty: {n_classes} classes in "
            f"{table.num_rows} rows are too small to share out; check [discovery] task (a numeric "
            'target read as classes?) or set [split] strategy = "random"'
        )
    if empty:
        raise BadInputError(
            f"{table.num_rows} rows leave {' and '.join(empty)} empty; add rows or raise "
            "[split] valid_fraction and test_fraction"
        )
    return assignment, "stratified" if stratify else "random"


def time_key(column: pa.ChunkedArray) -> np.ndarray:
    """Sortable numbers for a time column (dates as days, times and timestamps as ticks)."""
    if pa.types.is_date(column.type):
        column = column.cast(pa.int32())
    elif pa.types.is_temporal(column.type):
        column = column.cast(pa.int64())
    elif pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    return column.to_numpy(zero_copy_only=False)


def _group_codes(column: pa.ChunkedArray) -> np.ndarray:
    """An integer per group; each row without a group counts as a group of its own."""
    indices = pc.dictionary_encode(column.combine_chunks()).indices
    codes = indices.to_numpy(zero_copy_only=False).astype(np.float64)
    missing = np.isnan(codes)
    start = 0 if missing.all() else int(np.nanmax(codes)) + 1
    codes[missing] = start + np.arange(int(missing.sum()))
    return codes.astype(np.int64)


def label_codes(column: pa.ChunkedArray, task: str) -> tuple[np.ndarray, list[Any] | None]:
    """The target as NumPy: class codes in sorted class order (and the classes, as the source
    wrote them), or the values of a regression target. Encoded by Arrow, not by sorting Python
    objects: a few milliseconds on millions of rows."""
    if task == "regression":
        return column.to_numpy(zero_copy_only=False), None
    encoded = pc.dictionary_encode(column.combine_chunks())
    values = encoded.dictionary.to_pylist()
    order = sorted(range(len(values)), key=lambda i: values[i])
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    return codes, [values[i] for i in order]


def split_summary(
    rows: int,
    codes: np.ndarray | None,
    classes: list[Any] | None,
    strategy: str,
    split_values: pa.ChunkedArray | None,
) -> dict[str, Any]:
    """Rows, class counts and, for time and group splits, the range or number of groups;
    `split_values`: the split column's values in this part."""
    summary: dict[str, Any] = {"rows": rows}
    if classes is not None and codes is not None:
        tally = np.bincount(codes, minlength=len(classes)).tolist()
        counts = {str(c): int(n) for c, n in zip(classes, tally, strict=True)}
        summary["class_counts"] = counts
        summary["class_balance"] = {
            c: round(n / rows, 4) if rows else 0.0 for c, n in counts.items()
        }
    if strategy == "time" and rows and split_values is not None:
        bounds = pc.min_max(split_values)
        summary["time_range"] = [str(bounds["min"].as_py()), str(bounds["max"].as_py())]
    if strategy == "group" and split_values is not None:
        summary["groups"] = pc.count_distinct(split_values).as_py()
    return summary


def write_split(path: Path, table: pa.Table, keep: np.ndarray) -> Path:
    """The rows of `table` where `keep`, streamed batch by batch into `path` (atomically): the
    part is never held in memory beside the table. Dictionary-encoded text columns, plain
    numbers and no column statistics (the model phase reads whole files)."""
    text = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    with (
        atomic.atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, table.schema, use_dictionary=text, write_statistics=False) as writer,
    ):
        offset = 0
        for batch in table.to_batches(max_chunksize=STREAM_ROWS):
            mask = keep[offset : offset + batch.num_rows]
            offset += batch.num_rows
            if mask.any():
                writer.write_batch(batch.filter(pa.array(mask)))
    return path
