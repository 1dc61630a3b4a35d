"""Candidate model families: each one sklearn Pipeline with its preprocessing inside, and a search
space for tuning.

Pipelines are built on `feature_frame` columns (named `Feature.input`), so the exported ONNX graph
is the whole model and the service feeds it raw feature values. Preprocessing choices follow what
converts with parity (shared/ONNX_NOTES.md):
- HistGradientBoosting gets raw numerics with NaN (an imputer and scaler before it convert
  silently wrong) and ordinal-encoded categoricals (its native categorical splits are ignored by
  the converter);
- forests get imputed numerics (the converter ignores scikit-learn's NaN routing in trees);
- CatBoost gets ordinal-encoded categoricals (its ONNX export refuses categorical features);
- linear models and the MLP get imputed, scaled numerics and one-hot categoricals.
Unseen categories map to -1 (ordinal) or all zeros (one-hot). High-cardinality categoricals
(`cardinality.HIGH_CARDINALITY`) get a target encoding instead, in every family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwizard.core.contract.schema import Schema
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model import cardinality, spaces

if TYPE_CHECKING:  # scikit-learn loads inside the builders: the parent plans without it
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

BASELINE = "dummy"
FORESTS = ("random_forest", "extra_trees")
MAX_FOREST_LEAVES = 4000  # per tree, about: bounds the size of a forest's ONNX graph
Params = dict[str, Any]
Space = Callable[[np.random.Generator, str], Params]  # (rng, task) -> model params


@dataclass(frozen=True)
class Family:
    """A kind of model: how to build it, what to search, and its share of the time budget."""

    name: str
    build: Callable[[Schema, int, int], Pipeline]  # (schema, seed, threads) -> unfitted pipeline
    space: Space | None  # None: not tuned
    trials: int  # configurations tried by the search, the defaults first; 0: no CV either
    weight: float  # relative share of the workers' time
    booster: str = ""  # "hgb" | "catboost": early stopping on an inner holdout, refit on CV rounds
    # Classifiers on imbalanced classes: this model parameter and the balanced values to search.
    balance: tuple[str, tuple[Any, ...]] | None = None


def _columns(
    schema: Schema, numeric: Any, categorical: Any, seed: int, scaled: bool = False
) -> ColumnTransformer:
    """Route numeric and categorical inputs; a kind with no columns gets no transformer.

    Categoricals go to `categorical`, or, high-cardinality ones, to a target encoding (scaled
    when `scaled`): see `cardinality`. Datetimes become calendar parts, then go the numerics'
    way; each free-text column becomes bounded TF-IDF weights (both inside the graph:
    `export.features_graph`).
    """
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    from mlwizard.core.export.features_graph import DateParts, text_vectorizer

    parts: list[tuple[str, Any, Any]] = []
    if schema.numeric:
        parts.append(("numeric", numeric, [f.input for f in schema.numeric]))
    parts.extend(cardinality.parts(schema, categorical, seed, scaled))
    if schema.datetime:
        after = (
            DateParts() if numeric == "passthrough" else make_pipeline(DateParts(), clone(numeric))
        )
        parts.append(("datetime", after, [f.input for f in schema.datetime]))
    for index, feature in enumerate(schema.text):  # one column name, not a list: 1-D text
        parts.append((f"text{index}", text_vectorizer(), feature.input))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _ordinal() -> Any:
    from sklearn.preprocessing import OrdinalEncoder

    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32)


# -- builders -------------------------------------------------------------------------------------


def dummy(schema: Schema, seed: int, threads: int) -> Pipeline:
    """The baseline every other candidate has to beat. Not exportable: no skl2onnx converter."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.pipeline import Pipeline

    if schema.task == "regression":
        return Pipeline([("model", DummyRegressor(strategy="mean"))])
    return Pipeline([("model", DummyClassifier(strategy="prior", random_state=seed))])


def linear(schema: Schema, seed: int, threads: int) -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    # Missing categoricals already arrive as the schema's token, so one-hot needs no imputer.
    columns = _columns(
        schema,
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
        OneHotEncoder(handle_unknown="ignore"),
        seed,
        scaled=True,
    )
    if schema.task == "regression":
        model: Any = Ridge(alpha=1.0, random_state=seed)
    else:
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


def mlp(schema: Schema, seed: int, threads: int) -> Pipeline:
    """A small neural network behind the linear model's scaling and one-hot encoding."""
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = _columns(
        schema,
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
        OneHotEncoder(handle_unknown="ignore"),
        seed,
        scaled=True,
    )
    kind: Any = MLPRegressor if schema.task == "regression" else MLPClassifier
    # Early stopping on an inner 10% holdout bounds the epochs (and the time) by itself.
    model = kind(
        hidden_layer_sizes=(64, 32),
        alpha=1e-4,
        learning_rate_init=1e-3,
        batch_size=256,
        max_iter=200,
        early_stopping=True,
        n_iter_no_change=10,
        random_state=seed,
    )
    return Pipeline([("columns", columns), ("model", model)])


