"""Shared fixtures: real files in temporary folders, no developer settings leaking in."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwizard.core.scaffold import create_project
from mlwizard.core.workspace import Workspace


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLWIZARD_PROJECT", "MLWIZARD_DEBUG", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def demo_csv() -> Path:
    return Path(str(resources.files("mlwizard.datasets") / "penguins.csv"))


def synthetic_frame(n: int = 400, seed: int = 0, task: str = "binary") -> pd.DataFrame:
    """Numerics with NaN, a string categorical with nulls, and a target that depends on both."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    signal = x1 + 0.3 * x2 + np.where(colour == "red", 1.5, 0.0) + rng.normal(scale=0.5, size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour})
    frame.loc[rng.random(n) < 0.1, "x1"] = np.nan
    frame.loc[rng.random(n) < 0.08, "colour"] = None
    if task == "binary":
        frame["label"] = np.where(signal > np.median(signal), "yes", "no")
    elif task == "multiclass":
        frame["label"] = pd.cut(signal, 3, labels=["low", "mid", "high"]).astype(str)
    else:
        frame["label"] = signal * 10
    return frame


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
