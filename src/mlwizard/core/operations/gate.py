"""The champion/challenger gate: a paired bootstrap on the same holdout rows.

Both models score the same rows; each resample draws rows once and scores both models on them,
so the difference's interval reflects the rows' variability, not two independent noises. The
challenger is promoted only if the whole one-sided CONFIDENCE interval of its advantage lies
above zero, i.e. it is better beyond what resampling the same rows gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwizard.core.contract.schema import Schema
from mlwizard.core.operations.evaluation import BOOTSTRAP_REPS, CONFIDENCE, metric_value

MIN_HOLDOUT_ROWS = 20


def compare(
    schema: Schema,
    metric: str,
    direction: str,
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    thresholds: tuple[float | None, float | None] = (None, None),
    seed: int = 0,
) -> dict[str, Any]:
    """The decision, the two scores and the interval of the challenger's advantage."""
    sign = 1.0 if direction == "maximize" else -1.0
    a = metric_value(schema, metric, y, champion, thresholds[0])
    b = metric_value(schema, metric, y, challenger, thresholds[1])
    result: dict[str, Any] = {
        "metric": metric,
        "direction": direction,
        "rows": len(y),
        "champion": a,
        "challenger": b,
        "confidence": CONFIDENCE,
    }
    if len(y) < MIN_HOLDOUT_ROWS or a is None or b is None:
        result.update(promote=False, advantage=None, interval_low=None)
        result["reason"] = (
            f"kept the champion: the holdout has {len(y)} usable rows (< {MIN_HOLDOUT_ROWS}) "
            f"or {metric} is undefined on it"
        )
        return result
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP_REPS):
        index = rng.integers(0, len(y), len(y))
        va = metric_value(schema, metric, y[index], champion[index], thresholds[0])
        vb = metric_value(schema, metric, y[index], challenger[index], thresholds[1])
        if va is not None and vb is not None:
            diffs.append(sign * (vb - va))
    advantage = sign * (b - a)
    low = float(np.percentile(diffs, (1 - CONFIDENCE) * 100)) if diffs else None
    share = float(np.mean(np.asarray(diffs) > 0)) if diffs else 0.0
    promote = low is not None and low > 0
    result.update(advantage=advantage, interval_low=low, share_better=share, promote=promote)
    word = "higher" if direction == "maximize" else "lower"
    if promote:
        result["reason"] = (
            f"promoted: {metric} {b:.4f} vs {a:.4f} on {len(y)} holdout rows; the challenger is "
            f"better with {CONFIDENCE:.0%} confidence (advantage ≥ {low:.4f}, better in "
            f"{share:.0%} of {len(diffs)} paired resamples)"
        )
    else:
        why = "worse" if advantage <= 0 else "not significantly better"
        result["reason"] = (
            f"kept the champion: the challenger's {metric} {b:.4f} vs {a:.4f} ({word} is better) "
            f"on {len(y)} holdout rows is {why}; it beat the champion in {share:.0%} of "
            f"{len(diffs)} paired resamples, {CONFIDENCE:.0%} needed"
        )
    return result
