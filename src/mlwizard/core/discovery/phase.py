"""Discovery: which kind of learning, what is predicted, how it is judged, what counts as
success — and, before any training, whether it looks feasible and what it is worth.

The approach is supervised (a target), clustering or anomaly detection (no target; anomaly may
keep a rare label for evaluation only); reinforcement learning is recognised and declined
(`approach.py`). The report adds the class balance, the baseline's score, whether the success
criterion looks reachable, the model phase's expected time and memory (`feasibility.py`) and,
with costs given, what is at stake (`value.py`).
"""

from __future__ import annotations

from typing import Any, get_args

from mlwizard.core import sql
from mlwizard.core.contract.schema import TaskKind
from mlwizard.core.contract.tasks import (
    MIN_TARGET_ROWS,
    UNSUPERVISED_CANDIDATES,
    choose_metric,
    infer_task,
)
from mlwizard.core.discovery import approach as approaches
from mlwizard.core.discovery import feasibility, value
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import BadInputError

MAX_COUNTED_CLASSES = 50  # class balance is reported for at most this many classes


def run(ctx: PhaseContext) -> PhaseResult:
    config = ctx.config
    target = config.data.target
    chosen = approaches.resolve(config, str(ctx.workspace.config_path))
    con = sources.connect()
    relation, path = sources.open_source(con, ctx.workspace, config)
    rows = int(relation.aggregate("count(*)").fetchall()[0][0])
    metrics: dict[str, Any] = {"approach": chosen, "target": target, "rows": rows}
    facts: dict[str, Any] = {}
    if target:
        sources.require_column(relation, target, path)
        facts = _target_facts(relation, target, path)
        metrics.update(target_missing=rows - facts["present"], target_distinct=facts["distinct"])

    if chosen == "supervised":
        task, inferred = _supervised_task(config.discovery.task, target, facts, path)
    elif chosen == "anomaly" and target and facts["distinct"] != 2:
        raise BadInputError(
            f"{path}: anomaly detection uses a label only for evaluation and it must have two "
            f"values (normal, anomaly); '{target}' has {facts['distinct']}"
        )
    if chosen != "supervised":
        task = inferred = chosen
    requested = config.discovery.metric
    if task == "anomaly" and not target:
        requested = "none"  # nothing to evaluate against: the choice follows a fixed preference
    metric, direction = choose_metric(task_kind(task), requested)
    threshold = config.discovery.success_threshold
    criterion = _criterion(metric, direction, threshold)

    counts = facts.get("counts")
    positive = _positive_class(task, counts)
    columns = len(relation.columns) - (1 if target else 0)
    candidates = _candidates(task, config.model.candidates)
    budget = float(ctx.time_budget if ctx.time_budget is not None else config.model.time_budget)
    baseline = feasibility.baseline_score(
        task, metric, facts | {"positive_share": _share(counts, positive)}
    )
    metrics.update(
        task=task,
        task_inferred=inferred,
        metric=metric,
        metric_direction=direction,
        success_threshold=threshold,
        success_criterion=criterion,
        suggestion=approaches.suggestion(chosen, target, counts, facts.get("present", rows)),
        class_balance=_balance(counts),
        positive_class=positive,
        baseline_score=baseline,
        reachable=feasibility.reachability(metric, direction, threshold, baseline),
        feasibility=feasibility.estimate(rows, columns, candidates, config.model.workers, budget),
    )
    if task == "clustering":
        metrics["clusters"] = config.discovery.clusters
    if task == "anomaly":
        metrics["contamination"] = config.discovery.contamination
        metrics["anomaly_class"] = positive
    costs = value.Costs.of(config.discovery)
    if costs is not None and counts and task in ("binary", "multiclass", "anomaly"):
        metrics["value"] = value.stake(counts, positive, costs)
    ctx.message(_summary(metrics))
    report = atomic.write_json(ctx.artifact("discovery.json"), metrics)
    return PhaseResult(metrics=metrics, outputs={"discovery": report})


