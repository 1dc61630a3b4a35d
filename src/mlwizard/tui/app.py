"""The mlwizard TUI: one screen per phase (Textual modes), the phase stepper, and the workers.

Threading model: every call into the core runs in a thread worker (its own group,
`exit_on_error=False`) that reports back only through `post_message`. The App's handlers own the
state (phase statuses, the running phase, the live leaderboard, the service) and tell the phase
screens what changed; only the UI thread touches widgets.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState, get_current_worker

from mlwizard.core import runner
from mlwizard.core.kernel import events as ev
from mlwizard.core.kernel.config import CONFIG_FILE, update_config_file
from mlwizard.core.kernel.errors import CancelledError, MlwizardError
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.runner import PHASE_TITLES
from mlwizard.tui.commands import WizardCommands
from mlwizard.tui.messages import (
    CoreEvent,
    PhaseFailed,
    PhaseRunning,
    ProjectCreated,
    StatusLoaded,
)
from mlwizard.tui.screens import PHASE_SCREENS, HelpScreen, NewProjectScreen
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.service_controls import ServiceControls

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

# While the app runs, Python switches threads every millisecond rather than every 5: a worker
# running core code in Python holds the GIL for a whole interval at a time, and handling one key
# takes the UI thread several hand-overs, so at 5 ms keys could wait ~100 ms during a phase.
# The heavy training runs in worker processes, so the thread running the phase loses little.
UI_SWITCH_INTERVAL = 0.001
NARROW_WIDTH = 100  # columns below which the stepper folds to one line per phase

NO_CONFIG_HELP = (
    f"No {CONFIG_FILE} in {{path}}. Create one from the dialog (or `mlwizard new DIR --data PATH "
    "--target COL`), then press s."
)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, before the app runs.

    The model phase trains in worker processes, whose first start also starts the tracker, which
    passes `sys.stderr.fileno()` to it. While a Textual app runs, stderr is Textual's capture
    object, whose fileno() is -1: the spawn then fails with "bad value(s) in fds_to_keep" and the
    phase with it. Started here, with the real stderr, the tracker is simply reused later.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


class MlwizardApp(ServiceControls):
    TITLE = "mlwizard"
    CSS_PATH = "app.tcss"
    NOTIFICATION_TIMEOUT = 4.0
    MODES: ClassVar[dict[str, Any]] = dict(PHASE_SCREENS)
    COMMANDS = App.COMMANDS | {WizardCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(i), f"show_phase('{phase}')", PHASE_TITLES[phase], show=False)
            for i, phase in enumerate(runner.PHASE_NAMES, start=1)
        ),
        Binding("a", "run_all", "Run all"),
        Binding("c", "cancel", "Cancel"),
        Binding("s", "refresh_status", "Refresh"),
        Binding("question_mark", "help", "Help"),
        Binding("f1", "help", "Help", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, project: Path) -> None:
        super().__init__()
        start_resource_tracker()
        self.workspace = Workspace(project)
        self.sub_title = str(self.workspace.root)
        self.states: list[runner.PhaseState] = []
        self.problem: str | None = None
        self.no_config = False
        self.running_phase: str | None = None
        self.activity = ""  # the last thing the running phase said
        # The model phase's live leaderboard: candidate -> what its events said.
        self.live_runs: dict[str, dict[str, Any]] = {}
        self.model_started: float | None = None
        self.model_budget: float | None = None
        self.budget_input: float | None = None
        # How many refreshes were asked for and applied; tests use them to see the UI respond.
        self.status_requests = 0
        self.status_refreshes = 0
        self._resumed = False
        self._offered_project = False
        self._signature: object = None
        self._pipeline_active = False
        self._cancel: threading.Event | None = None
        self._status_seq = itertools.count(1)  # next() is atomic under the GIL: safe from threads
        self._status_applied = 0
        self._bindings_key: tuple[bool, bool] | None = None
        self._switch_interval = sys.getswitchinterval()
        self._run_failed = False

    def on_mount(self) -> None:
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, UI_SWITCH_INTERVAL))
        self.switch_mode("discovery")
        self.action_refresh_status()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)

    # -- derived state ---------------------------------------------------------------------------
    @property
    def has_project(self) -> bool:
        return self.problem is None and bool(self.states)

    @property
    def progress_percent(self) -> int:
        return sum(runner.PHASE_WEIGHTS.get(s.phase, 0) for s in self.states if s.status == "done")

    def phase_status(self, phase: str) -> str:
        """What the stepper shows for `phase` (the core's status, or "running")."""
        if phase == self.running_phase:
            return "running"
        return next((s.status for s in self.states if s.phase == phase), "pending")

    def first_incomplete(self) -> str:
        for state in self.states:
            if state.status != "done":
                return state.phase
        return runner.PHASE_NAMES[-1]

    def _remaining(self) -> list[str]:
        """Phases from the first one not done to the end, in pipeline order."""
        for i, state in enumerate(self.states):
            if state.status != "done":
                return [s.phase for s in self.states[i:]]
        return []

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides a key from the footer while it can do nothing: the footer stays short.
        if action == "run_all":
            return self.has_project and not self._pipeline_active
        if action == "cancel":
            return self._pipeline_active
        return True

    def action_show_phase(self, phase: str) -> None:
        self.show_phase(phase)

    def show_phase(self, phase: str) -> None:
        if phase in self.MODES and self.current_mode != phase:
            self.switch_mode(phase)

    def action_run_all(self) -> None:
        self.run_phases(self._remaining())

    def action_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.notify("Cancelling…", severity="warning")

    def action_refresh_status(self) -> None:
        self.status_requests += 1
        self._load_status()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_leave_field(self) -> None:
        self.screen.set_focus(None)

    async def action_quit(self) -> None:
        # A thread cannot be killed: ask the core to stop so the app does not wait for the phase.
        if self._cancel is not None:
            self._cancel.set()
        self.shutdown_service()
        self.exit(0)

    def run_phases(self, phases: list[str], time_budget: float | None = None) -> None:
        if self._pipeline_active:
            self.notify(f"{self.running_phase or 'A phase'} is running; c cancels it.")
            return
        if not self.has_project:
            self.notify(self.problem or "No project here yet.", severity="warning", markup=False)
            return
        if not phases:
            self.notify("All phases are done.")
            return
        if time_budget is None and "model" in phases and "model" in self.phase_screens:
            time_budget = self.budget_input  # what the model screen's field holds
            if time_budget is None:
                self.notify("The time budget must be at least 1 second.", severity="error")
                return
        self._cancel = threading.Event()
        self._run_failed = False
        self._pipeline_active = True
        self.running_phase = phases[0]
        self.model_budget = time_budget
        self._render_states()
        self._sync_bindings()
        self._run_pipeline(phases, self._cancel, time_budget)

    def save_config(self, updates: dict[str, dict[str, Any]], what: str) -> bool:
        """Write `updates` into mlwizard.toml (comments kept); False, after saying why, if not."""
        if self._pipeline_active:
            self.notify("Wait for the running phase (or cancel it) first.", severity="warning")
            return False
        try:
            update_config_file(self.workspace.config_path, updates)
        except MlwizardError as exc:
            self.notify(str(exc), title="Not saved", severity="error", markup=False)
            return False
        except OSError as exc:
            self.notify(f"{exc}", title="Not saved", severity="error", markup=False)
            return False
        self.notify(f"Saved {what} to {CONFIG_FILE}.", markup=False)
        self.action_refresh_status()
        return True

    # -- workers: call the core, post messages, nothing else --------------------------------------
    def _read_status(self) -> StatusLoaded:
        seq = next(self._status_seq)
        if not self.workspace.exists():
            return StatusLoaded(seq, [], NO_CONFIG_HELP.format(path=self.workspace.root), True)
        try:
            return StatusLoaded(seq, runner.project_status(self.workspace))
        except MlwizardError as exc:
            return StatusLoaded(seq, [], str(exc))

    @work(thread=True, exclusive=True, exit_on_error=False, group="status")
    def _load_status(self) -> None:
        message = self._read_status()
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pipeline")
    def _run_pipeline(
        self, phases: list[str], cancel: threading.Event, time_budget: float | None
    ) -> None:
        def emit(event: ev.Event) -> None:
            self.post_message(CoreEvent(event))

        for phase in phases:
            if cancel.is_set():
                break
            self.post_message(PhaseRunning(phase))
            try:
                runner.run_phase(
                    self.workspace, phase, emit=emit, cancel=cancel, time_budget=time_budget
                )
            except MlwizardError as exc:
                cancelled = isinstance(exc, CancelledError)
                self.post_message(PhaseFailed(phase, str(exc), cancelled))
                break
            finally:
                # Also on an unexpected error, which Worker.StateChanged turns into a notification.
                self.post_message(self._read_status())

    @work(thread=True, exclusive=True, exit_on_error=False, group="scaffold")
    def _create_project(self, data: str, target: str) -> None:
        from mlwizard.core.scaffold import configure_project

        root = self.workspace.root
        try:
            configure_project(root, data, target)
        except MlwizardError as exc:
            self.post_message(ProjectCreated(str(root), str(exc)))
            return
        self.post_message(ProjectCreated(str(root)))

    # -- handlers: own the state, touch the widgets ----------------------------------------------
    @on(StatusLoaded)
    def _on_status_loaded(self, message: StatusLoaded) -> None:
        if message.seq < self._status_applied:
            return
        self._status_applied = message.seq
        self.status_refreshes += 1
        self.states, self.problem, self.no_config = (
            message.states,
            message.problem,
            message.no_config,
        )
        self._render_states()
        self._sync_bindings()
        signature = (
            message.problem,
            tuple(
                (s.status, s.reason, s.checkpoint.finished_at if s.checkpoint else "")
                for s in message.states
            ),
        )
        if signature != self._signature:
            self._signature = signature
            for screen in self.phase_screens.values():
                if screen.is_mounted:
                    screen.reload()
        if message.no_config and not self._offered_project:
            self._offered_project = True
            self.push_screen(NewProjectScreen(self.workspace.root), self._on_new_project)
        elif message.problem is not None and not message.no_config:
            self.notify(message.problem, title="Project", severity="error", markup=False)
        elif not self._resumed and message.states:
            # Reopening resumes at the first phase that is not done.
            self._resumed = True
            self.show_phase(self.first_incomplete())

    def _on_new_project(self, answer: tuple[str, str] | None) -> None:
        if answer is not None:
            self._create_project(*answer)

    @on(ProjectCreated)
    def _on_project_created(self, message: ProjectCreated) -> None:
        if message.error:
            self.notify(message.error, title="Not created", severity="error", markup=False)
            self._offered_project = False
        else:
            self.notify(f"Created {CONFIG_FILE} in {message.root}.", markup=False)
        self.action_refresh_status()

    @on(PhaseRunning)
    def _on_phase_running(self, message: PhaseRunning) -> None:
        self.running_phase = message.phase
        self.activity = ""
        if message.phase == "model":
            self.live_runs = {}
            self.model_started = time.monotonic()
            self.tell_screens("live")
        self._render_states()

    @on(CoreEvent)
    def _on_core_event(self, message: CoreEvent) -> None:
        event = message.event
        if event.message:
            self.activity = f"{event.phase}: {event.message}" if event.phase else event.message
            self._show_activity()
        run = event.payload
        if isinstance(run, ev.StepProgress) and run.is_phase_step and run.label:
            # Where the phase is: "data: step 2/5, profile".
            self.activity = f"{event.phase}: step {run.done + 1}/{run.total}, {run.label}"
            self._show_activity()
        if isinstance(run, ev.CandidateStarted):
            self.live_runs[run.candidate] = {"status": "running", "message": event.message}
        elif isinstance(run, ev.CandidateFinished):
            self.live_runs[run.candidate] = {
                "status": run.status,
                "score": run.score,
                "duration_s": run.duration_s,
                "deployable": run.deployable,
                "message": event.message,
            }
        if isinstance(run, ev.CandidateStarted | ev.CandidateFinished):
            self.tell_screens("live")

    @on(PhaseFailed)
    def _on_phase_failed(self, message: PhaseFailed) -> None:
        self._run_failed = True
        severity: SeverityLevel = "warning" if message.cancelled else "error"
        self.notify(message.message, title=message.phase, severity=severity, markup=False)

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.node is not self:
            return  # a screen's worker: the screen says what went wrong
        if event.state == WorkerState.ERROR:
            error = worker.error
            self.notify(
                f"{type(error).__name__}: {error}",
                title="Unexpected error",
                severity="error",
                markup=False,
            )
            if worker.group == "service":
                self.service_busy = None
                self._show_service()
        if worker.group == "pipeline" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            finished = self.running_phase
            self._pipeline_active = False
            self._cancel = None
            self.running_phase = None
            self.model_started = None
            self._render_states()
            self._sync_bindings()
            for screen in self.phase_screens.values():
                screen.reload()
            if event.state == WorkerState.SUCCESS and finished and not self._run_failed:
                self._hint_next()

    # -- rendering -------------------------------------------------------------------------------
    def _render_states(self) -> None:
        self.tell_screens("status")

    def _show_activity(self) -> None:
        screen = self.screen
        if isinstance(screen, PhaseScreen):
            screen.show_activity(self.activity)

    def _hint_next(self) -> None:
        states = {s.phase: s for s in self.states}
        done = [p for p in runner.PHASE_NAMES if p in states and states[p].status == "done"]
        nxt = self.first_incomplete()
        if len(done) == len(runner.PHASE_NAMES):
            self.notify("Every phase is done.")
        elif nxt in runner.PHASE_NAMES and done:
            key = runner.PHASE_NAMES.index(nxt) + 1
            self.notify(f"Next: {PHASE_TITLES[nxt]} (press {key}).")

    def _sync_bindings(self) -> None:
        """Refresh the footer only when what the keys can do changed: it rebuilds its widgets."""
        key = (self.has_project, self._pipeline_active)
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()


def run_tui(project: Path) -> int:
    """Run the app on `project` until the user quits; return the exit code."""
    app = MlwizardApp(project)
    try:
        app.run()
    finally:
        app.shutdown_service()
    return app.return_code or 0
