"""Data: read the source once into its snapshot; profile, type and audit the columns, choose
features, and split.

One read: the source (CSV, Parquet, JSON, Excel, a database) is parsed once, straight into the
content-hashed Parquet snapshot; every later scan (the profile, the audit scan, the rows) reads
the snapshot, which costs a fraction of parsing the source again. From the profile and the
audit scan come the column types and the table rules; error findings stop the phase before
anything but the snapshot and the audit is written. The labelled rows are then read once into
Arrow with each feature cast to its kind; a seeded sample of them feeds the one-feature leakage
models, and the split is cut on them and written. Work that needs no connection runs beside
DuckDB's or Arrow's, which release the GIL: the profile's column statistics on its sample beside
the audit scan; the class counts, the split leakage (row hashes from the row read) and the
profile's statistics of the columns together (for the reports only) beside the split writes.
Cancelling interrupts the running DuckDB query. The shells are told which step is running
(`STEPS`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlwizard.core.contract.schema import Feature, FeatureKind, Schema, input_names
from mlwizard.core.data import audit, checks, coltypes, derived, features, rows
from mlwizard.core.data.audit import Finding, TableFacts
from mlwizard.core.data.lineage import data_version, record_version
from mlwizard.core.data.profile import (
    sample_numbers,
    scan_profile,
    summarise_columns,
    summarise_relations,
)
from mlwizard.core.data.report import write_reports
from mlwizard.core.data.splits import SPLITS, check_fractions
from mlwizard.core.ingest import sources
from mlwizard.core.ingest.common import interrupt_on
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import ColumnType, Config
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError, QualityGateError

if TYPE_CHECKING:
    from pathlib import Path

    from duckdb import DuckDBPyConnection, DuckDBPyRelation

MIN_ROWS = 10
STEPS = ("read", "profile", "audit", "split", "report")


def run(ctx: PhaseContext) -> PhaseResult:
    con = sources.connect()
    with interrupt_on(con, ctx.cancel, f"phase {ctx.phase} cancelled"):
        return _run(ctx, con)


def _run(ctx: PhaseContext, con: DuckDBPyConnection) -> PhaseResult:
    config = ctx.config
    target = config.data.target
    task = ctx.upstream["discovery"].metrics["task"]
    # Clustering has no target; anomaly detection may keep a label, for evaluation only.
    labelled = bool(target)
    label_columns = [target] if labelled else []
    check_fractions(config.split.valid_fraction, config.split.test_fraction)
    steps = ctx.steps(*STEPS)

    steps.begin("read")
    source_hash = sources.source_fingerprint(ctx.workspace, config)
    snapshot = ctx.artifact(f"snapshot-{source_hash[:16]}.parquet")
    relation, path = sources.open_source(con, ctx.workspace, config, snapshot=snapshot)
    if labelled:
        sources.require_column(relation, target, path)
    # The project's features.py: its columns join the source's before anything looks at them.
    relation, made = derived.apply_features(ctx, con, relation, source_hash)
    config = derived.with_types(config, made)
    version_hash = made.version(source_hash)
    duckdb_types = sources.column_types(relation)
    split_column = checks.check_config(config, duckdb_types, path)
    steps.begin("profile")
    profile, types, findings, relations = _audit_source(con, relation, config, task, split_column)
    _stop_on_errors(ctx, findings, types, {})
    ctx.check_cancelled()

    steps.begin("audit")
    kinds, excluded = features.candidates(config, duckdb_types, types, findings, split_column)
    identifiers = [n for n, t in types.items() if t == "identifier" and n not in kinds]
    # Raw columns only derive() reads go into the splits too: parity and the bundle's sample
    # requests send them, as a caller would.
    deriving = any(n in kinds for n in made.types)
    raw_only = [n for n in made.raw_inputs if deriving and n not in kinds and n != split_column]
    table = rows.read_rows(
        relation,
        duckdb_types,
        types,
        kinds,
        target,
        split_column,
        config,
        [*identifiers, *(n for n in raw_only if n not in identifiers)],
    )
    if table.num_rows < MIN_ROWS:
        raise BadInputError(
            f"{path}: only {table.num_rows} rows with a target value; "
            f"at least {MIN_ROWS} are needed"
        )
    hashes = table.column(rows.ROW_HASH).to_numpy()
    labels, classes = (
        rows.label_codes(table.column(target), task) if labelled else (np.zeros(0, int), None)
    )
    sample_rows, row_findings = _audit_rows(
        table, labels, classes, kinds, identifiers, config, task
    )
    row_findings = derived.keep_strong(row_findings, made)
    findings += row_findings
    leaks = features.exclusions(row_findings, config.data.keep)
    for name, reason in leaks.items():
        del kinds[name]
        excluded[name] = reason
    if not kinds:
        findings.append(audit.no_features(target))
        _stop_on_errors(ctx, findings, types, excluded)
    ctx.check_cancelled()

    steps.begin("split")
    kept = [n for n in made.types if n in kinds]  # derived columns that are features
    names = input_names(list(kinds))
    feature_list = [Feature(n, k, i) for (n, k), i in zip(kinds.items(), names, strict=True)]
    extra = [split_column] if split_column and split_column not in kinds else []
    extra += raw_only
    table = table.select([*label_columns, *kinds, *extra])
    assignment, strategy = rows.assign(table, config, task, labels, split_column)
    outputs: dict[str, Path] = {"snapshot": snapshot}
    paths = {name: ctx.artifact(f"{name}.parquet") for name in SPLITS}
    split_report: dict[str, Any] = {}
    # streamed: no part is copied out of the table; the parts are written on two threads (Arrow
    # encodes without the GIL), train on one, valid and test on the other, while this thread
    # counts the classes and the rows repeated across the splits, and draws the rest of the
    # profile
    keeps = [assignment == index for index in range(len(SPLITS))]

    def write_rest(rows_table: pa.Table) -> list[Path]:
        return [rows.write_split(paths[n], rows_table, keeps[i]) for i, n in enumerate(SPLITS) if i]

    with ThreadPoolExecutor(max_workers=2) as pool:
        train = pool.submit(rows.write_split, paths[SPLITS[0]], table, keeps[0])
        rest = pool.submit(write_rest, table)
        for index, name in enumerate(SPLITS):
            keep = keeps[index]
            codes = None if classes is None else labels[keep]
            by_column = strategy in ("time", "group") and split_column in table.column_names
            values = pc.filter(table.column(split_column), keep) if by_column else None
            split_report[name] = rows.split_summary(
                int(keep.sum()), codes, classes, strategy, values
            )
        if leaks:  # the hash covered the excluded columns too
            hashes = audit.row_hashes(con, table, [*label_columns, *kinds])
        split_findings, repeated = audit.split_leakage(hashes, assignment)
        profile.update(relations())  # for the reports; the writers are still at work
        outputs.update(zip(SPLITS, [train.result(), *rest.result()], strict=True))
    del table
    for name, count in repeated.items():
        split_report[name]["rows_also_in_train"] = count
    split_findings += audit.split_balance(target, split_report, strategy)
    findings = audit.ordered(findings + split_findings)

    schema = Schema(
        target=target,
        task=task,
        features=feature_list,
        classes=classes,
        excluded=excluded,
        derived={n: made.inputs.get(n, []) for n in kept},
        raw_inputs=made.raw_inputs if kept else {},
    )
    outputs["schema"] = schema.save(ctx.artifact("schema.json"))
    steps.begin("report")
    findings_out = [f.to_dict() for f in findings]
    reports = write_reports(
        profile,
        ctx.artifact("profile.json").parent,
        f"Data profile: {path}",
        audit={"findings": findings_out, "excluded_columns": excluded, "types": types},
    )
    outputs.update(
        profile=reports["json"], profile_summary=reports["markdown"], report=reports["html"]
    )
    outputs["audit"] = _write_audit(ctx, findings, types, excluded, passed=True, sample=sample_rows)
    rows_used = sum(s["rows"] for s in split_report.values())
    outputs["lineage"] = record_version(
        ctx.artifact("lineage.json"),
        config,
        source_label=path,
        source_hash=version_hash,
        rows=profile["rows"],
        rows_used=rows_used,
        snapshot=ctx.workspace.relative(snapshot),
    )
    steps.finish()
    ctx.message(
        f"{rows_used} rows, {len(feature_list)} features "
        f"({len(schema.numeric)} numeric, {len(schema.categorical)} categorical); "
        + ", ".join(f"{n} {split_report[n]['rows']}" for n in SPLITS)
        + f" ({strategy}); audit: {_tally(findings)}"
    )
    metrics = {
        "rows": profile["rows"],
        "rows_used": rows_used,
        "columns": len(profile["columns"]),
        "types": types,
        "features": [f.name for f in feature_list],
        "excluded_columns": excluded,
        "findings": findings_out,
        "warnings": features.warnings(config, types, excluded, profile["rows"] - rows_used),
        "splits": split_report,
        "split_strategy": strategy,
        "audit_sample_rows": sample_rows,
        "source_hash": source_hash,
        "data_version": data_version(version_hash, config),
        "derived": schema.derived,
    }
    return PhaseResult(metrics=metrics, outputs=outputs)


# -- the audit ------------------------------------------------------------------------------------


def _audit_source(
    con: DuckDBPyConnection,
    relation: DuckDBPyRelation,
    config: Config,
    task: str,
    split_column: str,
) -> tuple[dict[str, Any], dict[str, ColumnType], list[Finding], Callable[[], dict[str, Any]]]:
    """Profile and audit scan (two aggregates), column types, and the table rules' findings;
    and what draws the rest of the profile (its statistics of the columns together, which only
    the reports read), for the caller to run when it likes.

    The audit scan runs on a second thread while the profile's column statistics are drawn
    from its sample (Python and Arrow on one core; DuckDB takes the other meanwhile)."""
    target = config.data.target
    rows_hint = int(relation.aggregate("count(*)").fetchall()[0][0])  # Parquet: from its footer
    scanned = scan_profile(
        con, relation, target=target or None, seed=config.project.seed, rows_hint=rows_hint
    )
    overridden = [n for n, t in config.data.types.items() if t == "numeric"]
    numbers = {*sample_numbers(scanned), *overridden}
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(audit.scan_table, relation, numbers)
        profile, sampled = summarise_columns(scanned)
        scan = scanning.result()
    profile_task = "binary" if task == "anomaly" else (None if task == "clustering" else task)
    relations = partial(summarise_relations, scanned, sampled, target or None, profile_task)
    checks.check_numeric_overrides(config.data.types, profile, scan)
    types = coltypes.infer_types(profile, scan, config.data.types)
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
        split_strategy=config.split.strategy,
    )
    findings = features.mark_kept(audit.table_findings(facts), config.data.keep)
    return profile, types, findings, relations


def _audit_rows(
    table: pa.Table,
    labels: np.ndarray,
    classes: list[Any] | None,
    kinds: dict[str, FeatureKind],
    identifiers: list[str],
    config: Config,
    task: str,
) -> tuple[int, list[Finding]]:
    """Rules on the seeded sample (near-constant, target and row-order leakage) and on the
    class counts."""
    seed = config.project.seed
    target = config.data.target
    sample = table.take(audit.sample_indices(table.num_rows, seed)).to_pandas()
    findings = audit.near_constant(sample, list(kinds))
    if not target:  # clustering, anomaly detection without a label
        return len(sample), findings
    if classes is not None:
        counts = np.bincount(labels, minlength=len(classes)).tolist()
        findings += audit.class_imbalance(target, dict(zip(classes, counts, strict=True)))
    if task == "anomaly":  # what separates the anomalies is the signal, not a leak
        return len(sample), findings
    findings += features.mark_kept(
        audit.target_leakage(sample, target, kinds, task, seed), config.data.keep
    )
    findings += audit.row_order_leakage(sample, target, identifiers, task, seed)
    return len(sample), findings


# -- writing --------------------------------------------------------------------------------------


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
