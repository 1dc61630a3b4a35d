"""Batch predictions with the deployed service's own `predictor.py`.

The file is read the way the data phase read the training data: DuckDB, the project's
`na_values`, and each feature column turned into its feature value by the data phase's own SQL
(`coltypes.feature_expression`, with the semantic type the column had in training). The values
are then scored by the very module the service runs, so a row gets the same prediction here and
over HTTP by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlwizard.core import sql
from mlwizard.core.contract.schema import Schema
from mlwizard.core.data import coltypes, derived
from mlwizard.core.deploy.parity import load_model_predictor
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import DEFAULT_NA_VALUES, ColumnType
from mlwizard.core.kernel.errors import BadInputError, QualityGateError, UpstreamNotReadyError
from mlwizard.core.kernel.workspace import Workspace

BATCH_ROWS = 65_536


def load_predictor(service_dir: Path, threads: int = 1) -> Any:
    """The bundle's `Predictor` on its champion's files, loaded as the service loads it."""
    return load_model_predictor(
        service_dir / "models" / "champion", service_dir / "predictor.py", threads
    )


def service_dir(workspace: Workspace) -> Path:
    """The deployed service folder; raises if deploy has not produced a usable one."""
    checkpoint = workspace.read_checkpoint("deploy")
    if checkpoint is not None and checkpoint.status == "done" and "service" in checkpoint.outputs:
        folder = workspace.resolve(checkpoint.outputs["service"])
    else:
        folder = workspace.artifact_dir("deploy") / "service"
    if checkpoint is not None and checkpoint.gate_failures:
        raise QualityGateError(
            "the deployed model failed its checks: " + "; ".join(checkpoint.gate_failures)
        )
    if not (folder / "predictor.py").is_file():
        raise UpstreamNotReadyError(
            f"{workspace.root}: no deployed service; run `mlwizard run --phase deploy` first"
        )
    return folder


def default_output(input_path: Path) -> Path:
    """`<stem>.predictions.parquet` beside the input: Parquet keeps the column types."""
    return input_path.with_name(f"{input_path.stem}.predictions.parquet")


def predict_file(
    workspace: Workspace,
    input_path: Path,
    output_path: Path | None = None,
    flagged: dict[str, int] | None = None,
) -> Path:
    """Score a CSV or Parquet file; write its columns + `prediction` (+ `proba_<class>`) and
    `warnings` (unseen categories, out-of-range numbers; null when none). `flagged`, if given,
    is filled with the count of such values per "feature: kind"."""
    input_path = Path(input_path)
    output_path = Path(output_path) if output_path else default_output(input_path)
    writer_kind = _output_kind(output_path)
    if output_path.resolve() == input_path.resolve():
        raise BadInputError(f"{output_path}: the output would overwrite the input")
    folder = service_dir(workspace)
    schema = Schema.load(folder / "models" / "champion" / "schema.json")
    predictor = load_predictor(folder)

    con = sources.connect()
    relation = sources.read_table(con, input_path, _na_values(workspace))
    training = TrainingColumns.load(workspace)
    _check_columns(relation, schema, training, input_path)
    reader = _prepared(relation, schema, training).to_arrow_reader(BATCH_ROWS)
    extra = _output_names(relation.columns, schema)
    with atomic.atomic_path(output_path) as tmp:
        writer = None
        try:
            for batch in reader:
                scored = _score(batch, relation.columns, schema, predictor, extra, flagged)
                if writer is None:
                    writer = _open_writer(writer_kind, tmp, scored.schema)
                writer.write_batch(scored)
        finally:
            if writer is not None:
                writer.close()
    return output_path


def _na_values(workspace: Workspace) -> tuple[str, ...]:
    """The project's `na_values`, so missing cells read as they did in training."""
    if not workspace.config_path.is_file():
        return DEFAULT_NA_VALUES
    return workspace.load_config().data.na_values


def _output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in sources.PARQUET_SUFFIXES:
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise BadInputError(f"{path}: unsupported output type '{suffix}' (use .csv or .parquet)")