def _target_facts(relation: Any, target: str, path: str) -> dict[str, Any]:
    column = sql.quote_ident(target)
    target_type = sources.column_types(relation)[target]
    numeric = sql.is_numeric_type(target_type)
    spread = (
        f", stddev_pop({column}), avg(abs({column} - (SELECT avg({column}) FROM rel)))"
        if numeric
        else ", NULL, NULL"
    )
    present, distinct, std, mad = relation.query(
        "rel", f"SELECT count({column}), count(DISTINCT {column}){spread} FROM rel"
    ).fetchall()[0]
    if present == 0:
        raise BadInputError(
            f"{path}: target column '{target}' has no values; choose another target"
        )
    facts: dict[str, Any] = {
        "present": int(present),
        "distinct": int(distinct),
        "type": target_type,
        "numeric": numeric,
        "std": std,
        "mad": mad,
        "counts": None,
    }
    if distinct <= MAX_COUNTED_CLASSES:
        grouped = relation.query(
            "rel",
            f"SELECT {column}, count(*) FROM rel WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1",
        ).fetchall()
        facts["counts"] = {str(k): int(n) for k, n in grouped}
    return facts


def _supervised_task(
    requested: str, target: str, facts: dict[str, Any], path: str
) -> tuple[str, str]:
    present, distinct, target_type = facts["present"], facts["distinct"], facts["type"]
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
    numeric = facts["numeric"]
    inferred = infer_task(numeric, target_type in sql.INTEGER_TYPES, distinct)
    task = inferred if requested == "auto" else requested
    if task == "regression" and not numeric:
        raise BadInputError(
            f"{path}: target '{target}' is {target_type}, not numeric; a regression needs numbers "
            '(set [discovery] task = "auto" or a classification task)'
        )
    if task == "binary" and distinct != 2:
        raise BadInputError(
            f"{path}: target '{target}' has {distinct} distinct values; a binary task needs 2"
        )
    if task == "regression":
        facts["counts"] = None  # a numeric target's values are not classes
    return task, inferred


def _train_rows(rows: int, split: Any) -> int:
    """The rows the model phase trains on: what the split leaves for training."""
    return max(1, round(rows * (1 - split.valid_fraction - split.test_fraction)))


def _candidates(task: str, configured: tuple[str, ...]) -> list[str]:
    if task in UNSUPERVISED_CANDIDATES:
        return list(UNSUPERVISED_CANDIDATES[task])
    names = list(dict.fromkeys(configured))
    return names if "dummy" in names else ["dummy", *names]


def _positive_class(task: str, counts: dict[str, int] | None) -> str | None:
    """Binary: the second class in sorted order (the model's class 1); anomaly: the rarer."""
    if not counts or len(counts) != 2:
        return None
    if task == "anomaly":
        return min(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return sorted(counts)[1] if task == "binary" else None


def _share(counts: dict[str, int] | None, positive: str | None) -> float | None:
    if not counts or positive is None:
        return None
    return round(counts[positive] / sum(counts.values()), 6)


def _balance(counts: dict[str, int] | None) -> dict[str, float] | None:
    if not counts:
        return None
    total = sum(counts.values())
    return {k: round(n / total, 4) for k, n in counts.items()}


def _criterion(metric: str, direction: str, threshold: float | None) -> str:
    if metric == "none":
        return "no label to evaluate against: the model is chosen by a fixed preference"
    if threshold is not None:
        return f"test {metric} {'≥' if direction == 'maximize' else '≤'} {threshold}"
    if metric in ("silhouette", "davies_bouldin", "calinski_harabasz"):
        return f"the best clustering by validation {metric}"
    return f"the best model beats the baseline on validation {metric}"


def _summary(m: dict[str, Any]) -> str:
    estimate = m["feasibility"]
    what = f"on '{m['target']}'" if m["target"] else "without a target"
    if m["task"] == "anomaly" and m["target"]:
        what = f"with '{m['target']}' (rare class '{m['anomaly_class']}') used only to evaluate"
    return (
        f"{m['task']} {what}, judged by {m['metric']}; success: {m['success_criterion']} "
        f"({m['reachable']['verdict']}); model phase expected to take about "
        f"{estimate['model_phase_s']:g}s and {estimate['peak_memory_mb']} MB"
    )


def task_kind(task: str) -> TaskKind:
    """`task` as the contract's kind; config values were checked when the config was read."""
    kinds: tuple[TaskKind, ...] = get_args(TaskKind)
    if task not in kinds:
        raise BadInputError(f"[discovery] task = '{task}' is not one of {', '.join(kinds)}")
    return next(k for k in kinds if k == task)
