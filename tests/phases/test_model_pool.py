"""Issue 12, item 6: parallel where it pays. The pool's workers read the splits once each, the
last jobs running take the cores the idle workers leave, the jobs start longest first (boosters
last) when the budget holds, and none of it changes what the phase finds: 1 and 2 workers give the
same leaderboard, test scores and ONNX bytes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from helpers import pool as helpers
from helpers.model import fake_project, real_project, wide_frame
from mlwizard.core import runner
from mlwizard.core.contract.schema import Schema
from mlwizard.core.kernel import events as ev
from mlwizard.core.model import schedule, training, workers
from mlwizard.core.model.candidates import START_ORDER
from mlwizard.core.model.jobs import TrainJob
from mlwizard.core.model.session import TRIALS_ENV


def _job(root: Path, name: str, index: int) -> TrainJob:
    data = root / "artifacts" / "data"
    out_dir = root / "runs" / str(index)
    out_dir.mkdir(parents=True, exist_ok=True)
    return TrainJob(
        candidate=name,
        key=f"{name}-{index:02d}",
        train=data / "train.parquet",
        valid=data / "valid.parquet",
        schema=data / "schema.json",
        out_dir=out_dir,
        seed=7,
        metric="roc_auc",
        direction="maximize",
        configs=({},),
        split_strategy="random",
        split_column="",
        threads=1,
        budget_s=300.0,
        share_s=300.0,
        hard_deadline=time.monotonic() + 300.0,
    )


def _run(fn, keys, make_job, count):  # type: ignore[no-untyped-def]
    done: dict[str, object] = {}
    left = workers.run_jobs(
        fn,
        keys,
        make_job,
        workers=count,
        threads=1,
        deadline=time.monotonic() + 300.0,
        cancel=threading.Event(),
        on_done=lambda key, result, error: done.__setitem__(key, result or error),
    )
    assert left == []
    return done


def test_each_worker_reads_the_splits_once_for_all_its_jobs(tmp_path: Path) -> None:
    fake_project(tmp_path, "binary", candidates=("dummy",))
    keys = [f"job{i}" for i in range(6)]
    done = _run(
        helpers.train_and_report,
        keys,
        lambda key, now: _job(tmp_path, "dummy", keys.index(key)),
        2,
    )
    by_worker: dict[int, list[int]] = defaultdict(list)
    for key in keys:
        pid, status, reads = done[key]  # type: ignore[misc]
        assert status == "done", done[key]
        by_worker[pid].append(reads)
    assert sum(len(v) for v in by_worker.values()) == len(keys)
    assert all(reads == [1] * len(reads) for reads in by_worker.values()), by_worker


def test_changed_splits_are_read_again(tmp_path: Path) -> None:
    fake_project(tmp_path, "binary", candidates=("dummy",))
    job = _job(tmp_path, "dummy", 0)
    schema = Schema.load(job.schema)
    before = len(training.loads())
    first = training.read_inputs(job, schema)
    first.x_train.iloc[0, 0] = -1e9  # a job's own copy: the kept splits do not change
    again = training.read_inputs(job, schema)
    assert len(training.loads()) == before + 1
    assert again.x_train.iloc[0, 0] != -1e9
    table = pd.read_parquet(job.train)
    table.iloc[: len(table) // 2].to_parquet(job.train, index=False)  # new content
    third = training.read_inputs(job, schema)
    assert len(training.loads()) == before + 2 and len(third.train) == len(table) // 2
    training.forget()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no idle core to give")
def test_the_last_job_running_takes_the_cores_the_idle_worker_leaves() -> None:
    cores = os.cpu_count() or 1
    done = _run(helpers.observe_threads, ["long", helpers.SHORT], lambda key, now: key, 2)
    short, long = done[helpers.SHORT], done["long"]
    assert short["first"] <= max(1, cores // 2)  # type: ignore[index]
    assert long["last"] == cores  # type: ignore[index]


def test_tail_threads_split_the_cores_only_when_nothing_waits() -> None:
    cores = os.cpu_count() or 1
    assert workers.tail_threads(1, running=2, queued=3) == 1
    assert workers.tail_threads(1, running=1, queued=0) == max(1, cores)
    assert workers.tail_threads(1, running=2, queued=0) == max(1, cores // 2)
    assert workers.threads_now(3) == 3  # outside a pool worker: the share, always


def test_jobs_start_longest_first_with_the_boosters_last_when_the_budget_holds() -> None:
    names = list(START_ORDER)
    ordered = schedule.order(names, rows=20_000, features=20, workers=2, seconds=3600)
    assert ordered[0] == "dummy" and sorted(ordered) == sorted(names)
    boosters = [n for n in ordered if n in schedule.ELASTIC]
    assert boosters and ordered[-len(boosters) :] == boosters
    # Among the others, longest expected first (the forests grow with the table, linear does not).
    others = ordered[1 : -len(boosters)]
    assert others.index("random_forest") < others.index("linear")
    assert others.index("extra_trees") < others.index("linear")
    # A budget that binds, or one worker: cheap and strong first, as before.
    assert schedule.order(names, rows=20_000, features=20, workers=2, seconds=5) == names
    assert schedule.order(names, rows=20_000, features=20, workers=1, seconds=3600) == names


@pytest.mark.timeout(900)  # two model phases on a shared 2-core machine
def test_one_and_two_workers_find_the_same_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    frame = wide_frame(400, seed=5)
    outcomes = {}
    for count in (1, 2):
        model = {
            "candidates": ["linear", "catboost", "random_forest"],
            "workers": count,
            "refit_full": False,  # one refit after the choice: enough to compare, and lean
        }
        ws = real_project(tmp_path / f"w{count}", frame, model)
        events: list[ev.Event] = []
        # A budget that holds even on a loaded machine: the order is the schedule's, not the
        # cheap-first order of a budget that may bind.
        outcome = runner.run_phase(ws, "model", time_budget=1800, emit=events.append)
        board = json.loads((ws.artifact_dir("model") / "leaderboard.json").read_text())
        started = [
            e.payload.candidate for e in events if isinstance(e.payload, ev.CandidateStarted)
        ]
        outcomes[count] = {
            "onnx": (ws.artifact_dir("model") / "model.onnx").read_bytes(),
            "board": [(r["name"], r["score"], r["cv_mean"]) for r in board["rows"]],
            "test": outcome.metrics["test"],
            "best": outcome.metrics["best_model"],
            "started": started,
        }
    one, two = outcomes[1], outcomes[2]
    assert one["started"] == ["dummy", "linear", "random_forest", "catboost"]
    assert two["started"] == ["dummy", "random_forest", "linear", "catboost"]  # boosters last
    for key in ("board", "test", "best", "onnx"):
        assert one[key] == two[key], key
