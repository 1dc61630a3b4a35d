"""Operations on real penguins projects: monitor, the registry, the retrain gate, rollback, shadow.

Every project really runs its phases (two candidates, one tuning trial each); monitor and retrain
go through the CLI, so the exit codes are the ones a scheduler sees.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers.deploy import running_service
from mlwizard.cli import app
from mlwizard.core import runner
from mlwizard.core.data import phase as data_phase
from mlwizard.core.deploy import bundle
from mlwizard.core.deploy import phase as deploy_phase
from mlwizard.core.kernel.config import Config, DeploySection, update_config_file
from mlwizard.core.kernel.events import Event, EventSink, StepProgress, ignore
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.model import session as model_session
from mlwizard.core.model.session import TRIALS_ENV
from mlwizard.core.operations import phase as ops_phase
from mlwizard.core.operations.registry import Registry, tree_hash
from mlwizard.core.scaffold import create_project

QUICK_MODEL = {"candidates": ["dummy", "linear"], "time_budget": 90, "workers": 1}
cli = CliRunner()


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(Path(str(resources.files("mlwizard.datasets") / "penguins.csv")))


@pytest.fixture(scope="module")
def quick_training() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TRIALS_ENV, "1")
        yield


def build(root: Path, frame: pd.DataFrame, emit: EventSink = ignore) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    source = root / "penguins.csv"
    frame.to_csv(source, index=False)
    ws = Workspace(create_project(root / "project", data=source, target="sex"))
    update_config_file(ws.config_path, {"model": QUICK_MODEL})
    report = runner.run(ws, runner.PHASE_NAMES, emit=emit)
    assert report.error is None, report.error
    return ws


def invoke(*args: str | Path):
    return cli.invoke(app, [str(a) for a in args])


def inverted(frame: pd.DataFrame) -> pd.DataFrame:
    """The labels of one species swapped: a worse world to learn from than the real one."""
    worse = frame.copy()
    adelie = worse["species"] == "Adelie"
    worse.loc[adelie, "sex"] = worse.loc[adelie, "sex"].map({"male": "female", "female": "male"})
    return worse


@pytest.fixture(scope="module")
def weak(penguins: pd.DataFrame) -> pd.DataFrame:
    return inverted(penguins)


@pytest.fixture(scope="module")
def run_events() -> list[Event]:
    """Every event the `project` fixture's run emitted, in order."""
    return []


@pytest.fixture(scope="module")
def project(tmp_path_factory, weak, quick_training, run_events) -> Workspace:
    """A project whose champion learnt from the swapped labels (the retrain test improves it)."""
    return build(tmp_path_factory.mktemp("ops") / "weak", weak, emit=run_events.append)


@pytest.mark.parametrize(
    ("phase", "steps"),
    [
        ("data", data_phase.STEPS),
        ("model", model_session.STEPS),
        ("deploy", deploy_phase.STEPS),
        ("operations", ops_phase.STEPS),
    ],
)
def test_each_long_phase_reports_its_steps_in_order(
    project: Workspace, run_events: list[Event], phase: str, steps: tuple[str, ...]
) -> None:
    """Issue 13, item 5: the shells can show where a phase is (the run of `project`)."""
    mine = [e for e in run_events if e.phase == phase]
    kinds = [e.kind for e in mine]
    assert kinds[0] == "phase_started" and kinds[-1] == "phase_finished"
    reported = [
        (e.payload.done, e.payload.total, e.payload.label)
        for e in mine
        if isinstance(e.payload, StepProgress) and e.payload.is_phase_step
    ]
    n = len(steps)
    assert reported == [(i, n, name) for i, name in enumerate(steps)] + [(n, n, "")]