@dataclass(frozen=True)
class TrainingColumns:
    """What the data phase recorded about the training source's columns."""

    types: dict[str, str]  # semantic types (`[data] types` and inference)
    duckdb_types: dict[str, str]  # as DuckDB read the source (profile.json)

    @classmethod
    def load(cls, workspace: Workspace) -> TrainingColumns:
        checkpoint = workspace.read_checkpoint("data")
        if checkpoint is None:
            return cls({}, {})
        duckdb_types: dict[str, str] = {}
        profile = checkpoint.outputs.get("profile")
        if profile:
            try:
                columns = json.loads(workspace.resolve(profile).read_text(encoding="utf-8"))
                duckdb_types = {n: c["type"] for n, c in columns["columns"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                pass  # without it, numeric features simply have to arrive as numbers
        return cls(dict(checkpoint.metrics.get("types") or {}), duckdb_types)

    def accepts_text_for(self, column: str) -> bool:
        """A numeric feature read from text in training (numbers among a few stray strings)."""
        trained = self.duckdb_types.get(column)
        return trained is not None and sql.is_string_like(trained)


def sent_columns(schema: Schema) -> list[tuple[str, str]]:
    """(name, kind) of each column a caller sends: the features that features.py does not
    derive (their kinds), then the raw columns only it reads ("raw_number", "raw_string")."""
    kinds = {f.name: f.kind for f in schema.features}
    return [(n, kinds.get(n) or f"raw_{schema.raw_inputs[n]}") for n in schema.request_columns]


def _check_columns(relation: Any, schema: Schema, training: TrainingColumns, path: Path) -> None:
    types = sources.column_types(relation)
    missing = [n for n in schema.request_columns if n not in types]
    if missing:
        raise BadInputError(f"{path}: missing feature column(s): {', '.join(missing)}")
    sent = set(schema.request_columns)
    wrong = [
        f"{f.name} ({types[f.name]})"
        for f in schema.numeric
        if f.name in sent
        and sql.is_string_like(types[f.name])
        and not training.accepts_text_for(f.name)
        and _has_values(relation, f.name)
    ]
    if wrong:
        raise BadInputError(f"{path}: feature column(s) must be numeric: {', '.join(wrong)}")


def _has_values(relation: Any, column: str) -> bool:
    """An all-empty column reads as text; it is still a fine (all-missing) numeric column."""
    rows = relation.aggregate(f"count({sql.quote_ident(column)})").fetchall()
    return bool(rows and rows[0][0])


def _prepared(relation: Any, schema: Schema, training: TrainingColumns) -> Any:
    """The input's columns (renamed out of the way), then each feature as training saw it."""
    types = sources.column_types(relation)
    originals = [
        f"{sql.quote_ident(c)} AS {sql.quote_ident(f'__mlwizard_column_{i}')}"
        for i, c in enumerate(relation.columns)
    ]
    features = [
        derived.raw_expression(name, kind.removeprefix("raw_"))
        if kind.startswith("raw_")
        else coltypes.feature_expression(
            name, types[name], cast(ColumnType, training.types.get(name, kind)), kind
        )
        for name, kind in sent_columns(schema)
    ]
    return relation.select(", ".join(originals + features))


def _output_names(columns: list[str], schema: Schema) -> list[str]:
    """`prediction`, `proba_<class>` and `warnings`, suffixed if the input already uses a name."""
    wanted = ["prediction"] + [f"proba_{c}" for c in schema.classes or []] + ["warnings"]
    taken = set(columns)
    names = []
    for name in wanted:
        unique = name
        while unique in taken:
            unique += "_"
        taken.add(unique)
        names.append(unique)
    return names


def _score(
    batch: pa.RecordBatch,
    columns: list[str],
    schema: Schema,
    predictor: Any,
    names: list[str],
    flagged: dict[str, int] | None = None,
) -> pa.RecordBatch:
    """The batch's original columns, then the predictions and the per-row warnings."""
    n_original = len(columns)
    values: dict[str, Any] = {}
    for index, (name, kind) in enumerate(sent_columns(schema)):
        column = batch.column(n_original + index)
        if kind in ("numeric", "datetime", "raw_number"):  # datetimes arrive as seconds (SQL)
            values[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            values[name] = column.to_pylist()
    try:
        result = predictor.predict_columns(values)
    except ValueError as exc:  # the bundle's own module's class: matched by name
        if type(exc).__name__ == "FeaturesError":
            raise BadInputError(str(exc)) from None
        raise
    out = [batch.column(i) for i in range(n_original)]
    out.append(pa.array(result["prediction"]))
    if result["proba"] is not None:
        out += [pa.array(result["proba"][:, j]) for j in range(result["proba"].shape[1])]
    flags = predictor.domain_flags(values, batch.num_rows)
    out.append(pa.array(["; ".join(f.message for f in row) or None for row in flags], pa.string()))
    if flagged is not None:
        for row in flags:
            for flag in row:
                key = f"{flag.feature}: {flag.kind.replace('_', ' ')}"
                flagged[key] = flagged.get(key, 0) + 1
    return pa.RecordBatch.from_arrays(out, names=[*columns, *names])


def _open_writer(kind: str, path: Path, schema: pa.Schema) -> Any:
    if kind == "parquet":
        return pq.ParquetWriter(str(path), schema)
    return pacsv.CSVWriter(str(path), schema)
