"""The mlwizard TUI: phase status, progress and a log, with keys to run and cancel phases.

Threading model: every call into the core runs in a thread worker that reports back only through
`post_message`. The App's handlers own all state and are the only code touching widgets.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Header, Label, Log, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from mlwizard.core import events as ev
from mlwizard.core import pipeline
from mlwizard.core.config import CONFIG_FILE
from mlwizard.core.errors import CancelledError, MlwizardError
from mlwizard.core.workspace import Workspace
from mlwizard.tui.widgets import PhaseStepper

NO_CONFIG_HELP = (
    f"No {CONFIG_FILE} in {{path}}.\n\n"
    "Create a project first:\n\n"
    "    mlwizard new DIR --data PATH --target COL\n\n"
    "then press s to refresh (or q to quit)."
)


# -- messages from workers ----------------------------------------------------------------------
@dataclass
class StatusLoaded(Message):
    """A fresh read of the checkpoints. `problem` is set (and `states` empty) when the project
    cannot be read. `seq` orders reads, so an older read finishing late never wins."""

    seq: int
    states: list[pipeline.PhaseState]
    problem: str | None = None


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


# -- the app -------------------------------------------------------------------------------------
class MlwizardApp(App[int]):
    TITLE = "mlwizard"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_next", "Run next"),
        Binding("a", "run_all", "Run all"),
        Binding("c", "cancel", "Cancel"),
        Binding("s", "refresh_status", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, project: Path) -> None:
        super().__init__()
        self.workspace = Workspace(project)
        self.sub_title = str(self.workspace.root)
        self.states: list[pipeline.PhaseState] = []
        self.problem: str | None = None
        self.running_phase: str | None = None
        # How many refreshes were asked for and applied; tests use them to see the UI respond.
        self.status_requests = 0
        self.status_refreshes = 0
        self._pipeline_active = False
        self._cancel: threading.Event | None = None
        self._status_seq = itertools.count(1)  # next() is atomic under the GIL: safe from threads
        self._status_applied = 0
        self._bindings_key: tuple[bool, bool] | None = None
        # Held, not queried: handlers may still run while the app shuts its screens down.
        self._notice = Static(id="notice")
        self._progress = ProgressBar(total=100, show_eta=False, id="progress")
        self._stepper = PhaseStepper(pipeline.PHASE_NAMES, id="phases")
        self._log_view = Log(max_lines=2000, id="log")

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="main"):
            yield self._notice
            with Horizontal(id="progress-row"):
                yield Label("Progress", id="progress-label")
                yield self._progress
            yield self._stepper
            yield self._log_view
        yield Footer()

    def on_mount(self) -> None:
        self._stepper.border_title = "Phases"
        self._log_view.border_title = "Log"
        self.action_refresh_status()

    # -- derived state ---------------------------------------------------------------------------
    @property
    def has_project(self) -> bool:
        return self.problem is None and bool(self.states)

    @property
    def progress_percent(self) -> int:
        return sum(
            pipeline.PHASE_WEIGHTS.get(s.phase, 0) for s in self.states if s.status == "done"
        )

    def phase_status(self, phase: str) -> str:
        """What the stepper shows for `phase` (the core's status, or "running")."""
        return self._stepper.row(phase).status

    def _remaining(self) -> list[str]:
        """Phases from the first one not done to the end, in pipeline order."""
        for i, state in enumerate(self.states):
            if state.status != "done":
                return [s.phase for s in self.states[i:]]
        return []

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run_next", "run_all"):
            return True if self.has_project and not self._pipeline_active else None
        if action == "cancel":
            return True if self._pipeline_active else None
        return True

    def action_run_next(self) -> None:
        self._start(self._remaining()[:1])

    def action_run_all(self) -> None:
        self._start(self._remaining())

    def action_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._log(f"cancelling {self.running_phase or 'run'}…")
            self.notify("Cancelling…", severity="warning")

    def action_refresh_status(self) -> None:
        self.status_requests += 1
        self._load_status()

    async def action_quit(self) -> None:
        # A thread cannot be killed: ask the core to stop so the app does not wait for the phase.
        if self._cancel is not None:
            self._cancel.set()
        self.exit(0)

    def _start(self, phases: list[str]) -> None:
        if not phases:
            self.notify("All phases are done.")
            return
        self._cancel = threading.Event()
        self._pipeline_active = True
        self.running_phase = phases[0]
        self._render_states()
        self._sync_bindings()
        self._log(f"run: {', '.join(phases)}")
        self._run_pipeline(phases, self._cancel)

    # -- workers: call the core, post messages, nothing else --------------------------------------
    def _read_status(self) -> StatusLoaded:
        seq = next(self._status_seq)
        if not self.workspace.exists():
            return StatusLoaded(seq, [], NO_CONFIG_HELP.format(path=self.workspace.root))
        try:
            return StatusLoaded(seq, pipeline.project_status(self.workspace))
        except MlwizardError as exc:
            return StatusLoaded(seq, [], str(exc))

    @work(thread=True, exclusive=True, exit_on_error=False, group="status")
    def _load_status(self) -> None:
        message = self._read_status()
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pipeline")
    def _run_pipeline(self, phases: list[str], cancel: threading.Event) -> None:
        def emit(event: ev.Event) -> None:
            self.post_message(CoreEvent(event))

        for phase in phases:
            if cancel.is_set():
                break
            self.post_message(PhaseRunning(phase))
            try:
                pipeline.run_phase(self.workspace, phase, emit=emit, cancel=cancel)
            except MlwizardError as exc:
                cancelled = isinstance(exc, CancelledError)
                self.post_message(PhaseFailed(phase, str(exc), cancelled))
                break
            finally:
                # Also on an unexpected error, which Worker.StateChanged turns into a notification.
                self.post_message(self._read_status())

    # -- handlers: own the state, touch the widgets ----------------------------------------------
    @on(StatusLoaded)
    def _on_status_loaded(self, message: StatusLoaded) -> None:
        if message.seq < self._status_applied:
            return
        self._status_applied = message.seq
        self.status_refreshes += 1
        if message.problem != self.problem:
            self._notice.update(message.problem or "")
            self._notice.set_class(message.problem is not None, "-visible")
        self.states, self.problem = message.states, message.problem
        self._render_states()
        self._sync_bindings()

    @on(PhaseRunning)
    def _on_phase_running(self, message: PhaseRunning) -> None:
        self.running_phase = message.phase
        self._render_states()

    @on(CoreEvent)
    def _on_core_event(self, message: CoreEvent) -> None:
        event = message.event
        text = f"{event.phase}: {event.kind.replace('_', ' ')}" if event.phase else event.kind
        self._log(f"{text} — {event.message}" if event.message else text)

    @on(PhaseFailed)
    def _on_phase_failed(self, message: PhaseFailed) -> None:
        self._log(f"{message.phase}: {message.message}")
        severity = "warning" if message.cancelled else "error"
        self.notify(message.message, title=message.phase, severity=severity, markup=False)

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = f"{type(error).__name__}: {error}"
            self._log(f"error: {text}")
            self.notify(text, title="Unexpected error", severity="error", markup=False)
        if worker.group == "pipeline" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._pipeline_active = False
            self._cancel = None
            self.running_phase = None
            self._render_states()
            self._sync_bindings()

    # -- rendering -------------------------------------------------------------------------------
    def _render_states(self) -> None:
        self._stepper.display = self.problem is None
        for state in self.states:
            row = self._stepper.row(state.phase)
            if state.phase == self.running_phase:
                row.show("running", "running… (c to cancel)")
                continue
            reason = state.reason
            if state.status == "done" and state.checkpoint and state.checkpoint.gate_failures:
                reason = "quality gate failed: " + "; ".join(state.checkpoint.gate_failures)
            row.show(state.status, reason)
        self._progress.update(progress=self.progress_percent)

    def _sync_bindings(self) -> None:
        """Refresh the footer only when what the keys can do changed: it rebuilds its widgets."""
        key = (self.has_project, self._pipeline_active)
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()

    def _log(self, line: str) -> None:
        self._log_view.write_line(line)


def run_tui(project: Path) -> int:
    """Run the app on `project` until the user quits; return the exit code."""
    app = MlwizardApp(project)
    app.run()
    return app.return_code or 0