def _forest(schema: Schema, seed: int, extra: bool) -> Pipeline:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    # Imputed numerics, no scaler: the converter ignores the trees' own NaN routing (ONNX_NOTES).
    columns = _columns(schema, SimpleImputer(strategy="median"), _ordinal(), seed)
    regression = schema.task == "regression"
    if extra:
        kind: Any = ExtraTreesRegressor if regression else ExtraTreesClassifier
    else:
        kind = RandomForestRegressor if regression else RandomForestClassifier
    model = kind(n_estimators=100, min_samples_leaf=1, random_state=seed, n_jobs=1)
    return Pipeline([("columns", columns), ("model", model)])


def random_forest(schema: Schema, seed: int, threads: int) -> Pipeline:
    return _forest(schema, seed, extra=False)


def extra_trees(schema: Schema, seed: int, threads: int) -> Pipeline:
    return _forest(schema, seed, extra=True)


def hist_gradient_boosting(schema: Schema, seed: int, threads: int) -> Pipeline:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    columns = _columns(schema, "passthrough", _ordinal(), seed)
    kind: Any = (
        HistGradientBoostingRegressor
        if schema.task == "regression"
        else HistGradientBoostingClassifier
    )
    # Early stopping on an inner 10% holdout during the search; the refit uses the rounds found.
    model = kind(
        max_iter=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=seed,
    )
    return Pipeline([("columns", columns), ("model", model)])


def catboost(schema: Schema, seed: int, threads: int) -> Pipeline:
    from catboost import CatBoostClassifier, CatBoostRegressor
    from sklearn.pipeline import Pipeline

    columns = _columns(schema, "passthrough", _ordinal(), seed)
    kind: Any = CatBoostRegressor if schema.task == "regression" else CatBoostClassifier
    # CatBoost's own thread pool ignores OMP_NUM_THREADS: give it the worker's share explicitly.
    model = kind(
        iterations=1000,
        learning_rate=0.08,
        depth=6,
        random_seed=seed,
        thread_count=threads,
        verbose=False,
        allow_writing_files=False,
    )
    return Pipeline([("columns", columns), ("model", model)])


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("dummy", dummy, None, trials=0, weight=0.02),
        Family(
            "linear",
            linear,
            spaces.linear_space,
            8,
            0.3,
            balance=("class_weight", (None, "balanced")),
        ),
        Family(
            "hist_gradient_boosting",
            hist_gradient_boosting,
            spaces.hgb_space,
            16,
            1.0,
            "hgb",
            balance=("class_weight", (None, "balanced")),
        ),
        Family(
            "random_forest",
            random_forest,
            spaces.forest_space,
            8,
            0.8,
            balance=("class_weight", (None, "balanced", "balanced_subsample")),
        ),
        Family(
            "catboost",
            catboost,
            spaces.catboost_space,
            10,
            1.2,
            "catboost",
            balance=("auto_class_weights", (None, "Balanced", "SqrtBalanced")),
        ),
        Family(
            "extra_trees",
            extra_trees,
            spaces.forest_space,
            8,
            0.6,
            balance=("class_weight", (None, "balanced", "balanced_subsample")),
        ),
        Family("mlp", mlp, spaces.mlp_space, trials=6, weight=0.5),
    )
}
# Start order: cheap and strong first, so a short budget still ends with good finished runs.
START_ORDER = tuple(FAMILIES)
# The MLP is available ([model] candidates) but not a default: on tables it rarely beats the
# boosters, and on a short budget its share is better spent on them.
DEFAULT_CANDIDATES = tuple(n for n in FAMILIES if n != "mlp")
# A classification task is imbalanced (balanced variants join the search) when its smallest
# class has under this share of the largest one's rows.
IMBALANCE_RATIO = 1 / 3
# A search parameter that is not the model's: "log" fits a regression on a signed log target.
TARGET_PARAM = "target_scale"
# A search parameter of the tree families on tables with categoricals: "target" target-encodes
# every categorical (cross-fitted means, sorted by what they predict) instead of ordinal codes.
ENCODING_PARAM = "encoding"
ENCODED_FAMILIES = ("hist_gradient_boosting", "catboost", "random_forest", "extra_trees")
SKEW = 1.0  # |sample skewness| of a regression target above which a log scale is searched
SKEW_MIN_ROWS = 50


