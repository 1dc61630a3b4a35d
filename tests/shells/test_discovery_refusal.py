"""Reinforcement learning declined honestly by the CLI; no target names the other approaches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlwizard.cli import app
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.scaffold import create_project

RL_PROBLEM = "We want an agent that learns a pricing policy to maximize long-term reward."


@pytest.fixture
def project(tmp_path: Path) -> Path:
    source = tmp_path / "logged.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"state": rng.normal(size=40), "action": rng.choice(["a", "b"], 40)}).to_csv(
        source, index=False
    )
    return create_project(tmp_path / "project", data=source, target="action")


@pytest.mark.parametrize(
    "discovery",
    [
        {"problem": RL_PROBLEM},
        {"approach": "reinforcement_learning"},
    ],
)
def test_cli_declines_reinforcement_learning_in_one_line(project: Path, discovery: dict) -> None:
    update_config_file(project / "mlwizard.toml", {"discovery": discovery})
    result = CliRunner().invoke(app, ["run", "--phase", "discovery", "-p", str(project)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    line = errors[0]
    assert "reinforcement learning, which mlwizard does not do" in line
    assert "Stable-Baselines3" in line  # what to use instead
    assert "classifier of the next action" in line  # the closest framing it supports
    assert not (project / "artifacts" / "discovery" / "discovery.json").exists()


def test_no_target_names_the_unsupervised_approaches(tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    pd.DataFrame({"a": range(20), "b": range(20)}).to_csv(source, index=False)
    root = create_project(tmp_path / "p", data=source)
    result = CliRunner().invoke(app, ["run", "--phase", "discovery", "-p", str(root)])
    assert result.exit_code == 2
    assert '"clustering"' in result.stderr and '"anomaly"' in result.stderr
