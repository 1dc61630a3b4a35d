"""Data: ingest, profile, choose features, snapshot and split.

One aggregate scan profiles the source; the snapshot is written by DuckDB; the split is computed
on the target column alone and applied to the snapshot in Arrow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlwizard.core import atomic, sources
from mlwizard.core.errors import BadInputError
from mlwizard.core.pipeline import PhaseContext, PhaseResult
from mlwizard.core.profile import profile_relation
from mlwizard.core.schema import Feature, Schema, input_names
from mlwizard.core.splits import SPLITS, assign_splits

MIN_ROWS = 10
IDENTIFIER_MIN_ROWS = 50  # below this, "every value unique" says little


def run(ctx: PhaseContext) -> PhaseResult:
    config = ctx.config
    target = config.data.target
    discovery = ctx.upstream["discovery"].metrics
    task = discovery["task"]

    con = sources.connect()
    relation, path = sources.open_source(con, ctx.workspace, config)
    source_hash = sources.source_fingerprint(ctx.workspace, config)
    sources.require_column(relation, target, path)
    profile = profile_relation(relation)
    ctx.check_cancelled()

    features, excluded = _choose_features(profile, target)
    if not features:
        raise BadInputError(f"{path}: no usable feature columns besides the target '{target}'")
    warnings = [f"column '{name}' excluded: {why}" for name, why in excluded.items()]
    target_nulls = profile["columns"][target]["nulls"]
    if target_nulls:
        warnings.append(f"{target_nulls} rows with a missing target were dropped")

    kept = relation.filter(f"{sources.quote_ident(target)} IS NOT NULL")
    select = [sources.quote_ident(target)] + [
        f"{sources.quote_ident(f.name)}::{'DOUBLE' if f.kind == 'numeric' else 'VARCHAR'} "
        f"AS {sources.quote_ident(f.name)}"
        for f in features
    ]
    snapshot = ctx.artifact(f"snapshot-{source_hash[:16]}.parquet")
    with atomic.atomic_path(snapshot) as tmp:
        kept.select(", ".join(select)).write_parquet(str(tmp))
    table = pq.read_table(snapshot)
    if table.num_rows < MIN_ROWS:
        raise BadInputError(
            f"{path}: only {table.num_rows} rows with a target value; "
            f"at least {MIN_ROWS} are needed"
        )

    labels = table.column(target).to_numpy(zero_copy_only=False)
    classes = None if task == "regression" else sorted(set(labels.tolist()))
    assignment = assign_splits(
        None if classes is None else labels,
        table.num_rows,
        config.split.valid_fraction,
        config.split.test_fraction,
        config.project.seed,
    )
    outputs = {"snapshot": snapshot}
    split_report: dict[str, Any] = {}
    for index, name in enumerate(SPLITS):
        part = table.filter(pa.array(assignment == index))
        outputs[name] = ctx.artifact(f"{name}.parquet")
        with atomic.atomic_path(outputs[name]) as tmp:
            pq.write_table(part, tmp)
        split_report[name] = _split_summary(part, target, classes)

    schema = Schema(target=target, task=task, features=features, classes=classes, excluded=excluded)
    outputs["schema"] = schema.save(ctx.artifact("schema.json"))
    outputs["profile"] = atomic.write_json(ctx.artifact("profile.json"), profile)
    ctx.message(
        f"{table.num_rows} rows, {len(features)} features "
        f"({len(schema.numeric)} numeric, {len(schema.categorical)} categorical); "
        + ", ".join(f"{n} {split_report[n]['rows']}" for n in SPLITS)
    )
    metrics = {
        "rows": profile["rows"],
        "rows_used": table.num_rows,
        "columns": len(profile["columns"]),
        "features": [f.name for f in features],
        "excluded_columns": excluded,
        "warnings": warnings,
        "splits": split_report,
        "source_hash": source_hash,
    }
    return PhaseResult(metrics=metrics, outputs=outputs)


def _choose_features(profile: dict[str, Any], target: str) -> tuple[list[Feature], dict[str, str]]:
    rows = profile["rows"]
    chosen: list[tuple[str, str]] = []
    excluded: dict[str, str] = {}
    for name, stats in profile["columns"].items():
        if name == target:
            continue
        present = rows - stats["nulls"]
        if present == 0:
            excluded[name] = "all values are missing"
        elif stats["distinct"] <= 1:
            excluded[name] = "constant: one value in every row"
        elif (
            not stats["numeric"]
            and present >= IDENTIFIER_MIN_ROWS
            and stats["distinct"] >= 0.95 * present
        ):
            excluded[name] = "identifier-like: (nearly) every value is unique"
        else:
            chosen.append((name, "numeric" if stats["numeric"] else "categorical"))
    names = input_names([name for name, _ in chosen])
    return [
        Feature(name, kind, onnx) for (name, kind), onnx in zip(chosen, names, strict=True)
    ], excluded


def _split_summary(part: pa.Table, target: str, classes: list[Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"rows": part.num_rows}
    if classes is not None:
        values = part.column(target).to_numpy(zero_copy_only=False)
        counts = {str(c): int(np.sum(values == c)) for c in classes}
        summary["class_balance"] = {
            c: round(n / part.num_rows, 4) if part.num_rows else 0.0 for c, n in counts.items()
        }
    return summary