def test_the_phase_registers_the_champion_with_its_reference(project: Workspace) -> None:
    registry = Registry(project.root)
    assert registry.champion() == 1
    manifest = registry.manifest(1)
    assert manifest["model"] == "linear" and manifest["data_version"]
    assert manifest["bundle_sha256"] == tree_hash(project.artifact_dir("deploy") / "service")
    reference = registry.reference(1)
    assert set(reference["features"]) >= {"body_mass_g", "island"}
    assert reference["prediction"]["kind"] == "categorical"
    assert reference["performance"]["overall"]["value"] > 0.5  # roc_auc on the test split
    metrics = project.read_checkpoint("operations").metrics
    assert metrics["advice"]["retrain"] is False and metrics["advice"]["reasons"]
    docs = project.artifact_dir("operations")
    assert "mlwizard rollback" in (docs / "incident-response.md").read_text()
    runbook = (docs / "runbook.md").read_text()
    assert "version 1 (linear)" in runbook and "roc_auc" in runbook
    cron = (docs / "schedule" / "crontab").read_text()
    assert cron.splitlines()[-1].startswith("0 6 * * 1 ")
    import yaml

    workflow = yaml.safe_load((docs / "schedule" / "github-actions.yml").read_text())
    assert workflow[True]["schedule"][0]["cron"] == "0 6 * * 1"  # YAML reads `on` as True
    timer = next((docs / "schedule").glob("*.timer")).read_text()
    assert "OnCalendar=Mon *-*-* 06:00:00" in timer


