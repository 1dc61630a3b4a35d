"""Operations: register the model version with its reference profile, check drift, advise.

At training time the phase takes the reference profile of the model (see `snapshot.py`), stores
it with the deployed bundle as a numbered version in the registry (the first one becomes the
champion), reports the test split's drift against training (which shows the machinery on data
the model never trained on; production batches go through `mlwizard monitor`), decides whether to
retrain, and writes the runbook, the incident-response page and the schedules. The shells are
told which step is running (`STEPS`).
"""

from __future__ import annotations

from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.operations import docs
from mlwizard.core.operations.advice import retraining_advice
from mlwizard.core.operations.checks import feature_drift
from mlwizard.core.operations.drift import connect
from mlwizard.core.operations.registry import Registry
from mlwizard.core.operations.snapshot import describe_version

STEPS = ("reference", "drift", "register", "docs")


def run(ctx: PhaseContext) -> PhaseResult:
    ws = ctx.workspace
    steps = ctx.steps(*STEPS)
    steps.begin("reference")
    bundle, reference, facts = describe_version(ws)
    ctx.check_cancelled()
    steps.begin("drift")
    test = ctx.upstream_artifact("data", "test")
    con = connect(len(reference["features"]))
    features = feature_drift(con, "read_parquet(?)", [str(test)], reference)
    drifted = sorted(name for name, f in features.items() if f["level"] == "major")
    report: dict[str, Any] = {
        "current": "test split",
        "features": features,
        "drifted": drifted,
        "not_monitored": reference["not_monitored"],
    }
    model = ctx.upstream["model"]
    advice = retraining_advice(report, list(model.gate_failures))
    report["advice"] = advice

    steps.begin("register")
    registry = Registry(ws.root)
    version, new = registry.register(bundle, reference, {**facts, "origin": "operations phase"})
    if registry.champion() is None:
        registry.set_champion(version, "first", "the first registered version")
    outputs = {
        "reference": atomic.write_json(ctx.artifact("reference.json"), reference),
        "drift": atomic.write_json(ctx.artifact("drift.json"), report),
    }
    steps.begin("docs")
    outputs.update(docs.write_docs(ctx, registry, reference))
    steps.finish()
    ctx.message(  # last: what the shells keep showing once the phase is done
        f"model version {version}{' registered' if new else ''}; drift on {len(features)} "
        "monitored features: " + (f"major on {', '.join(drifted)}" if drifted else "none major")
    )
    metrics = {
        "psi": {name: f["psi"] for name, f in features.items()},
        "levels": {name: f["level"] for name, f in features.items()},
        "max_psi": max((f["psi"] for f in features.values()), default=0.0),
        "drifted_features": drifted,
        "not_monitored": reference["not_monitored"],
        "model_version": model.fingerprint[:12],
        "registry_version": version,
        "champion": registry.champion(),
        "advice": advice,
        "retrain": advice["retrain"],
        "reasons": advice["reasons"],
    }
    return PhaseResult(metrics=metrics, outputs=outputs)
