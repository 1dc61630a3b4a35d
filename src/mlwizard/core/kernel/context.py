"""What a phase function receives (`PhaseContext`) and returns (`PhaseResult`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.errors import CancelledError
from mlwizard.core.kernel.workspace import Checkpoint, Workspace


@dataclass
class PhaseContext:
    """What a phase function receives. Phases find inputs and place outputs through it."""

    phase: str
    workspace: Workspace
    config: Config
    upstream: dict[str, Checkpoint]
    time_budget: float | None = None
    executor: str | None = None  # overrides [model] executor for this run
    emit: ev.EventSink = ev.ignore
    cancel: threading.Event = field(default_factory=threading.Event)

    def artifact(self, name: str) -> Path:
        """Where this phase writes its artifact `name` (write it atomically)."""
        path = self.workspace.artifact_dir(self.phase) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def upstream_artifact(self, phase: str, name: str) -> Path:
        return self.workspace.resolve(self.upstream[phase].outputs[name])

    def message(self, text: str, **data: Any) -> None:
        self.emit(ev.Event(self.phase, "message", text, data))

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise CancelledError(f"phase {self.phase} cancelled")


@dataclass
class PhaseResult:
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    gate_failures: list[str] = field(default_factory=list)
