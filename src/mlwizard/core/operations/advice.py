"""Whether to retrain, and why: a decision of the core, shown as is by the CLI and the TUI."""

from __future__ import annotations

from typing import Any


def retraining_advice(
    drift: dict[str, Any], gate_failures: list[str], degraded: list[str] | None = None
) -> dict[str, Any]:
    """{"retrain": bool, "reasons": [...]} from a drift report and the model's failed gates.

    Retrain on major drift of a monitored feature or of the predictions, on a metric that got
    significantly worse, or on a failed success criterion. Features with too few rows to judge
    and columns that are not monitored (identifiers, excluded) never raise it.
    """
    features: dict[str, Any] = drift.get("features") or {}
    by_level: dict[str, list[str]] = {}
    for name, info in features.items():
        if isinstance(info, dict):
            by_level.setdefault(str(info.get("level")), []).append(name)
    major = sorted(by_level.get("major", []))
    moderate = sorted(by_level.get("moderate", []))
    reasons = []
    if major:
        reasons.append(f"major drift on {', '.join(major)}: the data moved away from training")
    prediction = drift.get("prediction") or {}
    if prediction.get("level") == "major":
        reasons.append(f"the predictions' distribution moved (PSI {prediction.get('psi', 0):.3f})")
    reasons += [f"performance degraded: {what}" for what in degraded or []]
    reasons += [f"success criterion failed: {failure}" for failure in gate_failures]
    if reasons:
        return {"retrain": True, "reasons": reasons}
    if not features:
        return {"retrain": False, "reasons": ["no drift report yet: run the operations phase"]}
    calm = ["no monitored feature drifted majorly"]
    if moderate:
        calm.append(f"moderate drift on {', '.join(moderate)}: watch them")
    insufficient = sorted(by_level.get("insufficient", []))
    if insufficient:
        rows = min(int(features[n].get("rows") or 0) for n in insufficient)
        calm.append(
            f"not enough rows to judge drift ({rows} rows) on {len(insufficient)} feature(s)"
        )
    skipped = drift.get("not_monitored") or {}
    if skipped:
        calm.append(f"not monitored: {', '.join(f'{k} ({v})' for k, v in sorted(skipped.items()))}")
    calm.append("the model met its success criterion")
    return {"retrain": False, "reasons": calm}
