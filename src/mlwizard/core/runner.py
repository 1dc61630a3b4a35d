"""The runner that keeps checkpoints honest: it runs a phase only when it is not up to date,
hands it a PhaseContext, and records its checkpoint (inputs' hashes, outputs, metrics) last.

The shells import the runner only: it also carries the phase table (`phase_table`) and where
each phase stands (`status`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel import libwarnings
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.errors import (
    CancelledError,
    InternalError,
    MlwizardError,
    QualityGateError,
    UpstreamNotReadyError,
)
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.versions import package_versions
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.phase_table import (
    PHASE_NAMES,
    PHASE_TITLES,
    PHASE_WEIGHTS,
    PHASES,
    PhaseSpec,
    PhaseStatus,
    spec,
    with_upstream,
)
from mlwizard.core.status import PhaseState, current_inputs, phase_state, project_status

__all__ = [  # the shells' one door into the core's pipeline
    "PHASES",
    "PHASE_NAMES",
    "PHASE_TITLES",
    "PHASE_WEIGHTS",
    "PhaseOutcome",
    "PhaseSpec",
    "PhaseState",
    "PhaseStatus",
    "RunReport",
    "current_inputs",
    "phase_state",
    "project_status",
    "resolve_phases",
    "run",
    "run_phase",
    "spec",
    "with_upstream",
]


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
) -> PhaseOutcome:
    """Run one phase if it is not up to date. Raises on failure, after recording it."""
    config = config or ws.load_config()
    state = phase_state(ws, config, phase)
    if state.up_to_date and not force:
        assert state.checkpoint is not None
        emit(ev.Event(phase, "phase_skipped", "up to date"))
        _raise_gate(phase, state.checkpoint)
        return _outcome(ws, state.checkpoint, "skipped")

    inputs, not_ready = current_inputs(ws, config, phase)
    if not_ready:
        first = not_ready[0]
        up = phase_state(ws, config, first)
        if up.up_to_date:  # finished, but its results failed a quality gate
            assert up.checkpoint is not None
            raise QualityGateError(
                f"phase '{phase}' needs '{first}', whose results failed a quality gate: "
                + "; ".join(up.checkpoint.gate_failures)
            )
        raise UpstreamNotReadyError(
            f"phase '{phase}' needs '{first}', which is {up.status}; run "
            f"`mlwizard run --phase {first}` (or `--phase {phase} --with-upstream` to run "
            "whatever it needs)"
        )
    upstream = {up: ws.read_checkpoint(up) for up in spec(phase).upstream}
    context = PhaseContext(
        phase=phase,
        workspace=ws,
        config=config,
        upstream={k: v for k, v in upstream.items() if v is not None},
        time_budget=time_budget,
        emit=emit,
        cancel=cancel or threading.Event(),
    )
    emit(ev.Event(phase, "phase_started", state.reason))
    started, t0 = timestamp(), time.perf_counter()
    base: dict[str, Any] = {
        "phase": phase,
        "inputs": inputs,
        "fingerprint": hash_value(inputs),
        "started_at": started,
        "versions": package_versions(),
    }
    try:
        with libwarnings.captured() as caught:
            result = spec(phase).load()(context)
        outputs = {**context.registered, **result.outputs}
        missing = [name for name in spec(phase).outputs if name not in outputs]
        if missing:  # a bug in the phase, not the user's problem: say which output it forgot
            raise InternalError(f"phase {phase} did not record its output(s) {', '.join(missing)}")
    except BaseException as exc:
        cancelled = isinstance(exc, CancelledError | KeyboardInterrupt)
        if cancelled:  # the user stopped it (c in the TUI, Ctrl-C): not a failure
            message = f"phase {phase} cancelled"
        elif isinstance(exc, MlwizardError):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
        gate = exc if isinstance(exc, QualityGateError) else None
        ws.write_checkpoint(
            Checkpoint(
                status="cancelled" if cancelled else "failed",
                error=message,
                outputs={n: ws.relative(p) for n, p in (gate.outputs if gate else {}).items()},
                metrics=gate.metrics if gate else {},
                finished_at=timestamp(),
                duration_s=round(time.perf_counter() - t0, 3),
                **base,
            )
        )
        raise
    library = libwarnings.merge([libwarnings.summarise(caught), context.library_warnings])
    if library:  # summarised once, not streamed on stderr
        result.metrics["library_warnings"] = library
        context.message(libwarnings.one_line(library))
    checkpoint = Checkpoint(
        status="done",
        outputs={name: ws.relative(path) for name, path in outputs.items()},
        metrics=result.metrics,
        gate_failures=result.gate_failures,
        finished_at=timestamp(),
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
) -> RunReport:
    """Run phases in order, stopping at the first failure. Errors land in the report."""
    report = RunReport(project=ws.root)
    config = ws.load_config()
    for phase in phases:
        before = ws.read_checkpoint(phase)
        try:
            report.phases[phase] = run_phase(
                ws, phase, config=config, time_budget=time_budget, emit=emit, cancel=cancel
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


def resolve_phases(name: str, upstream: bool = False) -> list[str]:
    """The phases `run --phase NAME` runs: all of them, one, or one and what it needs."""
    if name == "all":
        return list(PHASE_NAMES)
    return with_upstream(name) if upstream else [name]
