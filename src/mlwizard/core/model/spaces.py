"""The search spaces of the model families: seeded draws of each model's hyperparameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Params = dict[str, Any]


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(round(math.exp(rng.uniform(math.log(low), math.log(high))), 6))


def pick(rng: np.random.Generator, values: list[Any]) -> Any:
    value = values[int(rng.integers(len(values)))]
    return value.item() if isinstance(value, np.generic) else value


# -- search spaces --------------------------------------------------------------------------------


def linear_space(rng: np.random.Generator, task: str) -> Params:
    if task == "regression":
        return {"alpha": log_uniform(rng, 1e-3, 1e3)}
    return {"C": log_uniform(rng, 1e-3, 1e2)}


def mlp_space(rng: np.random.Generator, task: str) -> Params:
    return {
        "hidden_layer_sizes": pick(rng, [(32,), (64,), (128,), (64, 32), (128, 64)]),
        "alpha": log_uniform(rng, 1e-5, 1e-1),
        "learning_rate_init": log_uniform(rng, 3e-4, 1e-2),
    }


def forest_space(rng: np.random.Generator, task: str) -> Params:
    return {
        "max_features": pick(rng, ["sqrt", 0.3, 0.6, 1.0]),
        "min_samples_leaf": pick(rng, [1, 2, 4, 8, 16]),
        "max_depth": pick(rng, [None, 12, 24]),
    }


def hgb_space(rng: np.random.Generator, task: str) -> Params:
    return {
        "learning_rate": log_uniform(rng, 0.02, 0.3),
        "max_leaf_nodes": pick(rng, [15, 31, 63, 127]),
        "min_samples_leaf": pick(rng, [5, 10, 20, 40, 80]),
        "l2_regularization": pick(rng, [0.0, 0.01, 0.1, 1.0, 10.0]),
        "max_features": pick(rng, [1.0, 0.8, 0.5]),
    }


def catboost_space(rng: np.random.Generator, task: str) -> Params:
    return {
        "depth": pick(rng, [4, 5, 6, 7, 8]),
        "learning_rate": log_uniform(rng, 0.02, 0.25),
        "l2_leaf_reg": log_uniform(rng, 1.0, 20.0),
        "random_strength": pick(rng, [0.5, 1.0, 2.0]),
    }
