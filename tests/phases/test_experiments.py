"""The experiment store, `mlwizard experiments`, and the MLflow mirror against a real local store.

One real pipeline run (discovery, data, model) on a small synthetic table, with
`MLFLOW_TRACKING_URI` pointing at a SQLite MLflow store in a temporary folder, feeds the CLI and
MLflow tests; the store's own behaviour is checked on hand-made rows.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from helpers.frames import synthetic_frame
from mlwizard.cli.experiments import experiments
from mlwizard.core import runner
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.model import hypotheses
from mlwizard.core.model.experiment_query import compare_runs, list_phase_runs, list_runs
from mlwizard.core.model.experiments import STORE_FILE, ExperimentStore, package_versions
from mlwizard.core.model.tracking import STATUS, TrackingError, flush_all
from mlwizard.core.scaffold import create_project

# mlflow 3.17 with SQLAlchemy 2.1: a deprecation inside mlflow's own store, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*:DeprecationWarning")
cli_runner = CliRunner()
HYPOTHESIS = "a deeper search beats the default settings on this table"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ORIGINAL_COLUMNS = (  # the schema of the first release, for the migration test
    '"run_id" VARCHAR PRIMARY KEY, "phase_run_id" VARCHAR NOT NULL, "candidate" VARCHAR NOT NULL, '
    '"status" VARCHAR NOT NULL, "params" JSON, "metrics" JSON, "duration_s" DOUBLE, '
    '"data_fingerprint" VARCHAR, "seed" BIGINT, "started_at" TIMESTAMPTZ, "deployable" BOOLEAN, '
    '"reason" VARCHAR, "onnx_path" VARCHAR'
)


def cli() -> typer.Typer:
    """The real app once the command is registered there; until then, a stand-in group."""
    from mlwizard.cli.app import app

    names = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    if "experiments" in names:
        return app
    local = typer.Typer()
    local.callback()(lambda: None)
    local.command()(experiments)
    return local


def invoke(*args: str | Path):
    return cli_runner.invoke(cli(), ["experiments", *(str(a) for a in args)])


def fake_run(
    phase_run: str, candidate: str, score: float | None, *, minutes: int = 0, **extra: Any
) -> dict[str, Any]:
    done = score is not None
    row = {
        "run_id": f"{phase_run}{candidate}".ljust(32, "0")[:32],
        "phase_run_id": phase_run,
        "candidate": candidate,
        "status": "done" if done else "skipped",
        "params": {"estimator": candidate, "alpha": 1.0},
        "metrics": {"validation": {"roc_auc": score, "accuracy": 0.5}} if done else {},
        "duration_s": 1.5 if done else None,
        "data_fingerprint": "fp-data",
        "seed": 42,
        "started_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "deployable": done and candidate != "dummy",
        "reason": "no ONNX converter" if candidate == "dummy" else None,
        "onnx_path": None,
    }
    if not done:
        row["reason"] = "time budget of 5s ran out"
    row.update(extra)
    return row


# -- the store, on hand-made rows ------------------------------------------------------------------
def test_store_records_lists_groups_and_compares(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    store = ExperimentStore(ws.state_dir / STORE_FILE)
    assert list_phase_runs(ws) == [] and not (ws.state_dir / STORE_FILE).exists()
    for row in (
        fake_run("aaaa1111", "dummy", 0.5),
        fake_run("aaaa1111", "linear", 0.81, params={"estimator": "linear", "alpha": 0.1}),
        fake_run(
            "aaaa1111",
            "hgb",
            0.86,
            metrics={
                "validation": {"roc_auc": 0.86},
                "cv": {"kind": "stratified", "folds": 3, "scores": [0.85, 0.86, 0.87]},
            },
        ),
        fake_run("bbbb2222", "linear", 0.80, minutes=10),
        fake_run("bbbb2222", "hgb", None, minutes=10),
    ):
        store.record(row)
    store.record_choice("aaaa1111", "hgb", metric="roc_auc", test={"roc_auc": 0.84})

    phase_runs = list_phase_runs(ws)
    assert [p.phase_run_id for p in phase_runs] == ["bbbb2222", "aaaa1111"]  # latest first
    latest, first = phase_runs
    assert [r.candidate for r in first.ranked()] == ["hgb", "linear", "dummy"]
    assert first.chosen is not None and first.chosen.candidate == "hgb" and first.chosen.chosen
    assert first.test == {"roc_auc": 0.84} and first.direction == "maximize"
    assert first.chosen.cv_folds == [
        {"fold": 0, "score": 0.85},
        {"fold": 1, "score": 0.86},
        {"fold": 2, "score": 0.87},
    ]
    assert latest.chosen is None  # no choice recorded, and no model checkpoint to fall back on
    assert [r.status for r in latest.ranked()] == ["done", "skipped"]

    runs = list_runs(ws)
    assert len(runs) == 5 and runs[0].phase_run_id == "bbbb2222"
    assert [r.candidate for r in list_runs(ws, latest_only=True)] == ["hgb", "linear"]
    assert {r.phase_run_id for r in list_runs(ws, phase_run_id="aaaa1111")} == {"aaaa1111"}
    row = runs[-1]
    assert row.package_versions == package_versions()
    assert {"python", "scikit-learn", "duckdb"} <= row.package_versions.keys()
    assert row.recorded_at is not None and row.started_at is not None

    linear_a = next(r for r in runs if r.phase_run_id == "aaaa1111" and r.candidate == "linear")
    hgb_a = first.chosen
    comparison = compare_runs(ws, [linear_a.run_id[:12], hgb_a.run_id])
    assert comparison.metrics["validation.roc_auc"] == [0.81, 0.86]
    assert comparison.params["estimator"] == ["linear", "hgb"]
    assert comparison.differing_params == ["estimator", "alpha"]
    json.dumps(comparison.to_json())  # JSON-able as it is
    with pytest.raises(BadInputError, match="no run with id"):
        compare_runs(ws, ["ffffffff"])
    with pytest.raises(BadInputError, match="ambiguous"):
        compare_runs(ws, ["aaaa"])
    with pytest.raises(ValueError, match="unknown run columns"):
        store.record({**fake_run("cccc", "x", 0.1), "colour": "red"})


def test_a_failed_model_phase_is_shown_on_its_phase_run(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    (tmp_path / "mlwizard.toml").write_text("", encoding="utf-8")
    store = ExperimentStore(ws.state_dir / STORE_FILE)
    store.record(fake_run("aaaa1111", "linear", 0.8))
    store.record(fake_run("bbbb2222", "dummy", 0.5, minutes=10))
    error = "no candidate can be deployed: dummy: done (no ONNX converter)"
    started = (T0 + timedelta(minutes=9)).isoformat()
    ws.write_checkpoint(Checkpoint("model", "failed", {}, "", started_at=started, error=error))
    latest, older = list_phase_runs(ws)
    assert latest.error == error and older.error is None
    result = invoke("-p", tmp_path)
    assert result.exit_code == 0, result.output
    assert "model phase failed: no candidate can be deployed" in result.stdout
    assert "not deployable: dummy" in result.stdout


def test_a_store_from_the_first_release_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / ".mlwizard" / STORE_FILE
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE runs ({ORIGINAL_COLUMNS})")
        con.execute(
            "INSERT INTO runs VALUES ('old00000', 'p0', 'linear', 'done', '{}', "
            "'{\"validation\": {\"roc_auc\": 0.7}}', 1.0, 'fp', 7, ?, true, NULL, NULL)",
            [T0],
        )
    store = ExperimentStore(path)
    assert store.runs()[0]["package_versions"] is None  # old row, new column
    store.record(fake_run("p1", "linear", 0.9, minutes=5))
    rows = store.runs()
    assert [r["phase_run_id"] for r in rows] == ["p0", "p1"]
    assert rows[1]["package_versions"]["python"]
    runs = list_runs(Workspace(tmp_path))
    assert {r.run_id for r in runs} == {"old00000", rows[1]["run_id"]}
    assert next(r for r in runs if r.run_id == "old00000").params == {}


def test_mlflow_configured_but_not_installed_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` finds: nothing
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@127.0.0.1:5000")
    with pytest.raises(BadInputError) as caught:
        ExperimentStore(tmp_path / STORE_FILE)
    message = str(caught.value)
    assert "pip install 'mlwizard[mlflow]'" in message and "\n" not in message
    assert "secret" not in message  # credentials in the URI stay out of messages


def test_a_tracking_failure_keeps_the_run_and_says_so(tmp_path) -> None:
    pytest.importorskip("mlflow")
    store = ExperimentStore(tmp_path / STORE_FILE, tracking_uri="nosuchscheme://nowhere")
    store.record(fake_run("p1", "linear", 0.9))  # MLflow is written to on a thread
    with pytest.raises(TrackingError, match="MLflow tracking at nosuchscheme://nowhere failed"):
        store.flush(timeout=60)
    [row] = store.runs()
    assert row["candidate"] == "linear" and row["mlflow_run_id"] is None
    assert "nosuchscheme" in row["tracking_error"]


# -- a real model phase run, mirrored to a real local MLflow store ---------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, Any]:
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("experiments")
    data = root / "input.csv"
    synthetic_frame(n=300).to_csv(data, index=False)
    ws = Workspace(create_project(root / "project", data=data, target="label"))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    hypotheses.set_pending(ws, HYPOTHESIS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        report = runner.run(ws, ["discovery", "data", "model"], time_budget=60)
    assert report.error is None, report.error
    assert flush_all(timeout=120) is None  # the phase returns before MLflow has every run
    return ws, uri, report.phases["model"].metrics


def test_listing_shows_ids_statuses_and_the_chosen_model(trained) -> None:
    ws, _, metrics = trained
    runs = list_runs(ws)
    assert runs and {r.phase_run_id for r in runs} == {metrics["phase_run_id"]}
    chosen = [r for r in runs if r.chosen]
    assert [r.candidate for r in chosen] == [metrics["best_model"]]

    result = invoke("--project", ws.root)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for run in runs:
        assert run.short_id in text and run.candidate in text
    assert f"★ {metrics['best_model']}" in text and "chosen" in text
    assert "current model" in text and "done" in text
    dummy = next(r for r in runs if r.candidate == "dummy")
    assert not dummy.deployable and dummy.reason and dummy.reason.split()[0] in text

    payload = json.loads(invoke("--project", ws.root, "--json").stdout)
    [phase_run] = payload["phase_runs"]
    assert phase_run["phase_run_id"] == metrics["phase_run_id"] and phase_run["current"]
    assert phase_run["chosen_candidate"] == metrics["best_model"]
    assert phase_run["test"] == metrics["test"]
    # The experiment's hypothesis went in with it; the error analysis proposes the next ones.
    assert phase_run["hypothesis"] == HYPOTHESIS == metrics["hypothesis"]
    assert f"hypothesis: {HYPOTHESIS}" in text
    assert hypotheses.pending(ws) is None  # taken by the run that tested it
    proposals = phase_run["proposals"]
    assert proposals == metrics["proposed_hypotheses"] and proposals
    assert all(p["hypothesis"] and p["evidence"] and p["action"] for p in proposals)
    assert "next hypothesis:" in text
    assert {r["run_id"] for r in phase_run["runs"]} == {r.run_id for r in runs}
    assert all(r["status"] and r["package_versions"] for r in phase_run["runs"])

    ids = [r.short_id for r in runs[:2]]
    compared = invoke("--project", ws.root, *ids)
    assert compared.exit_code == 0, compared.output
    assert all(i in compared.stdout for i in ids) and "validation." in compared.stdout
    comparison = json.loads(invoke("-p", ws.root, "--json", *ids).stdout)["comparison"]
    assert [r["run_id"][:8] for r in comparison["runs"]] == ids

    unknown = invoke("-p", ws.root, "deadbeef")
    assert (
        unknown.exit_code == 2 and "error:" in unknown.stderr and "Traceback" not in unknown.output
    )


def test_run_hypothesis_option_waits_for_the_next_model_run(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame(n=60).to_csv(data, index=False)
    ws = Workspace(create_project(tmp_path / "project", data=data, target="label"))
    from mlwizard.cli.app import app

    result = cli_runner.invoke(
        app, ["run", "--phase", "discovery", "-p", str(ws.root), "--hypothesis", "  more   rows "]
    )
    assert result.exit_code == 0, result.output
    assert hypotheses.pending(ws) == "more rows"  # no model run yet: still pending


def test_proposals_name_slices_features_and_confused_classes() -> None:
    analysis = {
        "worst_slices": [
            {
                "feature": "city",
                "slice": "paris",
                "rows": 40,
                "mean_error": 0.5,
                "overall_mean_error": 0.2,
                "ratio": 2.5,
            }
        ],
        "permutation_importance": {
            "metric": "f1_macro",
            "features": [
                {"feature": "age", "importance": 0.2, "std": 0.01},
                {"feature": "zip", "importance": -0.001, "std": 0.01},
            ],
        },
    }
    validation = {"confusion_matrix": {"labels": ["a", "b"], "matrix": [[8, 2], [0, 10]]}}
    found = hypotheses.propose(analysis, validation, ["city", "age", "zip"])
    kinds = [p["kind"] for p in found]
    assert kinds == ["worst_slice", "important_feature", "unused_features", "confused_classes"]
    assert "paris" in found[0]["hypothesis"] and "2.5x" in found[0]["evidence"]
    assert found[2]["config"] == {"data": {"exclude": ["zip"]}}
    assert "'a'" in found[3]["hypothesis"] and "2 of 10" in found[3]["evidence"]


def test_older_phase_runs_are_listed_after_the_latest(trained, tmp_path) -> None:
    ws, _, metrics = trained
    store = ExperimentStore(ws.state_dir / STORE_FILE, tracking_uri=None)
    assert store.tracker is None  # the fixture's MLFLOW_TRACKING_URI is gone
    store.record(fake_run("0ld0ld00", "linear", 0.7, minutes=-60 * 24))
    try:
        payload = json.loads(invoke("-p", ws.root, "--json").stdout)
        assert [p["phase_run_id"] for p in payload["phase_runs"]] == [
            metrics["phase_run_id"],
            "0ld0ld00",
        ]
        assert payload["phase_runs"][1]["chosen_candidate"] is None
        text = invoke("-p", ws.root, "--limit", "1").stdout
        assert "1 older phase run(s) not shown" in text
    finally:
        with duckdb.connect(str(ws.state_dir / STORE_FILE)) as con:
            con.execute("DELETE FROM runs WHERE phase_run_id = '0ld0ld00'")


def test_runs_are_mirrored_to_mlflow_with_their_onnx_models(trained) -> None:
    import mlflow
    from mlflow import MlflowClient

    ws, uri, metrics = trained
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(ws.root.name)
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id])
    runs = {r.run_id: r for r in list_runs(ws)}
    assert {m.info.run_id for m in found} == {r.mlflow_run_id for r in runs.values()}
    assert all(r.tracking_error is None for r in runs.values())

    mlflow.set_tracking_uri(uri)
    frame = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    assert len(frame) == len(runs)

    for logged in found:
        run = next(r for r in runs.values() if r.mlflow_run_id == logged.info.run_id)
        tags, data = logged.data.tags, logged.data
        assert tags["candidate"] == run.candidate and tags["status"] == run.status
        assert tags["deployable"] == str(bool(run.deployable)).lower()
        assert tags["data_fingerprint"] == run.data_fingerprint and tags["seed"] == str(run.seed)
        assert tags["mlwizard.run_id"] == run.run_id
        assert logged.info.run_name == run.candidate
        assert logged.info.status == STATUS[run.status]
        assert tags.get("reason") == run.reason
        assert data.params["estimator"] == str(run.params["estimator"])
        for name, value in run.validation.items():
            if isinstance(value, float) and math.isfinite(value):
                assert data.metrics[f"validation.{name}"] == pytest.approx(value)
        artifacts = {a.path for a in client.list_artifacts(logged.info.run_id, "model")}
        if run.deployable:
            assert run.onnx_path is not None
            name = Path(run.onnx_path).name
            assert artifacts == {f"model/{name}"}
            local = client.download_artifacts(logged.info.run_id, f"model/{name}")
            assert Path(local).read_bytes() == (ws.root / run.onnx_path).read_bytes()
        else:
            assert artifacts == set()

    best = next(r for r in runs.values() if r.chosen)
    store = ExperimentStore(ws.state_dir / STORE_FILE, tracking_uri=uri)
    store.record_choice(
        metrics["phase_run_id"], best.candidate, metric=metrics["metric"], test=metrics["test"]
    )
    store.flush(timeout=60)
    chosen = client.get_run(best.mlflow_run_id)
    assert chosen.data.tags["mlwizard.chosen"] == "true"
    metric = metrics["metric"]
    assert chosen.data.metrics[f"test.{metric}"] == pytest.approx(metrics["test"][metric])


def test_listing_an_empty_project_and_a_missing_one(tmp_path) -> None:
    ws = Workspace(create_project(tmp_path / "empty"))
    result = invoke("-p", ws.root)
    assert result.exit_code == 0 and "No model runs yet" in result.stdout
    assert json.loads(invoke("-p", ws.root, "--json").stdout)["phase_runs"] == []
    missing = invoke("-p", tmp_path / "nowhere")
    assert missing.exit_code == 2 and "not an mlwizard project" in missing.stderr
