"""Data: ingest, profile, type and audit the columns, choose features, snapshot and split.

Two aggregate scans read the source: the profile and the audit scan. From them come the column
types and the table rules; error findings stop the phase before anything is written. The kept
rows (target present) are then read once into Arrow with each feature cast to its kind; a seeded
sample of them feeds the one-feature leakage models, and the split is cut on them and written.
Split leakage is counted by DuckDB over the written split files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlwizard.core import sql
from mlwizard.core.contract.schema import Feature, FeatureKind, Schema, input_names
from mlwizard.core.data import audit, coltypes
from mlwizard.core.data.audit import Finding, TableFacts
from mlwizard.core.data.lineage import data_version, record_version
from mlwizard.core.data.profile import profile_dataset
from mlwizard.core.data.report import write_reports
from mlwizard.core.data.splits import (
    SPLITS,
    assign_group_splits,
    assign_splits,
    assign_time_splits,
    check_fractions,
)
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import ColumnType, Config
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError, QualityGateError

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection, DuckDBPyRelation

MIN_ROWS = 10
SPLIT_COLUMN_REASONS = {
    "time": "the time split column: features should not carry the clock the split is cut on",
    "group": "the group split column: valid and test groups never occur in training",
}


def run(ctx: PhaseContext) -> PhaseResult:
    config = ctx.config
    target = config.data.target
    task = ctx.upstream["discovery"].metrics["task"]
    # Clustering has no target; anomaly detection may keep a label, for evaluation only.
    labelled = bool(target)
    check_fractions(config.split.valid_fraction, config.split.test_fraction)

    con = sources.connect()
    relation, path = sources.open_source(con, ctx.workspace, config)
    source_hash = sources.source_fingerprint(ctx.workspace, config)
    if labelled:
        sources.require_column(relation, target, path)
    duckdb_types = sources.column_types(relation)
    split_column = _check_config(config, duckdb_types, path)
    profile, types, findings = _audit_source(con, relation, config, task, split_column)
    _stop_on_errors(ctx, findings, types, {})
    ctx.check_cancelled()

    kinds, excluded = _candidates(config, duckdb_types, types, findings, split_column)
    table = _read_rows(relation, duckdb_types, types, kinds, target, split_column, config)
    if table.num_rows < MIN_ROWS:
        raise BadInputError(
            f"{path}: only {table.num_rows} rows with a target value; "
            f"at least {MIN_ROWS} are needed"
        )
    labels = table.column(target).to_numpy(zero_copy_only=False) if labelled else None
    classes = None if task == "regression" or labels is None else sorted(set(labels.tolist()))
    sample_rows, row_findings = _audit_rows(table, labels, kinds, config, task)
    findings += row_findings
    for name, reason in _exclusions(row_findings, config.data.keep).items():
        del kinds[name]
        excluded[name] = reason
    if not kinds:
        findings.append(audit.no_features(target))
        _stop_on_errors(ctx, findings, types, excluded)
    ctx.check_cancelled()

    names = input_names(list(kinds))
    features = [Feature(n, k, i) for (n, k), i in zip(kinds.items(), names, strict=True)]
    extra = [split_column] if split_column and split_column not in kinds else []
    table = table.select([*([target] if labelled else []), *kinds, *extra])
    assignment, strategy = _assign(table, config, task, labels, split_column)
    outputs = {
        "snapshot": _write_parquet(ctx.artifact(f"snapshot-{source_hash[:16]}.parquet"), table)
    }
    split_report: dict[str, Any] = {}
    for index, name in enumerate(SPLITS):
        part = table.filter(pa.array(assignment == index))
        outputs[name] = _write_parquet(ctx.artifact(f"{name}.parquet"), part)
        split_report[name] = _split_summary(part, target, classes, strategy, split_column)
    split_findings, repeated = audit.split_leakage(
        con, outputs, [*([target] if labelled else []), *kinds]
    )
    for name, count in repeated.items():
        split_report[name]["rows_also_in_train"] = count
    findings = audit.ordered(findings + split_findings)

    schema = Schema(target=target, task=task, features=features, classes=classes, excluded=excluded)
    outputs["schema"] = schema.save(ctx.artifact("schema.json"))
    reports = write_reports(profile, ctx.artifact("profile.json").parent, f"Data profile: {path}")
    outputs.update(
        profile=reports["json"], profile_summary=reports["markdown"], report=reports["html"]
    )
    outputs["audit"] = _write_audit(ctx, findings, types, excluded, passed=True, sample=sample_rows)
    outputs["lineage"] = record_version(
        ctx.artifact("lineage.json"),
        config,
        source_label=path,
        source_hash=source_hash,
        rows=profile["rows"],
        rows_used=table.num_rows,
        snapshot=ctx.workspace.relative(outputs["snapshot"]),
    )
    ctx.message(
        f"{table.num_rows} rows, {len(features)} features "
        f"({len(schema.numeric)} numeric, {len(schema.categorical)} categorical); "
        + ", ".join(f"{n} {split_report[n]['rows']}" for n in SPLITS)
        + f" ({strategy}); audit: {_tally(findings)}"
    )
    metrics = {
        "rows": profile["rows"],
        "rows_used": table.num_rows,
        "columns": len(profile["columns"]),
        "types": types,
        "features": [f.name for f in features],
        "excluded_columns": excluded,
        "findings": [f.to_dict() for f in findings],
        "warnings": _warnings(config, types, excluded, profile["rows"] - table.num_rows),
        "splits": split_report,
        "split_strategy": strategy,
        "audit_sample_rows": sample_rows,
        "source_hash": source_hash,
        "data_version": data_version(source_hash, config),
    }
    return PhaseResult(metrics=metrics, outputs=outputs)


# -- the audit ------------------------------------------------------------------------------------


def _audit_source(
    con: DuckDBPyConnection,
    relation: DuckDBPyRelation,
    config: Config,
    task: str,
    split_column: str,
) -> tuple[dict[str, Any], dict[str, ColumnType], list[Finding]]:
    """Profile and audit scan (two aggregates), column types, and the table rules' findings."""
    profile = profile_dataset(
        con,
        relation,
        target=config.data.target or None,
        task=_LABEL_TASK.get(task, task),
        seed=config.project.seed,
    )
    scan = audit.scan_table(relation)
    _check_numeric_overrides(config.data.types, profile, scan)
    types = coltypes.infer_types(profile, scan, config.data.types)
    target = config.data.target
    if (
        target
        and task != "regression"
        and target not in config.data.types
        and types[target] == "numeric"
    ):
        types[target] = "categorical"  # the task decides: numbers as class labels
    facts = TableFacts(
        rows=profile["rows"],
        target=target,
        task=task,
        columns=profile["columns"],
        scan=scan,
        types=types,
        time_column=split_column if config.split.strategy == "time" else "",
    )
    return profile, types, _mark_kept(audit.table_findings(facts), config.data.keep)


