"""High-cardinality categoricals: target-encoded inside the pipeline (and so inside every CV
fold), exported inside the ONNX graph with parity; low-cardinality ones keep their encoders."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from helpers.frames import EFFECT_CLASSES, category_effect_frame
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.export import target_encoding
from mlwizard.core.export.onnx_export import export_pipeline, make_session
from mlwizard.core.export.parity import check_export
from mlwizard.core.model import candidates, cardinality, fitting

CITIES = 300


def _table(rows: int, seed: int, task: str, unseen: bool = False) -> pd.DataFrame:
    """A city (300 values) carries most of the signal, through a fixed effect per city."""
    never_seen = "a city never seen" if unseen else None
    return category_effect_frame(rows, seed, task, "city", CITIES, never_seen)


def _schema(task: str) -> Schema:
    features = [
        Feature("a", "numeric", "f000_a"),
        Feature("shop", "categorical", "f001_shop"),
        Feature("city", "categorical", "f002_city"),
    ]
    return Schema("t", task, features, EFFECT_CLASSES.get(task))  # type: ignore[arg-type]


def _fitted(name: str, schema: Schema, table: pd.DataFrame) -> Any:
    x, y = feature_frame(table, schema), target_vector(table, schema)
    pipeline = candidates.build(name, schema, 0, {}, 1, rows=len(x))
    family = candidates.FAMILIES[name]
    fitting.fit(pipeline, family, x, y, seed=0, deadline=time.monotonic() + 60)
    return pipeline


def _score(pipeline: Any, schema: Schema, table: pd.DataFrame) -> float:
    return float(pipeline.score(feature_frame(table, schema), target_vector(table, schema)))


@pytest.mark.parametrize(
    ("task", "name"),
    [
        ("binary", "hist_gradient_boosting"),
        ("multiclass", "linear"),
        ("regression", "catboost"),
        ("binary", "random_forest"),
    ],
)
def test_a_high_cardinality_column_is_target_encoded_and_exports_with_parity(
    task: str, name: str
) -> None:
    schema = _schema(task)
    train = _table(1500, 0, task)
    pipeline = _fitted(name, schema, train)
    assert cardinality.encoded(pipeline) == ["f002_city"]  # "shop" keeps the family's encoder
    splits = {
        "train": feature_frame(train, schema),
        "valid": feature_frame(_table(400, 1, task, unseen=True), schema),
        "test": feature_frame(_table(400, 2, task, unseen=True), schema),
    }
    model = export_pipeline(pipeline, schema, splits["train"])
    parity = check_export(pipeline, model, splits, schema)
    assert parity.ok, parity
    assert {"train", "valid", "test", "categories"} <= set(parity.splits)
    if task != "regression":
        assert parity.label_agreement == 1.0, parity
    # The graph still takes the raw string column: one string input per categorical.
    inputs = {i.name: i.type for i in make_session(model).get_inputs()}
    assert inputs["f002_city"] == "tensor(string)" and inputs["f000_a"] == "tensor(float)"


def test_the_encoding_is_what_the_model_learns_from() -> None:
    """On held-out rows the encoded model beats the same family given ordinal city codes."""
    schema, task = _schema("binary"), "binary"
    train, held_out = _table(1500, 0, task), _table(600, 3, task, unseen=True)
    encoded = _score(_fitted("hist_gradient_boosting", schema, train), schema, held_out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cardinality, "HIGH_CARDINALITY", 10**9)
        ordinal = _fitted("hist_gradient_boosting", schema, train)
    assert cardinality.encoded(ordinal) == []
    assert encoded > _score(ordinal, schema, held_out) + 0.02


def test_the_exported_encodings_are_the_native_float32_values() -> None:
    """Bit for bit: encoded values rounded differently would cross float32 tree thresholds."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    schema = _schema("multiclass")
    table = _table(800, 4, "multiclass")
    x, y = feature_frame(table, schema), target_vector(table, schema)
    columns = ["f001_shop", "f002_city"]
    encoder = target_encoding.target_means("multiclass", 0)
    transformer = ColumnTransformer([("te", encoder, columns)])
    cross_fitted = transformer.fit_transform(x, y)
    assert cross_fitted.dtype == np.float32 and cross_fitted.shape == (800, 6)  # 2 columns x 3
    # Training rows are encoded out of fold: not what the full-data encoding gives them.
    assert not np.array_equal(cross_fitted, transformer.transform(x))
    target_encoding.register()
    graph = convert_sklearn(
        transformer,
        initial_types=[(c, StringTensorType([None, 1])) for c in columns],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    rows = feature_frame(_table(300, 5, "multiclass", unseen=True), schema)
    feed = {c: rows[c].to_numpy(dtype=object).reshape(-1, 1) for c in columns}
    exported = make_session(graph.SerializeToString()).run(None, feed)[0]
    assert np.array_equal(exported, transformer.transform(rows))
    unseen = (rows["f002_city"] == "a city never seen").to_numpy()
    fitted = transformer.named_transformers_["te"]
    assert unseen.any() and np.allclose(exported[unseen][:, 3:], fitted.target_mean_)


@pytest.mark.parametrize(
    ("name", "kind"), [("linear", OneHotEncoder), ("catboost", OrdinalEncoder)]
)
def test_low_cardinality_columns_keep_todays_encoders(name: str, kind: type) -> None:
    schema = _schema("binary")
    table = _table(1200, 6, "binary")
    rng = np.random.default_rng(7)
    limit = cardinality.HIGH_CARDINALITY  # at the limit, not above it
    table["city"] = [f"city {c}" for c in rng.permutation(np.arange(len(table)) % limit)]
    assert table["city"].nunique() == limit
    pipeline = _fitted(name, schema, table)
    columns = dict(
        (n, (t, c)) for n, t, c in pipeline.named_steps["columns"].transformers_ if n != "remainder"
    )
    encoder, chosen = columns["categorical"]
    assert isinstance(encoder, kind) and chosen == ["f001_shop", "f002_city"]
    assert columns["target_encoded"][1] == [] and cardinality.encoded(pipeline) == []
    model = export_pipeline(pipeline, schema, feature_frame(table, schema))
    parity = check_export(pipeline, model, {"train": feature_frame(table, schema)}, schema)
    assert parity.ok and "categories" not in parity.splits, parity


@pytest.mark.parametrize("name", ["catboost", "hist_gradient_boosting"])
def test_a_log_scale_target_is_encoded_on_the_log_scale(name: str) -> None:
    """CatBoost's fit encodes before its booster: both must see the target the refits see."""
    from mlwizard.core.export.features_graph import forward

    schema = _schema("regression")
    table = _table(1200, 8, "regression")
    x, y = feature_frame(table, schema), target_vector(table, schema)
    pipeline = candidates.build(name, schema, 0, {candidates.TARGET_PARAM: "log"}, 1, rows=len(x))
    fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=time.monotonic() + 60)
    (encoder,) = target_encoding.encoders(pipeline)
    assert encoder.target_mean_ == pytest.approx(float(np.mean(forward(y))))
    parity = check_export(pipeline, export_pipeline(pipeline, schema, x), {"train": x}, schema)
    assert parity.ok, parity
