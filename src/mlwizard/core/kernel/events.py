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
    """A long step's progress, for progress bars: `done` of `total` units (total 0: unknown)."""

    step: str  # e.g. "candidates", "export"
    done: int
    total: int
    label: str = ""


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
