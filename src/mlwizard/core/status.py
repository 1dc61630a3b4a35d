"""Where each phase stands: done, stale, pending or failed, why, and the command that fixes it.

A phase is up to date when its last checkpoint is `done` and was made from the same inputs that
it would read now: the hashes of the config sections it reads, of external inputs (the data file),
and the fingerprints of the upstream checkpoints. A phase whose finished results failed a quality
gate is up to date (it is not recomputed) but `failed`: nothing downstream runs until an input
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.phase_table import PHASE_NAMES, PhaseStatus, spec


@dataclass
class PhaseState:
    phase: str
    status: PhaseStatus
    reason: str
    checkpoint: Checkpoint | None
    fix: str = ""  # the command (or edit, then command) that moves the phase on
    up_to_date: bool = False  # its inputs are what it would read now: running it again skips

    def to_json(self) -> dict[str, object]:
        cp = self.checkpoint
        return {
            "phase": self.phase,
            "status": self.status,
            "reason": self.reason,
            "fix": self.fix,
            "finished_at": cp.finished_at if cp else None,
            "duration_s": cp.duration_s if cp else None,
            "gate_failures": list(cp.gate_failures) if cp else [],
        }


# What to change before running again when a phase's results failed its quality gate.
_GATE_FIXES = {
    "model": "improve the data or features, or lower [discovery] success_threshold in "
    "mlwizard.toml; then `mlwizard run --phase model`",
    "deploy": "rerun the model phase so it chooses a model whose export holds "
    "(`mlwizard run --phase model`), then `mlwizard run --phase deploy`",
}


def current_inputs(ws: Workspace, config: Config, phase: str) -> tuple[dict[str, str], list[str]]:
    """The input hashes `phase` would run on now, and the upstream phases not up to date."""
    s = spec(phase)
    inputs = {
        f"config.{name}": hash_value(config.section_hash_input(name)) for name in s.config_sections
    }
    if s.reads_source:
        from mlwizard.core.ingest.sources import source_fingerprint

        inputs["source"] = source_fingerprint(ws, config)
    if s.reads_features and ws.features_path.is_file():  # no file, no key: older checkpoints hold
        inputs["features"] = ws.file_hash(ws.features_path)
    not_ready = []
    for up in s.upstream:
        state = phase_state(ws, config, up)
        if state.status != "done":
            not_ready.append(up)
        else:
            assert state.checkpoint is not None
            inputs[f"upstream.{up}"] = state.checkpoint.fingerprint
    return inputs, not_ready


def phase_state(ws: Workspace, config: Config, phase: str) -> PhaseState:
    run = f"`mlwizard run --phase {phase}`"
    checkpoint = ws.read_checkpoint(phase)
    if checkpoint is None:
        return PhaseState(phase, "pending", "not run yet", None, fix=run)
    if checkpoint.status == "cancelled":  # stopped by the user: nothing is wrong with it
        return PhaseState(phase, "cancelled", "cancelled before it finished", checkpoint, fix=run)
    if checkpoint.status == "failed":
        reason = checkpoint.error or "failed"
        return PhaseState(phase, "failed", reason, checkpoint, fix=f"fix what it says, then {run}")
    inputs, not_ready = current_inputs(ws, config, phase)
    if not_ready:
        first = f"`mlwizard run --phase {not_ready[0]}`"
        reason = f"upstream {', '.join(not_ready)} not up to date"
        return PhaseState(phase, "stale", reason, checkpoint, fix=f"{first}, or --phase all")
    changed = sorted(
        k
        for k in inputs.keys() | checkpoint.inputs.keys()
        if inputs.get(k) != checkpoint.inputs.get(k)
    )
    if changed:
        return PhaseState(phase, "stale", "changed: " + ", ".join(changed), checkpoint, fix=run)
    missing = [name for name, rel in checkpoint.outputs.items() if not ws.resolve(rel).exists()]
    if missing:
        reason = "missing outputs: " + ", ".join(missing)
        return PhaseState(phase, "stale", reason, checkpoint, fix=run)
    if checkpoint.gate_failures:
        reason = "quality gate failed: " + "; ".join(checkpoint.gate_failures)
        fix = _GATE_FIXES.get(phase, f"fix the cause, then {run}")
        return PhaseState(phase, "failed", reason, checkpoint, fix=fix, up_to_date=True)
    return PhaseState(phase, "done", "up to date", checkpoint, up_to_date=True)


def project_status(ws: Workspace) -> list[PhaseState]:
    config = ws.load_config()
    return [phase_state(ws, config, name) for name in PHASE_NAMES]
