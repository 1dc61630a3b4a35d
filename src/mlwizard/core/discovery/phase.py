"""Discovery: what are we predicting, how is it judged, and what counts as success."""

from __future__ import annotations

from mlwizard.core import sql
from mlwizard.core.contract.tasks import MIN_TARGET_ROWS, choose_metric, infer_task
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError


def run(ctx: PhaseContext) -> PhaseResult:
    config = ctx.config
    target = config.data.target
    if not target:
        raise BadInputError(
            f"{ctx.workspace.config_path}: [data] target is not set; pass --target COLUMN"
        )
    con = sources.connect()
    relation, path = sources.open_source(con, ctx.workspace, config)
    sources.require_column(relation, target, path)
    target_type = sources.column_types(relation)[target]
    column = sql.quote_ident(target)
    rows, present, distinct = relation.aggregate(
        f"count(*), count({column}), count(DISTINCT {column})"
    ).fetchall()[0]
    if present == 0:
        raise BadInputError(
            f"{path}: target column '{target}' has no values; choose another target"
        )
    if present < MIN_TARGET_ROWS:
        raise BadInputError(
            f"{path}: only {present} rows with a target value; "
            f"at least {MIN_TARGET_ROWS} are needed to train and test a model"
        )
    if distinct < 2:
        raise BadInputError(
            f"{path}: target column '{target}' is constant (one value in every row); "
            "there is nothing to predict — choose another target"
        )

    numeric = sql.is_numeric_type(target_type)
    inferred = infer_task(numeric, target_type in sql.INTEGER_TYPES, distinct)
    task = inferred if config.discovery.task == "auto" else config.discovery.task
    if task == "regression" and not numeric:
        raise BadInputError(
            f"{path}: target '{target}' is {target_type}, not numeric; a regression needs numbers "
            '(set [discovery] task = "auto" or a classification task)'
        )
    if task == "binary" and distinct != 2:
        raise BadInputError(
            f"{path}: target '{target}' has {distinct} distinct values; a binary task needs 2"
        )
    metric, direction = choose_metric(task, config.discovery.metric)
    threshold = config.discovery.success_threshold
    criterion = (
        f"test {metric} {'≥' if direction == 'maximize' else '≤'} {threshold}"
        if threshold is not None
        else f"the best model beats the baseline on validation {metric}"
    )
    metrics = {
        "target": target,
        "task": task,
        "task_inferred": inferred,
        "metric": metric,
        "metric_direction": direction,
        "success_threshold": threshold,
        "success_criterion": criterion,
        "rows": rows,
        "target_missing": rows - present,
        "target_distinct": distinct,
    }
    ctx.message(f"{task} task on '{target}', judged by {metric}; success: {criterion}")
    report = atomic.write_json(ctx.artifact("discovery.json"), metrics)
    return PhaseResult(metrics=metrics, outputs={"discovery": report})
