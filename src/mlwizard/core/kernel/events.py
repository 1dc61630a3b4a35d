"""Progress events: how long-running phases report to whichever shell is listening."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["phase_started", "phase_finished", "phase_skipped", "message", "run_finished"]


@dataclass(frozen=True)
class CandidateStarted:
    """The model phase started training a candidate in a worker."""

    candidate: str
    share_s: float  # its share of the time budget


@dataclass(frozen=True)
class CandidateFinished:
    """A candidate's run ended (done, failed, skipped or cancelled), or was reused."""

    candidate: str
    status: str
    score: float | None
    duration_s: float | None
    deployable: bool
    reused: bool = False


@dataclass(frozen=True)
class StepProgress:
    """A long step's progress, for progress bars: `done` of `total` units (total 0: unknown).

    `step` PHASE_STEPS is the phase's own named steps (`PhaseContext.steps`): `label` is the step
    now running, `done` how many came before it; `done == total` (no label) when all are done.
    Other steps (the model phase's "candidates") count units: `label` is the last one finished.
    """

    step: str  # e.g. "candidates", PHASE_STEPS
    done: int
    total: int
    label: str = ""

    @property
    def is_phase_step(self) -> bool:
        return self.step == PHASE_STEPS


PHASE_STEPS = "steps"


Payload = CandidateStarted | CandidateFinished | StepProgress | None


@dataclass(frozen=True)
class Event:
    phase: str
    kind: EventKind
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # free-form details; shells read `payload`
    payload: Payload = None


EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default sink."""
