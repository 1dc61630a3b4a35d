"""Messages that thread workers post back to the UI thread: small dataclasses, nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from mlwizard.core import runner
from mlwizard.core.kernel import events as ev


@dataclass
class StatusLoaded(Message):
    """A fresh read of the checkpoints. `problem` is set (and `states` empty) when the project
    cannot be read. `seq` orders reads, so an older read finishing late never wins."""

    seq: int
    states: list[runner.PhaseState]
    problem: str | None = None
    no_config: bool = False


@dataclass
class PhaseRunning(Message):
    phase: str


@dataclass
class CoreEvent(Message):
    event: ev.Event


@dataclass
class PhaseFailed(Message):
    """The core raised an MlwizardError: a problem the user can act on, not a crash."""

    phase: str
    message: str
    cancelled: bool = False


@dataclass
class ViewLoaded(Message):
    """A screen's artifacts, read by a worker (a `loaders.*View`)."""

    phase: str
    view: Any


@dataclass
class ColumnsLoaded(Message):
    read: Any  # loaders.ColumnsRead


@dataclass
class ProjectCreated(Message):
    root: str
    error: str | None = None


@dataclass
class ServiceStarted(Message):
    service: Any  # service.LocalService


@dataclass
class ServiceStopped(Message):
    reason: str


@dataclass
class ServiceAnswered(Message):
    request: Any
    status: int | None
    body: Any
    error: str | None = None
