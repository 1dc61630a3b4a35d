"""Which run the model phase keeps: the best deployable one (`choice`) whose export also holds
on the test split's features, falling back to the next one if it does not; and the gate.

Checking the export on test features reads no labels, so it does not leak the test split into
the choice: it only asks whether the ONNX graph computes what the pipeline computes on rows the
service will see. A conversion that holds on train and validation rows can still differ on others
(a tree threshold rounded onto a test value: issue 9's load_wine case), and deploy checks test
rows; the model phase checks them first, so what it chooses deploys.
"""

from __future__ import annotations

from collections.abc import Callable

import joblib
import pandas as pd

from mlwizard.core.contract.schema import Schema
from mlwizard.core.contract.tasks import Direction
from mlwizard.core.export.parity import check_parity
from mlwizard.core.model.candidates import BASELINE
from mlwizard.core.model.choice import ranker
from mlwizard.core.model.jobs import RunResult
from mlwizard.core.model.leaderboard import fmt
from mlwizard.core.model.metrics import is_better, reaches

# Fewer test rows than this (or fewer per class) and the test score says little.
MIN_TEST_ROWS = 30
MIN_TEST_ROWS_PER_CLASS = 5


def ranked(deployable: list[RunResult], direction: Direction) -> list[RunResult]:
    """Best first as `choice` ranks them (common CV folds and validation pooled); ties keep
    the configured order; undefined scores last."""
    rank_score = ranker(deployable)
    order: list[RunResult] = []
    for run in deployable:
        at = next(
            (
                i
                for i, other in enumerate(order)
                if is_better(rank_score(run), rank_score(other), direction)
            ),
            len(order),
        )
        order.insert(at, run)
    return order


def holds_on_test(run: RunResult, schema: Schema, x_test: pd.DataFrame) -> bool:
    """Check the run's export on the test features and add it to the run's parity record.

    A run that fails becomes not deployable, with the reason.
    """
    pipeline = joblib.load(run.joblib_path)
    test = check_parity(pipeline, run.onnx_path.read_bytes(), x_test, schema)
    if test.rows == 0:
        return True
    record = dict(run.parity or {})
    diff = test.to_dict()["max_abs_diff"]
    record["splits"] = {**(record.get("splits") or {}), "test": diff}
    if test.ok:
        prior = record.get("max_abs_diff")
        record["max_abs_diff"] = test.max_abs_diff if prior is None else max(prior, diff)
        record["rows"] = int(record.get("rows") or 0) + test.rows
    else:
        run.deployable = False
        run.reason = (
            f"ONNX output differs from the pipeline by {test.max_abs_diff:.3g} "
            f"(tolerance {test.tolerance:.3g}) on {test.rows} test rows"
        )
        record.update(ok=False, max_abs_diff=diff)
    run.parity = record
    return test.ok


def first_that_deploys(
    runs: list[RunResult],
    schema: Schema,
    x_test: pd.DataFrame,
    say: Callable[[str], None],
) -> RunResult | None:
    """The first of `runs` (best first) whose export holds on the test features, saying so
    when one is passed over."""
    for index, run in enumerate(runs):
        if holds_on_test(run, schema, x_test):
            return run
        after = runs[index + 1].candidate if index + 1 < len(runs) else None
        then = f"falling back to {after}, the next deployable candidate" if after else "none left"
        say(f"{run.candidate}: not deployable after all: {run.reason}; {then}")
    return None


def small_test_warning(rows: int, y_counts: dict[str, int], metric: str) -> str | None:
    """A warning when the test split is too small for its score to mean much."""
    smallest = min(y_counts.values()) if y_counts else None
    if rows >= MIN_TEST_ROWS and (smallest is None or smallest >= MIN_TEST_ROWS_PER_CLASS):
        return None
    detail = f"{rows} rows"
    if smallest is not None and smallest < MIN_TEST_ROWS_PER_CLASS:
        rare = min(y_counts, key=lambda k: y_counts[k])
        detail += f", {smallest} of class '{rare}'"
    return (
        f"the test split is small ({detail}): its {metric} can move a lot with a row or two, so "
        "read it as a rough estimate; more data (or a larger [split] test share) makes it firmer"
    )


def gate(
    metric: str,
    direction: Direction,
    success: float | None,
    test_score: float | None,
    best: RunResult,
    baseline: float | None,
) -> list[str]:
    """Why the chosen model does not meet the success criterion (empty when it does)."""
    if success is not None:
        if reaches(test_score, success, direction):
            return []
        side = "below" if direction == "maximize" else "above"
        return [
            f"test {metric} {fmt(test_score)} is {side} the success threshold {success:g} "
            "set in mlwizard.toml [discovery] success_threshold"
        ]
    if baseline is None:
        return [
            f"the baseline ({BASELINE}) has no validation {metric}, so beating it cannot be "
            "checked; set [discovery] success_threshold in mlwizard.toml"
        ]
    if is_better(best.score, baseline, direction):
        return []
    return [
        f"the best model ({best.candidate}, validation {metric} {fmt(best.score)}) does "
        f"not beat the {BASELINE} baseline ({fmt(baseline)})"
    ]
