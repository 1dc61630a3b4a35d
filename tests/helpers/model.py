"""Projects for the model phase's tests.

`fake_project`: the discovery and data phases are stood in for by checkpoints over real split
files (fast: no data phase). `real_project`: a scaffolded project on a CSV whose discovery and data
phases really ran, for tests that go through `runner.run_phase` or the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core import runner
from mlwizard.core.contract.schema import Feature, Schema, input_names
from mlwizard.core.contract.tasks import METRICS
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import (
    Config,
    DiscoverySection,
    ModelSection,
    ProjectSection,
    SplitSection,
    update_config_file,
)
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.model.candidates import FAMILIES
from mlwizard.core.scaffold import create_project

FEATURES = {
    "age years": "numeric",
    "income": "numeric",
    "visits": "numeric",
    "city": "categorical",
    "plan": "categorical",
}
ALL_CANDIDATES = tuple(FAMILIES)  # every registered family, in the registry's order
CLASSES = {"binary": ["churn", "stay"], "multiclass": ["high", "low", "mid"]}
SPLIT_ROWS = (600, 250, 250)


def table(task: str, rows: int, rng: np.random.Generator, unseen: bool) -> pd.DataFrame:
    """Features with NaN and null categories; `unseen` adds categories training never saw."""
    age = rng.normal(40, 12, rows)
    income = rng.lognormal(10, 0.5, rows)
    visits = rng.integers(0, 30, rows)
    city = rng.choice(np.array(["paris", "lyon", "nice", "lille"]), rows).astype(object)
    plan_ = rng.choice(np.array(["free", "pro", "team"]), rows).astype(object)
    signal = 0.08 * (age - 40) + 1.5 * (city == "paris") - 1.0 * (plan_ == "free") + visits / 15
    age[rng.random(rows) < 0.1] = np.nan
    income[rng.random(rows) < 0.1] = np.nan
    city[rng.random(rows) < 0.1] = None
    if unseen:
        city[rng.random(rows) < 0.1] = "marseille"
        plan_[rng.random(rows) < 0.05] = "enterprise"
    if task == "binary":
        target: Any = np.where(rng.random(rows) < 1 / (1 + np.exp(-(signal - 1))), "churn", "stay")
    elif task == "multiclass":
        target = np.digitize(signal + rng.normal(0, 0.5, rows), [0.3, 1.3]).astype(np.int64)
        target = np.array(["low", "mid", "high"], dtype=object)[target]
    else:
        target = 20 * signal + rng.normal(0, 2, rows)
    visits_nullable = pd.array(visits, dtype="Int64")
    visits_nullable[rng.random(rows) < 0.05] = pd.NA  # a BIGINT column with nulls
    return pd.DataFrame(
        {
            "age years": age,
            "income": income,
            "visits": visits_nullable,
            "city": city,
            "plan": plan_,
            "target": target,
        }
    )


def make_schema(task: str, features: dict[str, str] = FEATURES) -> Schema:
    columns = list(features)
    inputs = input_names(columns)
    kinds = [Feature(c, features[c], i) for c, i in zip(columns, inputs, strict=True)]  # type: ignore[arg-type]
    return Schema("target", task, kinds, CLASSES.get(task))  # type: ignore[arg-type]


def fake_project(
    root: Path,
    task: str,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    seed: int = 7,
    time_budget: float = 300.0,
    candidates: tuple[str, ...] = ALL_CANDIDATES,
    workers: int = 2,
    split: SplitSection | None = None,
    discovery: DiscoverySection | None = None,
    extra_columns: Any = None,  # (table, rng) -> {column: values}, not features
    extra_features: Any = None,  # (table, rng) -> {column: numeric values}, features
    rows: tuple[int, int, int] = SPLIT_ROWS,
) -> tuple[PhaseContext, list[ev.Event]]:
    """A project whose discovery and data phases are faked by checkpoints over real files."""
    rng = np.random.default_rng(0)
    data_dir = root / "artifacts" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    features = dict(FEATURES)
    outputs = {}
    for name, count, unseen in zip(
        ("train", "valid", "test"), rows, (False, True, True), strict=True
    ):
        part = table(task, count, rng, unseen)
        for maker in (extra_columns, extra_features):
            if maker is not None:
                for column, values in maker(part, rng).items():
                    part[column] = values
                    if maker is extra_features:
                        features[column] = "numeric"
        path = data_dir / f"{name}.parquet"
        part.to_parquet(path, index=False)
        outputs[name] = str(path.relative_to(root))
    make_schema(task, features).save(data_dir / "schema.json")
    outputs["schema"] = "artifacts/data/schema.json"

    metric = metric or {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "r2"}[task]
    found = Checkpoint(
        "discovery",
        "done",
        {},
        "fp-discovery",
        metrics={
            "task": task,
            "metric": metric,
            "metric_direction": METRICS[task][metric],  # type: ignore[index]
            "success_threshold": threshold,
        },
    )
    split = split or SplitSection()
    data = Checkpoint(
        "data",
        "done",
        {},
        f"fp-data-{task}",
        outputs=outputs,
        metrics={"split_strategy": split.strategy if task != "regression" else "random"},
    )
    config = Config(
        project=ProjectSection(seed=seed),
        discovery=discovery or DiscoverySection(),
        split=split,
        model=ModelSection(candidates=candidates, workers=workers, time_budget=time_budget),
    )
    events: list[ev.Event] = []
    ctx = PhaseContext(
        "model", Workspace(root), config, {"discovery": found, "data": data}, emit=events.append
    )
    return ctx, events


def wide_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A binary table with enough signal and columns that tuning everything takes a while."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["shop"] = rng.choice([f"s{i}" for i in range(30)], rows)
    frame["kind"] = rng.choice(np.array(["a", "b", "c", None], dtype=object), rows)
    shop = frame["shop"].str[1:].astype(int)
    signal = frame.x0 + np.sin(2 * frame.x1) + 0.5 * frame.x2 * frame.x3 + (shop % 3 == 0)
    frame.loc[rng.random(rows) < 0.1, "x1"] = np.nan
    frame["label"] = np.where(signal + rng.normal(0, 0.7, rows) > 0.5, "yes", "no")
    return frame


def real_project(
    root: Path, frame: pd.DataFrame, model: dict[str, Any], target: str = "label"
) -> Workspace:
    """A scaffolded project with its discovery and data phases run for real."""
    root.mkdir(parents=True, exist_ok=True)
    source = root / "input.csv"
    frame.to_csv(source, index=False)
    ws = Workspace(create_project(root / "project", data=source, target=target))
    update_config_file(ws.config_path, {"model": model})
    runner.run_phase(ws, "discovery")
    runner.run_phase(ws, "data")
    return ws
