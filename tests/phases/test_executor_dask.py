"""The model phase on a real Dask cluster: a scheduler and two workers started by the test as
separate processes on 127.0.0.1 (`helpers.servers.dask_cluster`).

The same project, seed and candidates trained by the local pool and by the cluster give the same
leaderboard; the cluster's workers' own logs name the jobs they ran; the models come back into
the project; cancel stops the jobs on the workers.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from helpers.model import fake_project
from helpers.servers import DaskCluster
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.errors import BadInputError, CancelledError
from mlwizard.core.model import executors
from mlwizard.core.model import phase as model
from mlwizard.core.model.session import TRIALS_ENV

CANDIDATES = ("dummy", "linear", "hist_gradient_boosting")


def _board(ctx: Any) -> dict[str, dict[str, Any]]:
    board = json.loads((ctx.workspace.artifact_dir("model") / "leaderboard.json").read_text())
    return {row["name"]: row for row in board["rows"]}


@pytest.fixture(autouse=True)
def _two_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRIALS_ENV, "2")


def _graph(path: Path) -> bytes:
    """The ONNX graph's bytes but for its name (skl2onnx draws a random one), and the opsets
    (whose order in the file varies from process to process)."""
    import onnx

    model = onnx.load(path)
    model.graph.name = ""
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    return model.graph.SerializeToString() + repr(opsets).encode()


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("status", "score", "deployable", "params", "cv", "complete")}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, dask_cluster: DaskCluster) -> dict[str, Any]:
    """One project trained twice from scratch: by the local pool, then on the cluster."""
    runs: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TRIALS_ENV, "2")
        for name, executor in (("local", "local"), ("dask", "dask://" + dask_cluster.address[6:])):
            ctx, events = fake_project(
                tmp_path_factory.mktemp(name), "binary", candidates=CANDIDATES, workers=2
            )
            ctx = dataclasses.replace(ctx, executor=executor)
            runs[name] = (ctx, model.run(ctx), events)
    return runs


def test_the_cluster_gives_the_local_pools_leaderboard(both: dict[str, Any]) -> None:
    (local_ctx, local, _), (dask_ctx, remote, _) = both["local"], both["dask"]
    assert remote.metrics["best_model"] == local.metrics["best_model"]
    local_board, dask_board = _board(local_ctx), _board(dask_ctx)
    assert list(dask_board) == list(local_board)
    for name in CANDIDATES:
        assert local_board[name]["status"] == "done"
        assert _comparable(dask_board[name]) == _comparable(local_board[name]), name
    assert remote.metrics["test"] == local.metrics["test"]
    # The models came back into the project, where the local pool puts them, the same graphs.
    for name in CANDIDATES[1:]:
        onnx = dask_ctx.workspace.resolve(dask_board[name]["onnx"])
        assert onnx.is_relative_to(dask_ctx.workspace.root) and onnx.is_file()
        local_onnx = local_ctx.workspace.resolve(local_board[name]["onnx"])
        assert _graph(onnx) == _graph(local_onnx), name
        assert onnx.with_suffix(".json").is_file()  # the run cache's record, written last


def test_the_workers_logs_show_the_jobs_ran_there(
    both: dict[str, Any], dask_cluster: DaskCluster
) -> None:
    _, _, events = both["dask"]
    logs = "\n".join(dask_cluster.logs())
    for name in CANDIDATES:
        assert f"mlwizard: training candidate {name} " in logs, name
    assert sum("mlwizard: training candidate" in log for log in dask_cluster.logs()) == 2
    started = [e.payload for e in events if isinstance(e.payload, ev.CandidateStarted)]
    assert sorted(p.candidate for p in started) == sorted(CANDIDATES)
    plan = next(e for e in events if "training 3 candidate(s)" in e.message)
    assert "Dask worker(s) at tcp://127.0.0.1:" in plan.message, plan.message
    assert plan.data["workers"] == 2 and plan.data["threads"] == 1  # 2 cores, 2 slots


def test_a_rerun_reuses_the_runs_the_cluster_brought_back(both: dict[str, Any]) -> None:
    ctx, first, _ = both["dask"]
    again = model.run(dataclasses.replace(ctx, emit=ev.ignore, executor="dask://127.0.0.1:9"))
    # Nothing to train, so the (unreachable) scheduler is never contacted.
    assert again.metrics["best_model"] == first.metrics["best_model"]
    assert all(row["reused"] for row in again.metrics["candidates"] if row["name"] != "ensemble")


def test_an_unreachable_scheduler_is_one_clear_line() -> None:
    executor = executors.resolve("dask://127.0.0.1:9")
    with pytest.raises(
        BadInputError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        executor.plan(0, 3)
    with pytest.raises(BadInputError, match="not an executor"):
        executors.resolve("ray://somewhere")


@pytest.mark.timeout(180)  # a cancel the cluster ignores hangs: the timeout fails it
def test_cancel_stops_the_jobs_on_the_cluster(
    tmp_path: Path, dask_cluster: DaskCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: the workers running a job are ended, and their nannies restart them."""
    monkeypatch.delenv(TRIALS_ENV, raising=False)  # full searches: far longer than the test
    ctx, events = fake_project(
        tmp_path, "binary", candidates=("random_forest", "extra_trees", "catboost")
    )
    ctx = dataclasses.replace(ctx, executor=dask_cluster.address)
    cancel = threading.Event()
    ctx.cancel = cancel

    def on_event(event: ev.Event) -> None:
        events.append(event)
        started = event.payload
        if isinstance(started, ev.CandidateStarted) and started.candidate != "dummy":
            threading.Timer(2.0, cancel.set).start()

    ctx.emit = on_event
    with pytest.raises(CancelledError):  # full searches take far longer than the timeout
        model.run(ctx)
    assert not (ctx.workspace.artifact_dir("model") / "leaderboard.json").exists()
    from distributed import Client

    with Client(dask_cluster.address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)  # restarted by their nannies
        assert not any(client.processing().values())  # nothing of ours left running