def _audit_rows(
    table: pa.Table,
    labels: np.ndarray | None,
    kinds: dict[str, FeatureKind],
    config: Config,
    task: str,
) -> tuple[int, list[Finding]]:
    """Rules on the seeded sample (near-constant, target leakage) and on the class counts."""
    seed = config.project.seed
    target = config.data.target
    sample = table.take(audit.sample_indices(table.num_rows, seed)).to_pandas()
    findings = audit.near_constant(sample, list(kinds))
    if labels is None:
        return len(sample), findings
    if task != "regression":
        values, counts = np.unique(labels, return_counts=True)
        by_class = dict(zip(values.tolist(), counts.tolist(), strict=True))
        findings += audit.class_imbalance(target, by_class)
    if task == "anomaly":  # what separates the anomalies is the signal, not a leak
        return len(sample), findings
    findings += _mark_kept(
        audit.target_leakage(sample, target, kinds, task, seed), config.data.keep
    )
    return len(sample), findings


# -- configuration --------------------------------------------------------------------------------


def _check_config(config: Config, duckdb_types: dict[str, str], path: str) -> str:
    """Columns named in [data] and [split] must exist; returns the split column ('' if none)."""
    data = config.data
    named = [("types", list(data.types)), ("keep", data.keep), ("exclude", data.exclude)]
    for key, columns in named:
        for column in columns:
            if column not in duckdb_types:
                raise BadInputError(
                    f"[data] {key}: column '{column}' is not in {path}; remove it from the list"
                )
    both = sorted(set(data.keep) & set(data.exclude))
    if both:
        raise BadInputError(
            f"[data] keep and exclude both list '{both[0]}'; remove it from one of them"
        )
    strategy = config.split.strategy
    if strategy not in ("time", "group"):
        return ""
    key = f"{strategy}_column"
    column = getattr(config.split, key)
    if not column:
        raise BadInputError(
            f'[split] strategy = "{strategy}" needs [split] {key}: the column to split on'
        )
    if column not in duckdb_types:
        raise BadInputError(f"[split] {key} = '{column}' is not a column of {path}")
    if column == data.target:
        raise BadInputError(f"[split] {key} = '{column}' is the target; choose another column")
    if strategy == "time":
        _check_time_type(column, duckdb_types[column], data.types.get(column))
    return column


