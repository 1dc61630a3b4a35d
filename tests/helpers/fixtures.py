"""Fixtures every level shares: real files in temporary folders, no developer settings."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.scaffold import create_project


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLWIZARD_PROJECT", "MLWIZARD_DEBUG", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def demo_csv() -> Path:
    return Path(str(resources.files("mlwizard.datasets") / "penguins.csv"))


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Workspace]:
    """A scaffolded project on a CSV made from a frame (or on a copy of a file)."""

    def make(data: pd.DataFrame | Path, target: str = "label", name: str = "project") -> Workspace:
        source = tmp_path / f"{name}-input.csv"
        if isinstance(data, Path):
            source = tmp_path / data.name
            shutil.copyfile(data, source)
        else:
            data.to_csv(source, index=False)
        return Workspace(create_project(tmp_path / name, data=source, target=target))

    return make
