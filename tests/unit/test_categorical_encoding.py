"""The tree families' `encoding` search setting: every categorical target-encoded instead of
ordinal codes, exported inside the ONNX graph with parity in every supervised task, searched
only where there are categoricals, recorded in the manifest and rebuilt by `reproduce`."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers.frames import EFFECT_CLASSES, category_effect_frame
from helpers.model import real_project, wide_frame
from mlwizard.cli.app import app
from mlwizard.core import runner
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.export.onnx_export import export_pipeline
from mlwizard.core.export.parity import check_export
from mlwizard.core.model import candidates, cardinality, fitting
from mlwizard.core.model.session import TRIALS_ENV

TARGET = {candidates.ENCODING_PARAM: "target"}


def _table(rows: int, seed: int, task: str) -> pd.DataFrame:
    """Two low-cardinality categoricals (3 and 20 values) whose codes carry no order."""
    return category_effect_frame(rows, seed, task, "area", 20)


def _schema(task: str) -> Schema:
    features = [
        Feature("a", "numeric", "f000_a"),
        Feature("shop", "categorical", "f001_shop"),
        Feature("area", "categorical", "f002_area"),
    ]
    return Schema("t", task, features, EFFECT_CLASSES.get(task))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("task", "name", "scale"),
    [
        ("binary", "hist_gradient_boosting", None),
        ("multiclass", "catboost", None),
        ("regression", "extra_trees", None),
        ("regression", "hist_gradient_boosting", "log"),
    ],
)
def test_target_encoding_every_categorical_exports_with_parity(
    task: str, name: str, scale: str | None
) -> None:
    schema = _schema(task)
    train = _table(800, 0, task)
    if scale:  # a positive, skewed target for the log scale
        train["t"] = np.exp(train["t"] / 100)
    x, y = feature_frame(train, schema), target_vector(train, schema)
    params: dict[str, Any] = dict(TARGET)
    if scale:
        params[candidates.TARGET_PARAM] = scale
    pipeline = candidates.build(name, schema, 0, params, 1, rows=len(x))
    family = candidates.FAMILIES[name]
    fitting.fit(pipeline, family, x, y, seed=0, deadline=time.monotonic() + 60)
    assert cardinality.encoded(pipeline) == ["f001_shop", "f002_area"]
    unseen = _table(200, 1, task)
    unseen.loc[::7, "area"] = "an area never seen"
    splits = {"train": x, "unseen": feature_frame(unseen, schema)}
    parity = check_export(pipeline, export_pipeline(pipeline, schema, x), splits, schema)
    assert parity.ok, parity
    # The default keeps ordinal codes for these columns.
    default = candidates.build(name, schema, 0, {}, 1, rows=len(x))
    fitting.fit(default, family, x, y, seed=0, deadline=time.monotonic() + 60)
    assert cardinality.encoded(default) == []


def test_the_encoding_is_searched_only_by_tree_families_on_tables_with_categoricals() -> None:
    for name in candidates.ENCODED_FAMILIES:
        configs = candidates.sample_params(name, "binary", 0, 8, categorical=True)
        assert configs[:2] == [{}, TARGET]
        drawn = {c.get(candidates.ENCODING_PARAM) for c in configs[2:]}
        assert drawn == {None, "target"}, configs
        plain = candidates.sample_params(name, "binary", 0, 8, categorical=False)
        assert all(candidates.ENCODING_PARAM not in c for c in plain)
    linear = candidates.sample_params("linear", "binary", 0, 8, categorical=True)
    assert all(candidates.ENCODING_PARAM not in c for c in linear)


def test_the_chosen_encoding_is_recorded_and_reproduced(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRIALS_ENV, "2")  # the defaults, then every categorical target-encoded
    ws = real_project(tmp_path, wide_frame(1200), {"candidates": ["extra_trees"], "workers": 1})
    runner.run_phase(ws, "model", time_budget=60)
    manifest = json.loads((ws.root / "artifacts" / "model" / "manifest.json").read_text())
    (entry,) = [e for e in manifest["plan"] if e["candidate"] == "extra_trees"]
    # Tried in this order (a machine too busy for the budget may stop after the defaults).
    tried = [t["params"] for t in entry["trials"]]
    assert tried and tried == [{}, TARGET][: len(tried)]
    assert entry["recipe"]["params"] in tried  # whichever the cross-validation preferred
    done = CliRunner().invoke(app, ["reproduce", "-p", str(ws.root)])
    assert done.exit_code == 0, done.output
    assert "chosen run (fitted on train): ONNX bytes identical" in done.output