def _check_time_type(column: str, duckdb_type: str, override: str | None) -> None:
    readable = sql.is_temporal_type(duckdb_type) or sql.is_numeric_type(duckdb_type)
    if not readable and not (override == "datetime" and sql.is_string_like(duckdb_type)):
        raise BadInputError(
            f"[split] time_column '{column}' is {duckdb_type}, not a date/time or number; "
            f'set [data] types = {{ "{column}" = "datetime" }} if it holds dates'
        )


def _check_numeric_overrides(
    overrides: dict[str, ColumnType], profile: dict[str, Any], scan: audit.TableScan
) -> None:
    """A string column declared numeric must hold some numbers (the rest are read as missing)."""
    for column, kind in overrides.items():
        stats = profile["columns"][column]
        present = profile["rows"] - stats["nulls"]
        if kind != "numeric" or not sql.is_string_like(stats["type"]) or not present:
            continue
        if scan.columns[column].numeric_values == 0:
            raise BadInputError(
                f"[data] types: column '{column}' is set to numeric but none of its values is "
                "a number; remove the override or fix the column"
            )


# -- choosing features ----------------------------------------------------------------------------


def _mark_kept(findings: list[Finding], keep: tuple[str, ...]) -> list[Finding]:
    """Rewrite the action of an excluding finding whose column the user keeps."""
    return [
        replace(f, action="kept as a feature: it is listed in [data] keep")
        if f.exclude and f.column in keep
        else f
        for f in findings
    ]


def _exclusions(findings: list[Finding], keep: tuple[str, ...]) -> dict[str, str]:
    """Column -> reason for findings that exclude a column the user did not keep (first wins)."""
    reasons: dict[str, str] = {}
    for finding in findings:
        if finding.exclude and finding.column is not None and finding.column not in keep:
            reasons.setdefault(finding.column, finding.exclude)
    return reasons


def _candidates(
    config: Config,
    duckdb_types: dict[str, str],
    types: dict[str, ColumnType],
    findings: list[Finding],
    split_column: str,
) -> tuple[dict[str, FeatureKind], dict[str, str]]:
    """Feature kinds of the columns that may be features (before leakage), and the excluded."""
    data = config.data
    by_findings = _exclusions(findings, data.keep)
    kinds: dict[str, FeatureKind] = {}
    excluded: dict[str, str] = {}
    for name, column_type in types.items():
        if name == data.target:
            continue
        kept = name in data.keep
        if name in data.exclude:
            excluded[name] = "listed in [data] exclude"
        elif name in by_findings:
            excluded[name] = by_findings[name]
        elif name == split_column and not kept:
            excluded[name] = SPLIT_COLUMN_REASONS[config.split.strategy]
        elif (kind := coltypes.default_kind(column_type)) is not None:
            kinds[name] = kind
        elif kept:
            kinds[name] = coltypes.kept_kind(column_type, duckdb_types[name])
        else:
            excluded[name] = f"{column_type}: not a feature unless listed in [data] keep"
    return kinds, excluded


def _warnings(
    config: Config, types: dict[str, ColumnType], excluded: dict[str, str], dropped: int
) -> list[str]:
    warnings = [f"column '{name}' excluded: {why}" for name, why in excluded.items()]
    if dropped:
        warnings.append(f"{dropped} rows with a missing target were dropped")
    warnings += [
        f"column '{name}' is kept as a number: seconds since 1970-01-01"
        for name in config.data.keep
        if types.get(name) == "datetime"
    ]
    return warnings


