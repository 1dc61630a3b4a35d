"""The project's `features.py` applied to the snapshot, so the profile, the audit, the splits and
the model see its columns as they see the source's.

derive() runs batch by batch on the raw columns, as DuckDB casts them (`raw_expression`: numbers
as DOUBLE, everything else as VARCHAR); batch prediction casts them the same way, and the
service receives the same values as JSON. The snapshot's columns and the derived ones are
written to `derived-<hash>.parquet`, which the phase then reads instead of the snapshot. On the
first batch derive() is checked to work row by row (the service derives each request alone) and
probed for which raw columns each derived column depends on (each input rolled by one row in
turn), which the schema records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlwizard.core import sql
from mlwizard.core.data.audit import Finding
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import ColumnType, Config
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_file, hash_value
from mlwizard.serving import userfeatures
from mlwizard.serving.userfeatures import FEATURES_FILE, NUMBER, STRING, Columns, FeaturesError

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection, DuckDBPyRelation

    from mlwizard.core.kernel.context import PhaseContext

BATCH_ROWS = 65_536
PROBE_ROWS = 256  # rows the row-by-row check and the input probe run on
ALONE_ROWS = 3  # rows derived alone and compared with the same rows derived together
RAW_PREFIX = "__mlwizard_raw_"


@dataclass(frozen=True)
class Derived:
    types: dict[str, ColumnType]  # derived column -> numeric or categorical
    inputs: dict[str, list[str]]  # derived column -> the raw columns it is computed from
    raw_inputs: dict[str, str]  # every column derive() read -> NUMBER or STRING
    file_hash: str = ""  # features.py's content

    def version(self, source_hash: str) -> str:
        """The data's content hash: the source's, and the code that derived columns from it."""
        return hash_value([source_hash, self.file_hash]) if self.types else source_hash


NOTHING = Derived({}, {}, {})


def raw_kind(duckdb_type: str) -> str:
    numeric = sql.is_numeric_type(duckdb_type) and not sql.is_boolean_type(duckdb_type)
    return NUMBER if numeric else STRING


def raw_expression(name: str, kind: str, alias: str | None = None) -> str:
    """SQL for a raw column as derive() receives it."""
    col, out = sql.quote_ident(name), sql.quote_ident(alias or name)
    if kind == NUMBER:  # a file to score may hold text where training had numbers
        return f"TRY_CAST({col} AS DOUBLE) AS {out}"
    return f"{col}::VARCHAR AS {out}"


def apply_features(
    ctx: PhaseContext, con: DuckDBPyConnection, relation: DuckDBPyRelation, source_hash: str
) -> tuple[DuckDBPyRelation, Derived]:
    """The relation with features.py's columns added (unchanged without the file or columns)."""
    if not ctx.workspace.features_path.is_file():
        return relation, NOTHING
    # The copy is what runs here and what deploy ships: the bundle derives as training did.
    path = ctx.artifact(FEATURES_FILE)
    atomic.write_bytes(path, ctx.workspace.features_path.read_bytes())
    derived = NOTHING
    try:
        derive = userfeatures.load(path)
        assert derive is not None
        code = hash_file(path)
        out = ctx.artifact(f"derived-{hash_value([source_hash, code])[:16]}.parquet")
        derived = dataclasses.replace(_write(ctx, relation, derive, out), file_hash=code)
    except FeaturesError as exc:
        raise BadInputError(str(exc)) from None
    finally:
        if not derived.types:  # nothing derived: no copy to ship
            path.unlink(missing_ok=True)
    if not derived.types:
        return relation, NOTHING
    ctx.register("derived", out)
    ctx.register("features", path)
    ctx.message(f"{FEATURES_FILE}: derived {', '.join(derived.types)}")
    return con.read_parquet(str(out)), derived


def with_types(config: Config, derived: Derived) -> Config:
    """`[data] types` with each derived column's type, unless the user set one."""
    if not derived.types:
        return config
    types = {**derived.types, **config.data.types}
    return dataclasses.replace(config, data=dataclasses.replace(config.data, types=types))


def add_derived(
    table: pa.Table, derived: list[str], raw_inputs: dict[str, str], path: Any
) -> pa.Table:
    """`table` (raw columns as batch prediction reads them) with the `derived` columns that the
    features.py at `path` computes from them: what monitoring measures drift on."""
    try:
        derive = userfeatures.load(path)
        if derive is None:
            raise FeaturesError(f"{path}: missing; the model reads columns it derives")

        def getter(name: str) -> Any:
            def get() -> np.ndarray:
                column = table.column(name)
                if raw_inputs[name] == NUMBER:
                    return column.to_numpy(zero_copy_only=False).astype(np.float64)
                return np.array(column.to_pylist(), dtype=object)

            return get

        given = Columns({n: getter(n) for n in raw_inputs if n in table.column_names})
        result = userfeatures.apply(derive, given, table.num_rows)
        for name in derived:
            if name not in result:
                raise FeaturesError(f"{FEATURES_FILE}: derive() no longer returns {name!r}")
            kind = NUMBER if result[name].dtype.kind == "f" else STRING
            table = table.append_column(name, _arrow(result[name], kind))
    except FeaturesError as exc:
        raise BadInputError(str(exc)) from None
    return table


def keep_strong(findings: list[Finding], derived: Derived) -> list[Finding]:
    """A derived column that predicts the target well is what features.py is for: computed
    from columns the service receives, it is not a value recorded after the outcome, so target
    leakage findings keep it (saying where to look if one of its inputs is such a value)."""
    out = []
    for f in findings:
        if f.rule == "target_leakage" and f.exclude and f.column in derived.types:
            inputs = ", ".join(derived.inputs.get(f.column, [])) or "its inputs"
            action = (
                f"kept: {FEATURES_FILE} derives it from {inputs}, which the service receives; "
                "if one of them is recorded after the outcome, stop deriving from it"
            )
            f = dataclasses.replace(f, action=action, exclude=None)
        out.append(f)
    return out


