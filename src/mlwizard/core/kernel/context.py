"""What a phase function receives (`PhaseContext`) and returns (`PhaseResult`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.errors import BadInputError, CancelledError
from mlwizard.core.kernel.workspace import Checkpoint, Workspace

if TYPE_CHECKING:
    import pyarrow as pa


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
    # Warnings summarised by worker processes (kernel.libwarnings); the runner adds its own.
    library_warnings: list[dict[str, Any]] = field(default_factory=list)

    def artifact(self, name: str) -> Path:
        """Where this phase writes its artifact `name` (write it atomically)."""
        path = self.workspace.artifact_dir(self.phase) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # Outputs registered by the `write_*` helpers; the runner records them in the checkpoint
    # beside those the phase returns, so no written artifact can be left out of it.
    registered: dict[str, Path] = field(default_factory=dict)

    def upstream_artifact(self, phase: str, name: str) -> Path:
        return self.workspace.resolve(self.upstream[phase].outputs[name])

    def require(self, phase: str, name: str) -> Path:
        """An upstream phase's artifact `name`; one clear error if it was never recorded or has
        gone missing since."""
        checkpoint = self.upstream.get(phase)
        if checkpoint is None or name not in checkpoint.outputs:
            raise BadInputError(f"the {phase} phase recorded no '{name}' artifact; rerun it")
        path = self.workspace.resolve(checkpoint.outputs[name])
        if not path.exists():
            raise BadInputError(f"{path}: missing; rerun `mlwizard run --phase {phase}`")
        return path

    def register(self, name: str, path: Path) -> Path:
        """Record `path` (written by the phase) as its output `name`."""
        self.registered[name] = path
        return path

    def write_json(self, name: str, filename: str, obj: Any) -> Path:
        """Write `obj` as JSON to this phase's artifact `filename`, atomically, as output `name`."""
        return self.register(name, atomic.write_json(self.artifact(filename), obj))

    def write_text(self, name: str, filename: str, text: str) -> Path:
        return self.register(name, atomic.write_text(self.artifact(filename), text))

    def write_parquet(self, name: str, filename: str, table: pa.Table) -> Path:
        """Write an Arrow table to `filename` atomically, as output `name`."""
        import pyarrow.parquet as pq

        path = self.artifact(filename)
        with atomic.atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return self.register(name, path)

    def message(self, text: str, **data: Any) -> None:
        self.emit(ev.Event(self.phase, "message", text, data))

    def steps(self, *names: str) -> PhaseSteps:
        """The phase's named steps, in order, for the shells' progress (`PhaseSteps`)."""
        return PhaseSteps(self, names)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise CancelledError(f"phase {self.phase} cancelled")


@dataclass
class PhaseSteps:
    """Reports which of a phase's steps is running: `begin(name)` as each starts, `finish()` once
    all are done, each as one `StepProgress(PHASE_STEPS, ...)` event. The core only emits;
    the CLI draws a bar (or a plain line), the TUI shows the step in its activity line."""

    ctx: PhaseContext
    names: tuple[str, ...]

    def begin(self, name: str) -> None:
        self._emit(self.names.index(name), name)

    def finish(self) -> None:
        self._emit(len(self.names), "")

    def _emit(self, done: int, label: str) -> None:
        step = ev.StepProgress(ev.PHASE_STEPS, done, len(self.names), label)
        self.ctx.emit(ev.Event(self.ctx.phase, "message", "", payload=step))


@dataclass
class PhaseResult:
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    gate_failures: list[str] = field(default_factory=list)
