"""Phases, their dependencies, and the runner that keeps checkpoints honest.

A phase is up to date when its last checkpoint is `done` and was made from the same inputs that
it would read now: the hashes of the config sections it reads, of external inputs (the data file),
and the fingerprints of the upstream checkpoints. Anything else is `pending`, `stale` or `failed`.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.context import PhaseContext, PhaseResult
from mlwizard.core.kernel.errors import (
    InternalError,
    MlwizardError,
    QualityGateError,
    UpstreamNotReadyError,
)
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.versions import package_versions
from mlwizard.core.kernel.workspace import Checkpoint, Workspace

PhaseStatus = Literal["pending", "done", "stale", "failed"]


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    module: str  # imported only when the phase runs: status checks stay light
    upstream: tuple[str, ...]
    config_sections: tuple[str, ...]
    weight: int  # share of the overall progress, in percent
    reads_source: bool = False

    def load(self) -> Callable[[PhaseContext], PhaseResult]:
        return importlib.import_module(self.module).run


def _phase(
    name: str,
    upstream: tuple[str, ...],
    sections: tuple[str, ...],
    weight: int,
    reads_source: bool = False,
) -> PhaseSpec:
    return PhaseSpec(name, f"mlwizard.core.{name}.phase", upstream, sections, weight, reads_source)


PHASES: tuple[PhaseSpec, ...] = (
    _phase("discovery", (), ("data", "discovery"), 15, reads_source=True),
    _phase("data", ("discovery",), ("project", "data", "split"), 20, reads_source=True),
    _phase("model", ("discovery", "data"), ("project", "model"), 30),
    _phase("deploy", ("discovery", "data", "model"), ("deploy",), 20),
    _phase("operations", ("data", "model"), (), 15),
)
PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in PHASES)
PHASE_WEIGHTS: dict[str, int] = {p.name: p.weight for p in PHASES}
_SPECS = {p.name: p for p in PHASES}


@dataclass
class PhaseState:
    phase: str
    status: PhaseStatus
    reason: str
    checkpoint: Checkpoint | None


@dataclass
class PhaseOutcome:
    status: Literal["done", "skipped", "failed"]
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunReport:
    project: Path
    phases: dict[str, PhaseOutcome] = field(default_factory=dict)
    error: MlwizardError | None = None

    @property
    def exit_code(self) -> int:
        return self.error.exit_code if self.error else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "project": str(self.project),
            "phases": {
                name: {
                    "status": o.status,
                    "metrics": o.metrics,
                    "artifacts": o.artifacts,
                    **({"error": o.error} if o.error else {}),
                }
                for name, o in self.phases.items()
            },
        }


def spec(phase: str) -> PhaseSpec:
    return _SPECS[phase]


def current_inputs(ws: Workspace, config: Config, phase: str) -> tuple[dict[str, str], list[str]]:
    """The input hashes `phase` would run on now, and the upstream phases not up to date."""
    s = _SPECS[phase]
    inputs = {
        f"config.{name}": hash_value(config.section_hash_input(name)) for name in s.config_sections
    }
    if s.reads_source:
        from mlwizard.core.ingest.sources import source_fingerprint

        inputs["source"] = source_fingerprint(ws, config)
    not_ready = []
    for up in s.upstream:
        state = phase_state(ws, config, up)
        if state.status != "done" or (state.checkpoint and state.checkpoint.gate_failures):
            not_ready.append(up)
        else:
            assert state.checkpoint is not None
            inputs[f"upstream.{up}"] = state.checkpoint.fingerprint
    return inputs, not_ready


def phase_state(ws: Workspace, config: Config, phase: str) -> PhaseState:
    checkpoint = ws.read_checkpoint(phase)
    if checkpoint is None:
        return PhaseState(phase, "pending", "not run yet", None)
    if checkpoint.status == "failed":
        return PhaseState(phase, "failed", checkpoint.error or "failed", checkpoint)
    inputs, not_ready = current_inputs(ws, config, phase)
    if not_ready:
        return PhaseState(
            phase, "stale", f"upstream {', '.join(not_ready)} not up to date", checkpoint
        )
    changed = sorted(
        k
        for k in inputs.keys() | checkpoint.inputs.keys()
        if inputs.get(k) != checkpoint.inputs.get(k)
    )
    if changed:
        return PhaseState(phase, "stale", "changed: " + ", ".join(changed), checkpoint)
    missing = [name for name, rel in checkpoint.outputs.items() if not ws.resolve(rel).exists()]
    if missing:
        return PhaseState(phase, "stale", "missing outputs: " + ", ".join(missing), checkpoint)
    return PhaseState(phase, "done", "up to date", checkpoint)


def project_status(ws: Workspace) -> list[PhaseState]:
    config = ws.load_config()
    return [phase_state(ws, config, name) for name in PHASE_NAMES]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _outcome(ws: Workspace, cp: Checkpoint, status: Literal["done", "skipped"]) -> PhaseOutcome:
    artifacts = {name: str(ws.resolve(rel)) for name, rel in cp.outputs.items()}
    return PhaseOutcome(status, cp.metrics, artifacts)


def run_phase(
    ws: Workspace,
    phase: str,
    *,
    config: Config | None = None,
    time_budget: float | None = None,
    emit: ev.EventSink = ev.ignore,
    cancel: threading.Event | None = None,
    force: bool = False,
    executor: str | None = None,
) -> PhaseOutcome:
    """Run one phase if it is not up to date. Raises on failure, after recording it."""
    config = config or ws.load_config()
    state = phase_state(ws, config, phase)
    if state.status == "done" and not force:
        assert state.checkpoint is not None
        emit(ev.Event(phase, "phase_skipped", "up to date"))
        _raise_gate(phase, state.checkpoint)
        return _outcome(ws, state.checkpoint, "skipped")

    inputs, not_ready = current_inputs(ws, config, phase)
    if not_ready:
        first = not_ready[0]
        up = phase_state(ws, config, first)
        if up.status == "done":  # done, but its results failed a quality gate
            assert up.checkpoint is not None
            raise QualityGateError(
                f"phase '{phase}' needs '{first}', whose results failed a quality gate: "
                + "; ".join(up.checkpoint.gate_failures)
            )
        raise UpstreamNotReadyError(
            f"phase '{phase}' needs '{first}', which is {up.status}; run "
            f"`mlwizard run --phase {first}` (or `--phase all` to run whatever is needed)"
        )
    upstream = {up: ws.read_checkpoint(up) for up in _SPECS[phase].upstream}
    context = PhaseContext(
        phase=phase,
        workspace=ws,
        config=config,
        upstream={k: v for k, v in upstream.items() if v is not None},
        time_budget=time_budget,
        executor=executor,
        emit=emit,
        cancel=cancel or threading.Event(),
    )
    emit(ev.Event(phase, "phase_started", state.reason))
    started, t0 = _now(), time.perf_counter()
    base = {
        "phase": phase,
        "inputs": inputs,
        "fingerprint": hash_value(inputs),
        "started_at": started,
        "versions": package_versions(),
    }
    try:
        result = _SPECS[phase].load()(context)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, MlwizardError) else f"{type(exc).__name__}: {exc}"
        gate = exc if isinstance(exc, QualityGateError) else None
        ws.write_checkpoint(
            Checkpoint(
                status="failed",
                error=message,
                outputs={n: ws.relative(p) for n, p in (gate.outputs if gate else {}).items()},
                metrics=gate.metrics if gate else {},
                finished_at=_now(),
                duration_s=round(time.perf_counter() - t0, 3),
                **base,
            )
        )
        raise
    checkpoint = Checkpoint(
        status="done",
        outputs={name: ws.relative(path) for name, path in result.outputs.items()},
        metrics=result.metrics,
        gate_failures=result.gate_failures,
        finished_at=_now(),
        duration_s=round(time.perf_counter() - t0, 3),
        **base,
    )
    ws.write_checkpoint(checkpoint)
    emit(ev.Event(phase, "phase_finished", f"done in {checkpoint.duration_s:.1f}s"))
    _raise_gate(phase, checkpoint)
    return _outcome(ws, checkpoint, "done")


def _raise_gate(phase: str, checkpoint: Checkpoint) -> None:
    if checkpoint.gate_failures:
        raise QualityGateError(f"{phase}: " + "; ".join(checkpoint.gate_failures))


def run(
    ws: Workspace,
    phases: Iterable[str],
    *,
    time_budget: float | None = None,
    emit: ev.EventSink = ev.ignore,
    cancel: threading.Event | None = None,
    executor: str | None = None,
) -> RunReport:
    """Run phases in order, stopping at the first failure. Errors land in the report."""
    report = RunReport(project=ws.root)
    config = ws.load_config()
    for phase in phases:
        before = ws.read_checkpoint(phase)
        try:
            report.phases[phase] = run_phase(
                ws,
                phase,
                config=config,
                time_budget=time_budget,
                emit=emit,
                cancel=cancel,
                executor=executor,
            )
        except QualityGateError as exc:
            # Either the phase finished and its results failed a gate (checkpoint done, with
            # gate_failures), or it stopped on one (checkpoint failed, with what explains why).
            checkpoint = ws.read_checkpoint(phase)
            if checkpoint is None:
                outcome = PhaseOutcome("failed")
            elif checkpoint.status != "done":
                outcome = _outcome(ws, checkpoint, "done")
                outcome.status = "failed"
            else:  # the gate also fails when an up-to-date phase is skipped
                skipped = before is not None and before.finished_at == checkpoint.finished_at
                outcome = _outcome(ws, checkpoint, "skipped" if skipped else "done")
            outcome.error = str(exc)
            report.phases[phase] = outcome
            report.error = exc
            break
        except MlwizardError as exc:
            report.phases[phase] = PhaseOutcome("failed", error=str(exc))
            report.error = exc
            break
        except Exception as exc:  # a bug: record it like any failure, keep the traceback as cause
            internal = InternalError(f"{phase}: {type(exc).__name__}: {exc}")
            internal.__cause__ = exc
            report.phases[phase] = PhaseOutcome("failed", error=str(internal))
            report.error = internal
            break
    emit(ev.Event("", "run_finished", "", {"exit_code": report.exit_code}))
    return report


def resolve_phases(name: str) -> list[str]:
    return list(PHASE_NAMES) if name == "all" else [name]
