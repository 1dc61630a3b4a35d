"""Operations: keep reference statistics of the training data and report drift against them.

In this first version the "current" data is the test split, which shows the machinery working on
data the model never trained on; monitoring production batches reuses the same functions.
"""

from __future__ import annotations

from typing import Any

from mlwizard.core.contract.schema import Schema
from mlwizard.core.ingest import sources
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.operations.drift import (
    bin_counts,
    drift_level,
    psi,
    psi_noise_floor,
    reference_bins,
)


def run(ctx: PhaseContext) -> PhaseResult:
    schema = Schema.load(ctx.upstream_artifact("data", "schema"))
    train = ctx.upstream_artifact("data", "train")
    current = ctx.upstream_artifact("data", "test")
    con = sources.connect()

    bins = reference_bins(con, train, schema)
    reference_counts = bin_counts(con, train, bins)
    reference = {"source": "train split", "bins": bins, "counts": reference_counts}
    current_counts = bin_counts(con, current, bins)

    features: dict[str, dict[str, Any]] = {}
    for name, counts in current_counts.items():
        value = psi(reference_counts[name], counts)
        floor = psi_noise_floor(reference_counts[name], counts)
        features[name] = {
            "psi": round(value, 6),
            "noise_floor": round(floor, 6),
            "level": drift_level(value, floor),
        }
    drifted = sorted(name for name, f in features.items() if f["level"] == "major")
    report = {"current": "test split", "features": features, "drifted": drifted}
    ctx.message(
        f"drift on {len(features)} features: "
        + (f"major on {', '.join(drifted)}" if drifted else "none major")
    )
    outputs = {
        "reference": atomic.write_json(ctx.artifact("reference.json"), reference),
        "drift": atomic.write_json(ctx.artifact("drift.json"), report),
    }
    metrics = {
        "psi": {name: f["psi"] for name, f in features.items()},
        "max_psi": max((f["psi"] for f in features.values()), default=0.0),
        "drifted_features": drifted,
        "model_version": ctx.upstream["model"].fingerprint[:12],
    }
    return PhaseResult(metrics=metrics, outputs=outputs)