def check_names(names: tuple[str, ...] | list[str]) -> None:
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise BadInputError(
            f"mlwizard.toml [model] candidates: unknown {', '.join(unknown)} "
            f"(known: {', '.join(FAMILIES)})"
        )


def build(
    name: str,
    schema: Schema,
    seed: int,
    params: Params | None = None,
    threads: int = 1,
    rows: int = 0,
) -> Pipeline:
    """An unfitted pipeline of family `name` with `params` set on its model step.

    Forests on `rows` training rows get a floor on leaf size: a fully grown forest on 100k rows
    has millions of nodes, an ONNX file of hundreds of MB and an export of minutes.
    """
    check_names([name])
    pipeline = FAMILIES[name].build(schema, seed, threads)
    params = dict(params or {})
    if name == "catboost":
        # CatBoost leaves parameters set to None out of `get_params`, so scikit-learn's `clone`
        # of it fails (KeyError); None is its default anyway: leave them unset.
        params = {key: value for key, value in params.items() if value is not None}
    target = params.pop(TARGET_PARAM, None)
    if params.pop(ENCODING_PARAM, None) == "target":
        cardinality.encode_all(pipeline)
    if params:
        pipeline.set_params(**{f"model__{key}": value for key, value in params.items()})
    if target == "log" and schema.task == "regression":
        from mlwizard.core.export.features_graph import SkewedTarget

        pipeline = SkewedTarget(pipeline.steps)
    if name in FORESTS and rows:
        model = pipeline.steps[-1][1]
        floor = max(1, rows // MAX_FOREST_LEAVES)
        if model.min_samples_leaf < floor:
            model.set_params(min_samples_leaf=floor)
    return pipeline


def sample_params(
    name: str,
    task: str,
    seed: int,
    trials: int,
    imbalanced: bool = False,
    skewed: bool = False,
    categorical: bool = False,
) -> list[Params]:
    """The configurations a search tries, in order: the defaults, then seeded random draws.

    Seeded per family, so the same seed gives the same configurations whatever else runs. On an
    `imbalanced` classification task the defaults with the first balanced class weighting come
    second, and every random draw also draws a class weighting. On a `skewed` regression target
    the defaults on a log scale (`TARGET_PARAM`) come next, and every draw also draws the scale.
    A tree family on a supervised table with `categorical` inputs tries the defaults with every
    categorical target-encoded (`ENCODING_PARAM`) next, and every draw also draws the encoding:
    the cross-validation decides per table.
    """
    family = FAMILIES[name]
    if family.space is None or trials <= 0:
        return [{}]
    rng = np.random.default_rng([seed, sum(name.encode())])
    configs: list[Params] = [{}]
    balance = family.balance if imbalanced and task != "regression" else None
    if balance is not None and trials > 1:
        configs.append({balance[0]: balance[1][1]})
    log_scale = skewed and task == "regression" and name != BASELINE
    if log_scale and len(configs) < trials:
        configs.append({TARGET_PARAM: "log"})
    encodings = categorical and name in ENCODED_FAMILIES
    encodings = encodings and task in ("binary", "multiclass", "regression")
    if encodings and len(configs) < trials:
        configs.append({ENCODING_PARAM: "target"})
    attempts = 0
    while len(configs) < trials and attempts < trials * 20:
        attempts += 1
        params = family.space(rng, task)
        if balance is not None:
            params[balance[0]] = spaces.pick(rng, list(balance[1]))
        if log_scale and rng.random() < 0.5:
            params[TARGET_PARAM] = "log"
        if encodings and rng.random() < 0.5:
            params[ENCODING_PARAM] = "target"
        if params not in configs:
            configs.append(params)
    return configs


def skewed(y: np.ndarray) -> bool:
    """A long-tailed regression target: |sample skewness| above `SKEW`."""
    values = np.asarray(y, dtype=np.float64)
    values = values[np.isfinite(values)]
    spread = float(np.std(values)) if len(values) else 0.0
    if len(values) < SKEW_MIN_ROWS or spread == 0.0:
        return False
    return abs(float(np.mean((values - values.mean()) ** 3)) / spread**3) > SKEW


def imbalanced(class_balance: dict[str, float] | None) -> bool:
    """Whether the smallest class share is under `IMBALANCE_RATIO` of the largest."""
    shares = [float(v) for v in (class_balance or {}).values()]
    return len(shares) > 1 and min(shares) < IMBALANCE_RATIO * max(shares)


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """The final estimator's own hyperparameters, JSON-able, for the experiment store."""
    model = pipeline.steps[-1][1]
    params = model.get_params(deep=False)
    return {"estimator": type(model).__name__, **{k: plain(v) for k, v in params.items()}}


def plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return repr(value)