def _write(
    ctx: PhaseContext, relation: DuckDBPyRelation, derive: userfeatures.Derive, out: Any
) -> Derived:
    names = list(relation.columns)
    types = sources.column_types(relation)
    target = ctx.config.data.target
    kinds = {n: raw_kind(t) for n, t in types.items() if n != target}
    raw_names = {n: f"{RAW_PREFIX}{i}" for i, n in enumerate(kinds)}
    exprs = [sql.quote_ident(n) for n in names]
    exprs += [raw_expression(n, k, raw_names[n]) for n, k in kinds.items()]
    batches = iter(relation.select(", ".join(exprs)).to_arrow_reader(BATCH_ROWS))
    hidden = {target: "the target: the service never has it; derive from the other columns"}
    read: list[str] = []

    def columns(batch: pa.RecordBatch, take: np.ndarray | None = None) -> Columns:
        def getter(name: str) -> Any:
            def get() -> np.ndarray:
                column = batch.column(raw_names[name])
                if take is not None:
                    column = column.take(pa.array(take))
                if kinds[name] == NUMBER:
                    return column.to_numpy(zero_copy_only=False).astype(np.float64)
                return np.array(column.to_pylist(), dtype=object)

            return get

        return Columns({n: getter(n) for n in kinds}, hidden)

    def derived(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        ctx.check_cancelled()
        given = columns(batch)
        result = userfeatures.apply(derive, given, batch.num_rows)
        read.extend(n for n in given.read if n not in read)
        return result

    first = next(batches, None)
    if first is None:  # no rows: nothing to derive
        return NOTHING
    result = derived(first)
    found = _check_first(result, names)
    if not found:
        return NOTHING
    inputs = _probe(derive, lambda take: columns(first, take), first.num_rows, result)
    with atomic.atomic_path(out) as tmp:
        writer = None
        try:
            batch: pa.RecordBatch | None = first
            while batch is not None:
                _check_same(result, found)
                arrays = [batch.column(i) for i in range(len(names))]
                arrays += [_arrow(result[n], found[n]) for n in found]
                table = pa.RecordBatch.from_arrays(arrays, names=[*names, *found])
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_batch(table)
                batch = next(batches, None)
                if batch is not None:
                    result = derived(batch)
        finally:
            if writer is not None:
                writer.close()
    column_types: dict[str, ColumnType] = {
        n: "numeric" if k == NUMBER else "categorical" for n, k in found.items()
    }
    return Derived(column_types, inputs, {n: kinds[n] for n in read})


def _check_first(result: dict[str, np.ndarray], names: list[str]) -> dict[str, str]:
    """Each derived column's kind; a name the data already has is refused."""
    taken = [n for n in result if n in names]
    if taken:
        raise FeaturesError(
            f"{FEATURES_FILE}: derive() returns {', '.join(map(repr, taken))}, already a "
            "column of the data; give the derived column a new name"
        )
    return {n: NUMBER if v.dtype.kind == "f" else STRING for n, v in result.items()}


def _check_same(result: dict[str, np.ndarray], found: dict[str, str]) -> None:
    """Every batch returns the same columns, each numbers throughout or strings throughout."""
    kinds = {n: NUMBER if v.dtype.kind == "f" else STRING for n, v in result.items()}
    if kinds != found:
        raise FeaturesError(
            f"{FEATURES_FILE}: derive() returned other columns or types on later rows "
            f"({', '.join(f'{n}: {k}' for n, k in kinds.items())}, first "
            f"{', '.join(f'{n}: {k}' for n, k in found.items())}); return the same every time"
        )


def _probe(
    derive: userfeatures.Derive, columns: Any, rows: int, result: dict[str, np.ndarray]
) -> dict[str, list[str]]:
    """Row by row (a few rows derived alone match the same rows derived together), and the
    raw columns each derived column changes with."""
    count = min(rows, PROBE_ROWS)
    rows_taken = np.arange(count)
    together = userfeatures.apply(derive, columns(rows_taken), count)
    for i in range(min(count, ALONE_ROWS)):
        alone = userfeatures.apply(derive, columns(np.array([i])), 1)
        for name, values in together.items():
            if name in alone and not _same(alone[name], values[i : i + 1]).all():
                raise FeaturesError(
                    f"{FEATURES_FILE}: derive() gives row {i + 1} another {name!r} alone than "
                    "among the other rows; the service derives each request on its own, so "
                    "compute each row from its own values only (no column means, ranks or shifts)"
                )
    probe = columns(rows_taken)
    userfeatures.apply(derive, probe, count)
    inputs: dict[str, list[str]] = {n: [] for n in result}
    if count < 2:
        return inputs
    for raw in probe.read:
        rolled = columns(rows_taken)
        original = rolled._getters[raw]
        rolled._getters[raw] = lambda original=original: np.roll(original(), 1)
        changed = userfeatures.apply(derive, rolled, count)
        for name in inputs:
            if name in changed and not _same(changed[name], together[name]).all():
                inputs[name].append(raw)
    return inputs


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return np.array([x == y for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=bool)


def _arrow(values: np.ndarray, kind: str) -> pa.Array:
    if kind == NUMBER:
        return pa.array(values, type=pa.float64(), from_pandas=True)  # NaN -> null (missing)
    return pa.array(values.tolist(), type=pa.string())
