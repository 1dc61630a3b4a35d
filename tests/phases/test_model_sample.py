"""A training split larger than the cap: candidates train on a seeded, stratified sample drawn
by DuckDB, while validation and test use every row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.model import fake_project
from mlwizard.core.model import phase as model
from mlwizard.core.model import sampling
from mlwizard.core.model.session import TRIALS_ENV


def test_a_large_split_trains_on_a_stratified_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "1")
    monkeypatch.setenv(sampling.MAX_ROWS_ENV, "200")
    ctx, events = fake_project(tmp_path, "binary", candidates=("dummy", "linear"), workers=1)
    result = model.run(ctx)
    drawn = result.metrics["training_sample"]
    assert drawn["of_rows"] == 600 and drawn["cap"] == 200 and 200 <= drawn["rows"] <= 202
    assert f"{sampling.MAX_ROWS_ENV}=200" in drawn["reason"]
    said = [e.message for e in events if "seeded sample" in e.message]
    assert said and "validation, test and drift use every row" in said[0]

    full = pd.read_parquet(ctx.upstream_artifact("data", "train"))
    sample = pd.read_parquet(ctx.workspace.artifact_dir("model") / "train-sample.parquet")
    assert list(sample.columns) == list(full.columns)
    shares = full["target"].value_counts(normalize=True)
    assert (sample["target"].value_counts(normalize=True) - shares).abs().max() < 0.01
    assert sample.merge(full, how="left", indicator=True)["_merge"].eq("both").all()
    # Every validation and test row is still scored.
    board_rows = {c["name"]: c for c in result.metrics["candidates"]}
    assert board_rows["linear"]["status"] == "done"


def test_the_sample_is_a_function_of_the_seed(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(5000), "y": ["a"] * 4000 + ["b"] * 1000})
    source = tmp_path / "train.parquet"
    frame.to_parquet(source, index=False)

    def draw(seed: int, name: str) -> pd.DataFrame:
        out = tmp_path / name
        sampling.draw(source, out, cap=500, reason="test", seed=seed, target="y", stratify=True)
        return pd.read_parquet(out)

    first, again, other = draw(1, "a.parquet"), draw(1, "b.parquet"), draw(2, "c.parquet")
    assert first.equals(again) and not first.equals(other)
    assert first["y"].value_counts().to_dict() == {"a": 400, "b": 100}
    assert first["x"].is_monotonic_increasing  # rows keep their order
    assert (
        sampling.draw(
            source, tmp_path / "d.parquet", cap=9000, reason="", seed=1, target="y", stratify=True
        )
        is None
    )  # it fits: no sample
