"""Before the model phase: how long it should take and how much memory it should need, whether
the success criterion looks reachable from the baseline, and what is at stake in money.

The time estimate is a cost model calibrated on measured runs (`calibration.json`, written by
`benchmarks/bench_feasibility.py`): each candidate's run costs `fixed_s + per_mcell_s * cells`
(cells = training rows x features, in millions); runs are shared out over the workers longest
first; the phase adds its own start and finish. The model phase holds to its time budget, so
the estimate never exceeds it — it says whether the budget is expected to bind.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from typing import Any

CALIBRATION_FILE = "calibration.json"
# The model phase trains on at most this many rows per second of its budget (a seeded sample
# of a larger training split: `model/sampling.py`), so the estimate counts no more than that.
TRAINING_ROWS_PER_BUDGET_S = 5_000
UNKNOWN_FAMILY = {"fixed_s": 5.0, "per_mcell_s": 50.0}  # a family never measured: be cautious


@cache
def calibration() -> dict[str, Any]:
    text = resources.files("mlwizard.core.discovery").joinpath(CALIBRATION_FILE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def contention(load: float | None = None, cores: int | None = None, extra: int = 0) -> float:
    """How much slower than an idle machine: runnable processes per core (1-minute load), ≥ 1.

    Calibration runs are stored divided by their contention; estimates are multiplied by the
    contention now. A 2-core machine at load 15 runs a phase about 7x slower than idle.
    `extra`: processes about to start (the phase's workers) that the load does not count yet.
    """
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1.0, (load + extra) / cores)


def candidate_seconds(name: str, cells_m: float, families: dict[str, Any] | None = None) -> float:
    cost = (families or calibration()["families"]).get(name, UNKNOWN_FAMILY)
    return float(cost["fixed_s"]) + float(cost["per_mcell_s"]) * cells_m


def estimate_seconds(
    rows: int,
    features: int,
    candidates: list[str],
    workers: int,
    budget: float,
    families: dict[str, Any] | None = None,
    slowdown: float = 1.0,
    table: dict[str, Any] | None = None,
) -> float:
    """The model phase's expected wall time at `slowdown` (see `contention`), capped by its
    budget. `families` and `table` override the calibration (benchmarks fit their own)."""
    table = table or calibration()
    cells_m = rows * max(features, 1) / 1e6
    runs = sorted((candidate_seconds(n, cells_m, families) for n in candidates), reverse=True)
    loads = [0.0] * max(1, min(workers, len(runs) or 1))
    for seconds in runs:  # longest first onto the least loaded worker
        loads[loads.index(min(loads))] += seconds
    phase = float(table["phase_fixed_s"]) + float(table["phase_per_mcell_s"]) * cells_m
    return min(budget, slowdown * (phase + max(loads, default=0.0)))


def estimate(
    rows: int, features: int, candidates: list[str], workers_setting: int, budget: float
) -> dict[str, Any]:
    """Time and peak memory of the model phase, with what they rest on.

    `rows`: the labelled rows; a budget that caps training rows (`TRAINING_ROWS_PER_BUDGET_S`)
    caps them here too."""
    table = calibration()
    labelled = rows
    if budget != float("inf"):
        rows = min(rows, max(1, int(TRAINING_ROWS_PER_BUDGET_S * budget)))
    cores = os.cpu_count() or 1
    workers = max(1, min(workers_setting or cores, len(candidates) or 1))
    slowdown = contention(extra=workers)
    unbounded = estimate_seconds(
        rows, features, candidates, workers, float("inf"), slowdown=slowdown
    )
    cells_m = rows * max(features, 1) / 1e6
    memory = table["memory"]
    peak_mb = (
        memory["parent_mb"]
        + workers * memory["worker_mb"]
        + memory["per_mcell_mb"] * cells_m * (workers + 1)
    )
    return {
        "model_phase_s": round(min(budget, unbounded), 1),
        "unbounded_s": round(unbounded, 1),
        "time_budget_s": budget,
        "budget_binds": unbounded > budget,
        "peak_memory_mb": round(peak_mb),
        "rows": rows,
        "sampled_from": labelled if rows < labelled else None,
        "features": features,
        "candidates": candidates,
        "workers": workers,
        "contention": round(slowdown, 2),
        "calibration": table.get("measured", {}),
        "note": "a cost model measured on shared cores, scaled by the machine's load now; "
        "expect ±2x",
    }


# -- the baseline and the success criterion -----------------------------------------------------


def baseline_score(task: str, metric: str, stats: dict[str, Any]) -> float | None:
    """What a constant model scores, from the target's statistics (None: not known upfront).

    `stats`: `counts` (class -> rows) for classes; `std`, `mad` (mean absolute deviation from
    the mean) for regression.
    """
    import math

    if task in ("binary", "multiclass"):
        counts = list((stats.get("counts") or {}).values())
        total = sum(counts)
        if not total:
            return None
        shares = [c / total for c in counts]
        majority = max(shares)
        values = {
            "roc_auc": 0.5,
            "accuracy": majority,
            "balanced_accuracy": 1 / len(counts),
            "log_loss": -sum(p * math.log(p) for p in shares if p > 0),
            "f1": 0.0,  # the prior baseline never predicts the positive class
            "f1_macro": majority / (1 + majority) * 2 / len(counts),
        }
        return round(values[metric], 4) if metric in values else None
    if task == "regression":
        values = {"r2": 0.0, "rmse": stats.get("std"), "mae": stats.get("mad")}
        value = values.get(metric)
        return round(float(value), 4) if value is not None else None
    if task == "anomaly":
        return 0.5 if metric == "roc_auc" else stats.get("positive_share")
    return None


BOUNDS = {"roc_auc": (0.0, 1.0), "accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0)}
BOUNDS |= {m: (0.0, 1.0) for m in ("f1", "f1_macro", "average_precision", "silhouette")}
BOUNDS["r2"] = (float("-inf"), 1.0)
BOUNDS["silhouette"] = (-1.0, 1.0)


def reachability(
    metric: str, direction: str, threshold: float | None, baseline: float | None
) -> dict[str, Any]:
    """Whether the success criterion looks reachable: a verdict and a reason, never a promise."""
    if threshold is None:
        return {
            "verdict": "likely" if baseline is not None else "unknown",
            "why": "the criterion is to beat the baseline; any model with signal does",
        }
    low, high = BOUNDS.get(metric, (float("-inf"), float("inf")))
    maximize = direction == "maximize"
    best_possible = high if maximize else low
    if (maximize and threshold > high) or (not maximize and threshold < low):
        return {
            "verdict": "unreachable",
            "why": f"{metric} cannot be {'above' if maximize else 'below'} {best_possible:g}",
        }
    if baseline is None:
        return {"verdict": "unknown", "why": f"no baseline {metric} is known before training"}
    if (maximize and baseline >= threshold) or (not maximize and baseline <= threshold):
        return {
            "verdict": "trivial",
            "why": f"a constant model already scores {baseline:g}: the threshold asks for nothing",
        }
    gap = abs(threshold - baseline)
    room = (
        abs(best_possible - baseline)
        if best_possible not in (float("inf"), float("-inf"))
        else None
    )
    if room and gap / room > 0.9:
        return {
            "verdict": "hard",
            "why": f"needs {gap / room:.0%} of the way from the baseline ({baseline:g}) to a "
            f"perfect {metric}",
        }
    return {
        "verdict": "plausible",
        "why": f"needs {gap:g} over the baseline ({baseline:g})"
        + (f", {gap / room:.0%} of the way to perfect" if room else ""),
    }
