"""Feature engineering inside the exported graph: dates, free text and a skewed target go
through ONNX with parity, and the service takes the raw values."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.export import features_graph
from mlwizard.core.export.onnx_export import export_pipeline
from mlwizard.core.export.parity import check_parity
from mlwizard.core.model import candidates, fitting
from mlwizard.serving.predictor import Predictor, datetime_column

WORDS = np.array(
    ["Late delivery", "great product", "broken box", "Fast shipping!", "would buy again", "meh"]
)


def _table(rows: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2019, 1, 1, tzinfo=UTC).timestamp()
    seconds = start + rng.integers(0, 4 * 365 * 86400, rows).astype(np.float64)
    seconds[rng.random(rows) < 0.1] = np.nan
    text = rng.choice(WORDS, rows).astype(object)
    text[rng.random(rows) < 0.1] = None
    if unseen:
        text[rng.random(rows) < 0.1] = "never seen words"
    amount = rng.normal(size=rows)
    shop = rng.choice(["a", "b", "c"], rows).astype(object)
    hour = np.nan_to_num((seconds % 86400) // 3600, nan=0)
    good = np.isin(text, ["great product", "would buy again"])
    label = (hour >= 12).astype(int) + good + (amount > 0) >= 2
    return pd.DataFrame(
        {
            "ordered at": seconds,
            "review": text,
            "amount": amount,
            "shop": shop,
            "label": np.where(label, "yes", "no"),
        }
    )


SCHEMA = Schema(
    "label",
    "binary",
    [
        Feature("ordered at", "datetime", "f000_ordered_at"),
        Feature("review", "text", "f001_review"),
        Feature("amount", "numeric", "f002_amount"),
        Feature("shop", "categorical", "f003_shop"),
    ],
    ["no", "yes"],
)


@pytest.mark.parametrize(
    "name", ["linear", "hist_gradient_boosting", "random_forest", "catboost", "mlp"]
)
def test_dates_and_text_go_through_onnx_with_parity(name: str) -> None:
    train, held_out = _table(500, 0), _table(200, 1, unseen=True)
    x, y = feature_frame(train, SCHEMA), target_vector(train, SCHEMA)
    pipeline = candidates.build(name, SCHEMA, 0, {}, 1, rows=len(x))
    fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=time.monotonic() + 60)
    model = export_pipeline(pipeline, SCHEMA, x)
    parity = check_parity(pipeline, model, feature_frame(held_out, SCHEMA), SCHEMA)
    assert parity.ok and parity.label_agreement == 1.0, parity
    if name != "mlp":  # early stopping leaves the small network near the majority class here
        # The features are used: better than always answering the majority class.
        assert pipeline.score(x, y) > max(np.mean(y), 1 - np.mean(y)) + 0.05


def test_date_parts_are_the_calendar() -> None:
    stamps = [
        datetime(1969, 12, 31, 23, 0, tzinfo=UTC),
        datetime(2000, 2, 29, 6, 30, tzinfo=UTC),
        datetime(2024, 12, 31, 18, 59, tzinfo=UTC),
        datetime(2100, 3, 1, 0, 0, tzinfo=UTC),
    ]
    seconds = np.array([[s.timestamp()] for s in stamps] + [[np.nan]])
    parts = features_graph.DateParts().fit(seconds).transform(seconds)
    names = list(features_graph.PARTS)
    for row, stamp in zip(parts, stamps, strict=False):
        got = {n: row[names.index(n)] for n in ("year", "month", "day", "day_of_week", "hour")}
        assert got == {
            "year": stamp.year,
            "month": stamp.month,
            "day": stamp.day,
            "day_of_week": stamp.weekday(),
            "hour": stamp.hour,
        }
    assert parts[0, names.index("days_since_start")] == 0
    assert np.isnan(parts[-1]).all()


def test_the_service_takes_raw_dates_and_text(tmp_path: Path) -> None:
    train = _table(400, 2)
    x, y = feature_frame(train, SCHEMA), target_vector(train, SCHEMA)
    pipeline = candidates.build("hist_gradient_boosting", SCHEMA, 0, {}, 1, rows=len(x))
    fitting.fit(
        pipeline,
        candidates.FAMILIES["hist_gradient_boosting"],
        x,
        y,
        seed=0,
        deadline=time.monotonic() + 60,
    )
    (tmp_path / "model.onnx").write_bytes(export_pipeline(pipeline, SCHEMA, x))
    SCHEMA.save(tmp_path / "schema.json")
    predictor = Predictor(tmp_path / "model.onnx", tmp_path / "schema.json")
    rows = [
        {
            "ordered at": "2021-06-01T14:30:00Z",
            "review": "GREAT product",
            "amount": 0.5,
            "shop": "a",
        },
        {
            "ordered at": "2021-06-01 16:30:00+02:00",
            "review": "great product",
            "amount": 0.5,
            "shop": "a",
        },
        {"ordered at": None, "review": None, "amount": None, "shop": None},
    ]
    served = predictor.predict_records(rows)
    # The same instant written two ways, and text in any case, predict the same.
    assert served[0] == served[1]
    seconds = datetime(2021, 6, 1, 14, 30, tzinfo=UTC).timestamp()
    assert datetime_column(["2021-06-01T14:30:00Z", seconds])[0, 0] == np.float32(seconds)
    native = pipeline.predict_proba(
        feature_frame(
            pd.DataFrame(
                {
                    "ordered at": [seconds],
                    "review": ["great product"],
                    "amount": [0.5],
                    "shop": ["a"],
                    "label": ["yes"],
                }
            ),
            SCHEMA,
        )
    )
    assert served[0]["proba"]["yes"] == pytest.approx(native[0, 1], abs=1e-5)
    assert set(json.loads((tmp_path / "schema.json").read_text())["features"][0]) == {
        "name",
        "kind",
        "input",
    }


def _skewed_prices(rows: int, seed: int) -> tuple[Schema, pd.DataFrame, np.ndarray]:
    """A right-skewed price (log-normal) driven by a numeric and a 3-value categorical."""
    rng = np.random.default_rng(seed)
    a, shop = rng.normal(size=rows), rng.choice(["x", "y", "z"], rows).astype(object)
    price = np.exp(3 + 1.2 * a + (shop == "x") + rng.normal(0, 0.3, rows))
    table = pd.DataFrame({"a": a, "shop": shop, "price": price})
    features = [Feature("a", "numeric", "f000_a"), Feature("shop", "categorical", "f001_shop")]
    schema = Schema("price", "regression", features)
    return schema, feature_frame(table, schema), target_vector(table, schema)


@pytest.mark.parametrize("name", ["linear", "hist_gradient_boosting", "catboost"])
def test_a_skewed_target_is_fitted_on_a_log_scale_and_inverted_in_the_graph(name: str) -> None:
    schema, x, y = _skewed_prices(600, 3)
    assert candidates.skewed(y) and not candidates.skewed(np.log(y))
    configs = candidates.sample_params(name, "regression", 0, 4, skewed=True)
    assert configs[1] == {candidates.TARGET_PARAM: "log"}
    pipeline = candidates.build(name, schema, 0, configs[1], 1, rows=400)
    assert isinstance(pipeline, features_graph.SkewedTarget)
    fitting.fit(
        pipeline,
        candidates.FAMILIES[name],
        x[:400],
        y[:400],
        seed=0,
        deadline=time.monotonic() + 60,
    )
    predicted = pipeline.predict(x[400:])
    assert np.median(predicted) > 10  # the target's scale, not the log's
    parity = check_parity(pipeline, export_pipeline(pipeline, schema, x), x[400:], schema)
    assert parity.ok, parity


def test_the_data_phase_keeps_dates_and_text_as_features(tmp_path: Path) -> None:
    from helpers.model import real_project
    from mlwizard.core.kernel.workspace import Workspace

    table = _table(300, 4)
    table["ordered at"] = pd.to_datetime(table["ordered at"], unit="s").dt.strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    rng = np.random.default_rng(5)
    table["review"] = [  # free text: long, mostly distinct, with spaces
        f"{w} and then some more words about order number {i}" if rng.random() > 0.1 else None
        for i, w in enumerate(rng.choice(WORDS, len(table)))
    ]
    ws: Workspace = real_project(tmp_path, table, {"candidates": ["dummy"]})
    schema = Schema.load(ws.resolve(ws.read_checkpoint("data").outputs["schema"]))
    kinds = {f.name: f.kind for f in schema.features}
    assert kinds["ordered at"] == "datetime" and kinds["review"] == "text", kinds
    train = pd.read_parquet(ws.resolve(ws.read_checkpoint("data").outputs["train"]))
    frame = feature_frame(train, schema)
    seconds = frame[schema.datetime[0].input].dropna()
    assert seconds.between(datetime(2019, 1, 1, tzinfo=UTC).timestamp() - 1, 2e9).all()
    assert frame[schema.text[0].input].str.islower().all()


def test_an_ensemble_with_a_log_scale_member_converts_with_parity() -> None:
    """A log-target member inside a VotingRegressor used to fail the ensemble's export
    (skl2onnx had no converter for `SkewedTarget`), so such an ensemble was never kept; each
    member is now exported on its own, the log inverse inside its graph, and composed."""
    from mlwizard.core.model import ensemble

    schema, x, y = _skewed_prices(500, 4)
    fitted = []
    for name, params in (("catboost", {"iterations": 50}), ("linear", {})):
        pipeline = candidates.build(name, schema, 0, {**params, candidates.TARGET_PARAM: "log"})
        family = candidates.FAMILIES[name]
        fitting.fit(pipeline, family, x[:350], y[:350], seed=0, deadline=time.monotonic() + 60)
        fitted.append((name, pipeline))
    plain = candidates.build("hist_gradient_boosting", schema, 0, {"max_iter": 30})
    plain.fit(x[:350], y[:350])
    voting = ensemble.assemble(
        [*fitted, ("hist_gradient_boosting", plain)], schema, [0.5, 0.2, 0.3]
    )
    model = export_pipeline(voting, schema, x)
    parity = check_parity(voting, model, x[350:], schema)
    assert parity.ok and parity.rows == 150, parity
    assert np.median(voting.predict(x[350:])) > 10  # the target's scale
    assert export_pipeline(voting, schema, x) == model  # reproducible bytes
