"""`mlwizard monitor`: production data (a file, a glob, or the request log) against the champion.

CURRENT is read by DuckDB and each feature turned into its value as training saw it (the data
phase's own SQL); one aggregate scan gives every feature's drift checks. The champion's bundle
scores the rows (its own predictor) for prediction drift and, with labels, the metric overall and
by slice against the reference. Status: "healthy" (exit 0) or "drift" (exit 3: a monitored
feature or the predictions drifted majorly, or the metric got significantly worse).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, cast

import duckdb

from mlwizard.core import sql
from mlwizard.core.contract.schema import UNSUPERVISED, Schema
from mlwizard.core.data import coltypes, derived
from mlwizard.core.deploy.batch import load_predictor
from mlwizard.core.ingest import delimited, files, sources
from mlwizard.core.kernel.config import DEFAULT_NA_VALUES, ColumnType
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.workspace import FEATURES_FILE, Workspace
from mlwizard.core.operations import requestlog
from mlwizard.core.operations.advice import retraining_advice
from mlwizard.core.operations.checks import feature_drift
from mlwizard.core.operations.drift import connect, judge
from mlwizard.core.operations.evaluation import (
    bootstrap_interval,
    metrics_by_slice,
    model_output,
    prediction_counts,
    score_batches,
    targets,
)
from mlwizard.core.operations.registry import Registry, bundle_schema
from mlwizard.core.operations.snapshot import SCORE_BATCH_ROWS, slice_values

VIEW = "mlwizard_current"
LABEL = "__mlwizard_label__"
EXIT_DRIFT = 3


def open_current(
    con: duckdb.DuckDBPyConnection, current: str, na_values: tuple[str, ...]
) -> tuple[duckdb.DuckDBPyRelation, str, bool]:
    """(relation, label, is a request log) for a file, a glob of one kind of file, or a log."""
    if any(c in current for c in "*?["):
        paths = sorted(Path(p) for p in glob.glob(current, recursive=True) if Path(p).is_file())
        if not paths:
            raise BadInputError(f"{current}: no files match")
    else:
        path = Path(current)
        if path.is_dir():
            raise BadInputError(
                f"{current}: a folder; pass a file or a glob such as '{current}/*.parquet'"
            )
        if requestlog.is_request_log(path):
            return requestlog.served_rows(con, path), str(path), True
        return sources.read_table(con, path, na_values), str(path), False
    kinds = {sources.file_kind(p) for p in paths}
    if len(kinds) > 1 or next(iter(kinds)) not in sources.GLOB_KINDS:
        raise BadInputError(f"{current}: a glob must match files of one kind (CSV, Parquet, JSON)")
    kind = next(iter(kinds))
    if kind == "csv":
        return delimited.read_delimited(con, paths, current, na_values), current, False
    if kind == "parquet":
        return files.read_parquet(con, paths, current), current, False
    return files.read_json(con, paths, current), current, False


def prepare(
    relation: duckdb.DuckDBPyRelation,
    schema: Schema,
    reference: dict[str, Any],
    label: str,
    label_column: str | None,
    con: duckdb.DuckDBPyConnection | None = None,
    features_path: Path | None = None,
) -> duckdb.DuckDBPyRelation:
    """Each column a caller sends as training saw it (the data phase's SQL), plus the labels if
    given, plus the columns the bundle's features.py derives (given `con` and its path)."""
    types = sources.column_types(relation)
    missing = [n for n in schema.request_columns if n not in types]
    if missing:
        raise BadInputError(f"{label}: missing feature column(s): {', '.join(missing)}")
    if label_column and label_column not in types:
        raise BadInputError(f"{label}: no label column '{label_column}' (--labels)")
    trained: dict[str, str] = reference.get("types") or {}
    kinds = {f.name: f.kind for f in schema.features}
    exprs = [
        coltypes.feature_expression(
            n, types[n], cast(ColumnType, trained.get(n, kinds[n])), kinds[n]
        )
        if n in kinds
        else derived.raw_expression(n, schema.raw_inputs[n])
        for n in schema.request_columns
    ]
    if label_column:
        exprs.append(f"{sql.quote_ident(label_column)} AS {LABEL}")
    prepared = relation.select(", ".join(exprs))
    if not schema.derived or con is None or features_path is None:
        return prepared
    # The columns features.py derives, so their drift is measured too (in memory: DuckDB
    # cannot call derive() itself).
    table = derived.add_derived(
        prepared.to_arrow_table(), list(schema.derived), schema.raw_inputs, features_path
    )
    return con.from_arrow(table)


def monitor(
    ws: Workspace,
    current: str,
    labels: str | None = None,
    *,
    version: int | None = None,
    predictions: bool = True,
) -> dict[str, Any]:
    """The monitoring report of CURRENT against a registered version (the champion)."""
    registry = Registry(ws.root)
    version = registry.require(version)
    reference = registry.reference(version)
    bundle = registry.bundle_dir(version)
    schema = bundle_schema(bundle)
    na_values = ws.load_config().data.na_values if ws.exists() else DEFAULT_NA_VALUES
    con = connect(len(schema.features))
    relation, label, is_log = open_current(con, current, tuple(na_values))
    label_column = labels
    if labels and schema.task in UNSUPERVISED:
        raise BadInputError(
            f"--labels: a {schema.task} model has no labels to score; monitor it without them"
        )
    if is_log and labels:
        relation = _join_labels(con, relation, Path(labels), schema)
        label_column = schema.target
    features_path = bundle / "models" / "champion" / FEATURES_FILE
    prepared = prepare(relation, schema, reference, label, label_column, con, features_path)
    prepared.create_view(VIEW)
    rows = int(con.sql(f"SELECT count(*) FROM {VIEW}").fetchall()[0][0])
    if rows == 0:
        raise BadInputError(f"{label}: no rows to monitor")

    features = feature_drift(con, VIEW, [], reference)
    report: dict[str, Any] = {
        "created_at": timestamp(),
        "current": label,
        "request_log": is_log,
        "rows": rows,
        "version": version,
        "model": registry.manifest(version).get("model"),
        "features": features,
        "not_monitored": reference.get("not_monitored") or {},
        "prediction": None,
        "performance": None,
        "degraded": [],
    }
    if predictions:
        _predictions(con, report, schema, reference, load_predictor(bundle), label_column)
    report["drifted"] = sorted(n for n, f in features.items() if f["level"] == "major")
    prediction_major = (report["prediction"] or {}).get("level") == "major"
    bad = report["drifted"] or prediction_major or report["degraded"]
    report["status"] = "drift" if bad else "healthy"
    report["exit_code"] = EXIT_DRIFT if bad else 0
    report["advice"] = retraining_advice(report, [], report["degraded"])
    return report


def _predictions(
    con: duckdb.DuckDBPyConnection,
    report: dict[str, Any],
    schema: Schema,
    reference: dict[str, Any],
    predictor: Any,
    label_column: str | None,
) -> None:
    slices = slice_values(reference)
    batches = con.sql(f"SELECT * FROM {VIEW}").to_arrow_reader(SCORE_BATCH_ROWS)
    scored = score_batches(batches, schema, predictor, LABEL if label_column else None, slices)
    spec = reference.get("prediction") or {}
    if spec:
        report["prediction"] = judge(spec["counts"], prediction_counts(scored, spec))
    if not label_column:
        return
    metric = (reference.get("metric") or {}).get("name")
    direction = (reference.get("metric") or {}).get("direction", "maximize")
    performance = metrics_by_slice(scored, schema, str(metric), predictor.threshold, slices)
    y, usable = targets(scored.labels or [], schema)
    output = model_output(scored, schema)
    base = reference.get("performance") or {}
    sign = 1 if direction == "maximize" else -1

    def check(entry: dict[str, Any], mask: Any, ref: dict[str, Any] | None, what: str) -> None:
        expected = (ref or {}).get("value")
        entry["reference"] = expected
        entry["degraded"] = False
        if (
            entry.get("value") is None
            or expected is None
            or sign * (entry["value"] - expected) >= 0
        ):
            return
        low, high = bootstrap_interval(
            schema, str(metric), y[mask], output[mask], predictor.threshold
        )
        entry["interval"] = [low, high]
        favourable = high if direction == "maximize" else low
        if favourable is not None and sign * (favourable - expected) < 0:
            entry["degraded"] = True
            report["degraded"].append(
                f"{metric} {entry['value']:.4f} vs {expected:.4f} at training ({what}, "
                f"{entry['rows']} rows)"
            )

    check(performance["overall"], usable, base.get("overall"), "overall")
    import numpy as np

    for name, values in performance["slices"].items():
        column = np.array(
            [None if v is None else str(v) for v in scored.slices[name]], dtype=object
        )
        for value, entry in values.items():
            ref = ((base.get("slices") or {}).get(name) or {}).get(value)
            check(entry, usable & (column == value), ref, f"{name} = {value}")
    report["performance"] = performance


def _join_labels(
    con: duckdb.DuckDBPyConnection, relation: duckdb.DuckDBPyRelation, path: Path, schema: Schema
) -> duckdb.DuckDBPyRelation:
    """The log's rows with their labels: a file with `request_id` and the target column."""
    table = sources.read_table(con, path, ("",))
    columns = table.columns
    if "request_id" not in columns:
        raise BadInputError(f"{path}: a labels file needs a 'request_id' column")
    others = [c for c in columns if c != "request_id"]
    target = schema.target if schema.target in others else (others[0] if len(others) == 1 else None)
    if target is None:
        raise BadInputError(f"{path}: no '{schema.target}' column with the labels")
    table.create_view("mlwizard_labels")
    relation.create_view("mlwizard_log")
    quoted = sql.quote_ident(target)
    name = sql.quote_ident(schema.target)
    return con.sql(
        f"SELECT l.* EXCLUDE (request_id), b.{quoted} AS {name} FROM mlwizard_log l "
        "LEFT JOIN mlwizard_labels b ON l.request_id::VARCHAR = b.request_id::VARCHAR"
    )
