"""Issue 12, item 6: a search's fold fits may run side by side (the pool's elastic tail), and it
finds exactly what one fit at a time finds: the same trials, prunings, rounds and best model."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from helpers.model import make_schema, table
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.model import candidates, cv, fitting, training, tuning


def _search(name: str, configs: list[dict[str, Any]], lanes: int, **kw: Any) -> Any:
    schema = make_schema("binary")
    frame = table("binary", 300, np.random.default_rng(1), unseen=False)
    x, y = feature_frame(frame, schema), target_vector(frame, schema)
    folds = cv.plan(frame, y, task="binary", strategy="stratified", column="", seed=3)
    running: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def build(params: dict[str, Any]) -> Any:
        with lock:  # how many fits are being built at once (a lane each)
            running.append(1)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.05)
        with lock:
            running.pop()
        return candidates.build(name, schema, 3, params, threads=1)

    found = tuning.search(
        name,
        configs,
        folds,
        x,
        y,
        schema_task="binary",
        n_classes=2,
        metric=kw.get("metric", "roc_auc"),
        direction="minimize" if kw.get("metric") == "log_loss" else "maximize",
        seed=3,
        build=build,
        deadline=kw.get("deadline", time.monotonic() + 600),
        lanes=lambda: lanes,
    )
    return found, x, peak[0]


def _same(one: Any, two: Any, x: Any) -> None:
    assert [t.to_dict() for t in one.trials] == [t.to_dict() for t in two.trials]
    assert [t.scores for t in one.trials] == [t.scores for t in two.trials]
    assert [t.rounds for t in one.trials] == [t.rounds for t in two.trials]
    assert (one.complete, one.stopped, one.best_fold) == (two.complete, two.stopped, two.best_fold)
    assert one.best.params == two.best.params
    np.testing.assert_array_equal(
        fitting.predict(one.best_fold_model, x, 2), fitting.predict(two.best_fold_model, x, 2)
    )


def test_side_by_side_folds_prune_and_choose_as_one_at_a_time() -> None:
    # The second configuration is far behind on its first fold: pruned, its later folds (fitted
    # ahead side by side) thrown away.
    configs = [{}, {"C": 1e-6}, *candidates.sample_params("linear", "binary", seed=3, trials=3)]
    one, x, peak_one = _search("linear", configs, 1, metric="log_loss")
    two, _, peak_two = _search("linear", configs, 2, metric="log_loss")
    assert one.trials[1].pruned and len(one.trials[1].scores) == 1
    assert one.complete and peak_one == 1 and peak_two == 2
    _same(one, two, x)


@pytest.mark.parametrize("name", ["catboost", "random_forest"])
def test_side_by_side_folds_give_the_same_models(name: str) -> None:
    configs = candidates.sample_params(name, "binary", seed=3, trials=2)
    one, x, _ = _search(name, configs, 1)
    two, _, peak = _search(name, configs, 2)
    assert one.complete and peak == 2
    _same(one, two, x)


def test_side_by_side_folds_still_stop_on_time() -> None:
    configs = candidates.sample_params("linear", "binary", seed=3, trials=3)
    cut, _, _ = _search("linear", configs, 2, deadline=time.monotonic() - 1)
    assert not cut.complete and cut.stopped == "time ran out during configuration 1"
    assert len(cut.trials) == 1 and len(cut.best.scores) == 1 and cut.best_fold_model is not None


def test_only_the_families_that_release_the_gil_go_side_by_side() -> None:
    # Outside a pool worker the allowance is the share: one lane, whatever the family.
    assert training.lanes("catboost", 1) == 1 and training.lanes("linear", 1) == 1
    assert {"catboost", "random_forest", "extra_trees"} <= training.SIDE_BY_SIDE
    assert "linear" not in training.SIDE_BY_SIDE
