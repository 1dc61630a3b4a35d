"""Tree thresholds aligned to float32, edge rows that test them, parity on every split, and ONNX
bytes that are identical for identical models (issues 9 and 13)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from helpers.model import make_schema
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export import trees
from mlwizard.core.export.onnx_export import export_pipeline
from mlwizard.core.export.parity import check_export, check_parity, merge
from mlwizard.core.model import candidates, fitting

FEATURES = {"x": "numeric", "noise": "numeric"}


def _adjacent_table(rows: int = 400) -> pd.DataFrame:
    """Values on two adjacent float32s, a and b, whose midpoint rounds up to b (a has an odd
    mantissa): the class is decided exactly between them."""
    a = np.nextafter(np.float32(1.0), np.float32(2.0))  # odd mantissa
    b = np.nextafter(a, np.float32(2.0))
    rng = np.random.default_rng(0)
    x = np.where(rng.random(rows) < 0.5, a, b).astype(np.float64)
    return pd.DataFrame(
        {"x": x, "noise": rng.normal(size=rows), "target": np.where(x > a, "yes", "no")}
    )


def _fitted(name: str, frame: pd.DataFrame, align: bool) -> tuple[Any, Schema, pd.DataFrame]:
    schema = dataclasses.replace(make_schema("binary", FEATURES), classes=["no", "yes"])
    x, y = feature_frame(frame, schema), target_vector(frame, schema)
    params = {"n_estimators": 5} if name in candidates.FORESTS else {}
    pipeline = candidates.build(name, schema, 0, params)
    fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=time.monotonic() + 60)
    if align:
        trees.align_thresholds(pipeline)
    return pipeline, schema, x


def test_a_threshold_rounded_onto_a_value_is_caught_and_aligning_fixes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = _adjacent_table()
    # Without alignment (export would align: switch it off to see the raw conversion).
    monkeypatch.setattr(trees, "align_thresholds", lambda p: p)
    pipeline, schema, x = _fitted("hist_gradient_boosting", frame, align=False)
    before = pipeline.predict_proba(x)
    model = export_pipeline(pipeline, schema, x)
    raw = check_parity(pipeline, model, x, schema)
    assert not raw.ok and raw.label_agreement is not None and raw.label_agreement < 1.0
    monkeypatch.undo()

    trees.align_thresholds(pipeline)
    assert np.array_equal(pipeline.predict_proba(x), before)  # same predictions on float32
    model = export_pipeline(pipeline, schema, x)
    parity = check_export(pipeline, model, {"train": x}, schema)
    assert parity.ok and parity.label_agreement == 1.0, parity
    assert set(parity.splits) == {"train", "edges"}


def test_edge_rows_sit_on_both_sides_of_every_threshold() -> None:
    pipeline, schema, x = _fitted("random_forest", _adjacent_table(), align=False)
    before = pipeline.predict_proba(x)
    trees.align_thresholds(pipeline)
    assert np.array_equal(pipeline.predict_proba(x), before)  # forests too: same predictions
    found = trees.thresholds_by_input(pipeline)
    assert set(found) <= {f.input for f in schema.numeric} and found
    edges = trees.edge_rows(pipeline, schema, x.head(5))
    column = next(iter(found))
    values = set(edges[column].to_numpy(dtype=np.float32).tolist())
    for t in found[column].astype(np.float32):
        assert float(t) in values and float(np.nextafter(t, np.float32(np.inf))) in values


def test_merged_parity_names_the_split_that_differs() -> None:
    pipeline, schema, x = _fitted("linear", _adjacent_table(100), align=True)
    good = check_parity(pipeline, export_pipeline(pipeline, schema, x), x, schema)
    bad = type(good)(10, 0.5, good.tolerance, 0.8)
    merged = merge({"train": good, "test": bad})
    assert not merged.ok and merged.worst_split == "test" and "test rows" in merged.reason
    assert merged.rows == good.rows + 10 and merged.to_dict()["splits"]["test"] == 0.5


@pytest.mark.parametrize("name", ["hist_gradient_boosting", "linear"])
def test_identical_models_give_identical_onnx_bytes(name: str) -> None:
    frame = _adjacent_table(200)
    first, schema, x = _fitted(name, frame, align=True)
    second, _, _ = _fitted(name, frame, align=True)
    data = export_pipeline(first, schema, x)
    assert data == export_pipeline(second, schema, x)
    # The opsets in one order whatever the converter listed first (it varied between processes).
    opsets = [(o.domain, o.version) for o in onnx.load_from_string(data).opset_import]
    assert opsets == sorted(opsets) and {d for d, _ in opsets} >= {"", "ai.onnx.ml"}
