"""Candidate models: each one sklearn Pipeline with its preprocessing inside.

Pipelines are built on `feature_frame` columns (named `Feature.input`), so the exported ONNX graph
is the whole model and the service feeds it raw feature values. Preprocessing choices follow what
converts with parity (shared/ONNX_NOTES.md): tree boosters get raw numerics with NaN and ordinal-
encoded categoricals; linear models get imputed, scaled numerics and one-hot categoricals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mlwizard.core.errors import BadInputError
from mlwizard.core.schema import Schema

Builder = Callable[[Schema, int], Pipeline]
BASELINE = "dummy"


def _columns(schema: Schema, numeric: Any, categorical: Any) -> ColumnTransformer:
    """Route numeric and categorical inputs; a kind with no columns gets no transformer."""
    parts = []
    if schema.numeric:
        parts.append(("numeric", numeric, [f.input for f in schema.numeric]))
    if schema.categorical:
        parts.append(("categorical", categorical, [f.input for f in schema.categorical]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def dummy(schema: Schema, seed: int) -> Pipeline:
    """The baseline every other candidate has to beat. Not exportable: no skl2onnx converter."""
    if schema.task == "regression":
        return Pipeline([("model", DummyRegressor(strategy="mean"))])
    return Pipeline([("model", DummyClassifier(strategy="prior", random_state=seed))])


def linear(schema: Schema, seed: int) -> Pipeline:
    # Missing categoricals already arrive as the schema's token, so one-hot needs no imputer.
    columns = _columns(
        schema,
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
        OneHotEncoder(handle_unknown="ignore"),
    )
    if schema.task == "regression":
        model: Any = Ridge(alpha=1.0, random_state=seed)
    else:
        model = LogisticRegression(max_iter=2000, random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


def hist_gradient_boosting(schema: Schema, seed: int) -> Pipeline:
    # No imputer or scaler before trees: float32 rounding of imputed, scaled values moves rows
    # across split thresholds in ONNX. No native categorical support either: the converter
    # ignores categorical splits. Unseen categories map to -1.
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32)
    columns = _columns(schema, "passthrough", encoder)
    if schema.task == "regression":
        model: Any = HistGradientBoostingRegressor(random_state=seed)
    else:
        model = HistGradientBoostingClassifier(random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


# Name -> builder. New families (random forest, extra trees, CatBoost) register here.
CANDIDATES: dict[str, Builder] = {
    "dummy": dummy,
    "linear": linear,
    "hist_gradient_boosting": hist_gradient_boosting,
}


def check_names(names: tuple[str, ...] | list[str]) -> None:
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise BadInputError(
            f"mlwizard.toml [model] candidates: unknown {', '.join(unknown)} "
            f"(known: {', '.join(CANDIDATES)})"
        )


def build(name: str, schema: Schema, seed: int) -> Pipeline:
    check_names([name])
    return CANDIDATES[name](schema, seed)


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """The final estimator's own hyperparameters, JSON-able, for the experiment store."""
    model = pipeline.steps[-1][1]
    params = model.get_params(deep=False)
    return {"estimator": type(model).__name__, **{k: _plain(v) for k, v in params.items()}}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