def test_monitor_names_the_shifted_columns_and_passes_a_clean_resample(
    project: Workspace, weak: pd.DataFrame, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    drifted = weak.copy()
    drifted["body_mass_g"] += 900  # a shifted numeric
    drifted.loc[rng.random(len(drifted)) < 0.3, "island"] = "Anvers"  # a new category
    drifted.loc[rng.random(len(drifted)) < 0.4, "bill_length_mm"] = np.nan  # missing rate
    drifted.to_csv(tmp_path / "drifted.csv", index=False)
    resample = weak.sample(len(weak), replace=True, random_state=1)
    resample.to_csv(tmp_path / "clean.csv", index=False)
    prom = tmp_path / "drift.prom"
    result = invoke(
        "monitor", tmp_path / "drifted.csv", "-p", project.root, "--json", "--prometheus", prom
    )
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "drift"
    assert set(report["drifted"]) == {"body_mass_g", "island", "bill_length_mm"}
    assert report["features"]["island"]["new_categories"]["examples"] == ["Anvers"]
    assert report["features"]["bill_length_mm"]["missing_rate"]["level"] == "major"
    assert report["advice"]["retrain"] is True
    assert 'mlwizard_monitor_drift{service="project"} 1' in prom.read_text()
    page = Path(report["reports"]["html"]).read_text()
    assert "body_mass_g" in page and "<script" not in page and "http" not in page

    result = invoke("monitor", tmp_path / "clean.csv", "-p", project.root, "--labels", "sex")
    assert result.exit_code == 0, result.output
    latest = json.loads((project.artifact_dir("operations") / "monitor/latest.json").read_text())
    assert latest["status"] == "healthy" and latest["drifted"] == []
    assert latest["performance"]["overall"]["degraded"] is False
    assert latest["performance"]["labelled_rows"] == resample["sex"].notna().sum()


def test_monitor_bad_input_exits_2_with_one_line(project: Workspace, tmp_path: Path) -> None:
    pd.DataFrame({"island": ["Dream"]}).to_csv(tmp_path / "few.csv", index=False)
    result = invoke("monitor", tmp_path / "few.csv", "-p", project.root)
    assert result.exit_code == 2
    assert "missing feature column(s)" in result.stderr and "Traceback" not in result.output
    result = invoke("monitor", tmp_path / "nothing-*.csv", "-p", project.root)
    assert result.exit_code == 2 and "no files match" in result.stderr


def test_retrain_gate_and_rollback(
    project: Workspace, penguins: pd.DataFrame, tmp_path: Path
) -> None:
    ws = project
    first_bundle = tmp_path / "v1-bundle"
    shutil.copytree(ws.artifact_dir("deploy") / "service", first_bundle)

    shuffled = penguins.copy()
    shuffled["sex"] = shuffled["sex"].sample(frac=1, random_state=3).to_numpy()
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    result = invoke("retrain", "--data", tmp_path / "shuffled.csv", "-p", ws.root, "--json")
    assert result.exit_code == 0, result.output
    kept = json.loads(result.stdout)
    assert kept["promoted"] is False and kept["reason"].startswith("kept the champion")
    registry = Registry(ws.root)
    assert registry.champion() == 1
    assert registry.history()[-1]["event"] == "kept"

    penguins.to_csv(tmp_path / "better.csv", index=False)
    result = invoke("retrain", "--data", tmp_path / "better.csv", "-p", ws.root, "--json")
    promoted = json.loads(result.stdout)
    assert promoted["promoted"] is True, promoted["reason"]
    assert promoted["decision"]["challenger"] > promoted["decision"]["champion"]
    assert promoted["decision"]["interval_low"] > 0
    assert registry.champion() == promoted["challenger"]
    assert (
        tree_hash(registry.serving_dir)
        == registry.manifest(promoted["challenger"])["bundle_sha256"]
    )
    listing = json.loads(invoke("models", "-p", ws.root, "--json").stdout)
    assert listing["champion"] == promoted["challenger"]
    assert [v["version"] for v in listing["versions"]] == [1, 2, 3]
    assert "Model registry" in invoke("models", "-p", ws.root).stdout

    result = invoke("rollback", "1", "-p", ws.root)
    assert result.exit_code == 0, result.output
    assert registry.champion() == 1
    comparison = filecmp.dircmp(first_bundle, registry.serving_dir)
    assert not comparison.left_only and not comparison.right_only
    for name in comparison.common_files:
        assert (first_bundle / name).read_bytes() == (registry.serving_dir / name).read_bytes()
    assert tree_hash(first_bundle) == tree_hash(registry.serving_dir)

    # The real service in shadow mode: v1 answers, the better v3 is logged; judged on labels.
    challenger = promoted["challenger"]
    shadow_bundle = bundle.write_bundle(
        ws,
        registry.bundle_dir(1) / "models" / "champion",
        registry.bundle_dir(challenger) / "models" / "champion",
        target=tmp_path / "shadow-bundle",
        config=Config(deploy=DeploySection(shadow=True)),
    )
    rows = penguins.dropna(subset=["sex"]).sample(120, random_state=5)
    features = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in rows.drop(columns=["sex"]).to_dict("records")
    ]
    log = tmp_path / "predictions.ndjson"
    env = {"PREDICTION_LOG": str(log)}
    with running_service(shadow_bundle, tmp_path / "uvicorn.log", env=env) as url:
        for i, row in enumerate(features):
            answer = httpx.post(
                f"{url}/predict", json={"rows": [row]}, headers={"X-Request-ID": f"r{i}"}
            )
            assert answer.status_code == 200 and answer.json()["model"] == "champion"
        for _ in range(200):  # the log is written after each answer: wait for it, bounded
            if log.exists() and len(log.read_text().splitlines()) >= 2 * len(features):
                break
            time.sleep(0.05)
    labels = tmp_path / "labels.csv"
    ids = [f"r{i}" for i in range(len(rows))]
    pd.DataFrame({"request_id": ids, "sex": rows["sex"].to_numpy()}).to_csv(labels, index=False)
    result = invoke("monitor", log, "-p", ws.root, "--shadow", labels, "--json")
    assert result.exit_code == 0, result.output
    shadow = json.loads(result.stdout)
    assert shadow["labelled_pairs"] == 120 and shadow["served"] == {
        "champion": 120,
        "challenger": 0,
    }
    assert shadow["decision"]["promote"] is True, shadow["decision"]["reason"]
    result = invoke("monitor", log, "-p", ws.root, "--labels", labels, "--json")
    assert result.exit_code in (0, 3), result.output
    monitored = json.loads(result.stdout)
    assert monitored["rows"] == 120 and monitored["performance"]["labelled_rows"] == 120
