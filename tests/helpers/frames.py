"""Frames the tests build their data from."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


EFFECT_CLASSES = {"binary": ["no", "yes"], "multiclass": ["hi", "lo", "mid"]}


def category_effect_frame(
    rows: int, seed: int, task: str, column: str, values: int, unseen: str | None = None
) -> pd.DataFrame:
    """A categorical `column` of `values` values ("<column> 7") whose codes carry no order,
    each with a fixed effect on the target, beside a numeric `a` and a 3-value `shop`; with
    `unseen`, about 10 % of `column` is that value, never seen in training."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, values, rows)
    effect = np.random.default_rng(99).normal(size=values)[codes]
    names = np.array([f"{column} {c}" for c in codes], dtype=object)
    if unseen is not None:
        names[rng.random(rows) < 0.1] = unseen
    a = rng.normal(size=rows)
    shop = rng.choice(["a", "b", "c"], rows).astype(object)
    score = 1.5 * effect + 0.5 * a + (shop == "a") + rng.normal(0, 0.3, rows)
    if task == "binary":
        target = np.where(score > 0.3, "yes", "no")
    elif task == "multiclass":
        target = np.array(["lo", "mid", "hi"])[np.digitize(score, [-0.3, 0.9])]
    else:
        target = 100 * score
    return pd.DataFrame({"a": a, "shop": shop, column: names, "t": target})
