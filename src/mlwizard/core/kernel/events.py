"""Progress events: how long-running phases report to whichever shell is listening."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["phase_started", "phase_finished", "phase_skipped", "message", "run_finished"]


@dataclass(frozen=True)
class Event:
    phase: str
    kind: EventKind
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default sink."""