# -- reading rows and splitting -------------------------------------------------------------------


# Unsupervised tasks' labels (anomaly's evaluation label) are audited as binary classes.
_LABEL_TASK = {"anomaly": "binary", "clustering": None}


def _read_rows(
    relation: DuckDBPyRelation,
    duckdb_types: dict[str, str],
    types: dict[str, ColumnType],
    kinds: dict[str, FeatureKind],
    target: str,
    split_column: str,
    config: Config,
) -> pa.Table:
    """Rows with a target, each candidate feature cast to its kind, plus the split column."""
    col = sql.quote_ident(target) if target else ""
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
    table = relation.filter(condition).select(", ".join(exprs)).to_arrow_table()
    if config.split.strategy == "time" and table.column(split_column).null_count:
        raise BadInputError(
            f"[split] time_column '{split_column}': {table.column(split_column).null_count} rows "
            "with a target have no time (missing or unreadable); fill them in or drop those rows"
        )
    return table


def _assign(
    table: pa.Table, config: Config, task: str, labels: np.ndarray | None, split_column: str
) -> tuple[np.ndarray, str]:
    split = config.split
    seed = config.project.seed
    if split.strategy == "time":
        times = _time_key(table.column(split_column))
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
    stratify = split.strategy == "stratified" and task != "regression" and labels is not None
    assignment = assign_splits(
        labels if stratify else None,
        table.num_rows,
        split.valid_fraction,
        split.test_fraction,
        seed,
    )
    empty = [name for index, name in enumerate(SPLITS) if not (assignment == index).any()]
    if empty and stratify:
        n_classes = len(np.unique(labels))  # type: ignore[arg-type]
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


def _time_key(column: pa.ChunkedArray) -> np.ndarray:
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


def _split_summary(
    part: pa.Table, target: str, classes: list[Any] | None, strategy: str, split_column: str
) -> dict[str, Any]:
    summary: dict[str, Any] = {"rows": part.num_rows}
    if classes is not None:
        values = part.column(target).to_numpy(zero_copy_only=False)
        counts = {str(c): int(np.sum(values == c)) for c in classes}
        summary["class_balance"] = {
            c: round(n / part.num_rows, 4) if part.num_rows else 0.0 for c, n in counts.items()
        }
    if strategy == "time" and part.num_rows:
        bounds = pc.min_max(part.column(split_column))
        summary["time_range"] = [str(bounds["min"].as_py()), str(bounds["max"].as_py())]
    if strategy == "group":
        summary["groups"] = pc.count_distinct(part.column(split_column)).as_py()
    return summary


# -- writing --------------------------------------------------------------------------------------


def _write_parquet(path: Path, table: pa.Table) -> Path:
    with atomic.atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def _write_audit(
    ctx: PhaseContext,
    findings: list[Finding],
    types: dict[str, ColumnType],
    excluded: dict[str, str],
    *,
    passed: bool,
    sample: int | None,
) -> Path:
    report = {
        "passed": passed,
        "sample_rows": sample,
        "types": types,
        "excluded_columns": excluded,
        "findings": [f.to_dict() for f in audit.ordered(findings)],
    }
    return atomic.write_json(ctx.artifact("audit.json"), report)


def _stop_on_errors(
    ctx: PhaseContext,
    findings: list[Finding],
    types: dict[str, ColumnType],
    excluded: dict[str, str],
) -> None:
    """Error findings: write the complete audit report (nothing else) and stop with exit 1."""
    errors = audit.errors(findings)
    if not errors:
        return
    path = _write_audit(ctx, findings, types, excluded, passed=False, sample=None)
    raise QualityGateError(
        f"data audit: {len(errors)} error(s): "
        + "; ".join(f.one_line() for f in errors)
        + f" (all findings: {ctx.workspace.relative(path)})",
        metrics={
            "findings": [f.to_dict() for f in audit.ordered(findings)],
            "excluded_columns": excluded,
            "types": types,
        },
        outputs={"audit": path},
    )


def _tally(findings: list[Finding]) -> str:
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    return ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())
