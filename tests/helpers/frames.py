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
