"""What every phase screen shares: the stepper beside the phase's own body, a notice line, keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from mlwizard.core import runner
from mlwizard.core.runner import PHASE_TITLES
from mlwizard.tui.messages import ViewLoaded
from mlwizard.tui.widgets import PhaseStepper
from mlwizard.tui.widgets.stepper import PhaseRow
from mlwizard.tui.wizard import Change, Wizard

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace


class PhaseScreen(Screen[None]):
    """One phase: `compose_body` yields its widgets; `reload` reads its artifacts off the UI
    thread with `read_view` (a worker of the screen's own group) and `show_view` puts them on
    screen. The App says what changed through `wizard_changed`."""

    PHASE: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "run_phase", "Run phase")]

    def __init__(self) -> None:
        super().__init__(id=f"screen-{self.PHASE}")
        self.view: object | None = None
        self.views_loaded = 0  # tests wait on it

    @property
    def wizard(self) -> Wizard:
        return cast("Wizard", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="frame"):
            yield PhaseStepper(id="stepper")
            with Vertical(id="body"):
                yield Static("", id="notice", classes="notice")
                yield from self.compose_body()
                yield Static("", id="activity")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.title = f"mlwizard · {PHASE_TITLES[self.PHASE]}"
        self.query_one(PhaseStepper).mark_current(self.PHASE)
        self.wizard.register_screen(self)

    def on_screen_resume(self) -> None:
        self.show_states()
        self.reload()

    # -- state from the app ----------------------------------------------------------------------
    def wizard_changed(self, what: Change) -> None:
        """Part of the App's state changed; screens that show more than the statuses extend it."""
        if what == "status":
            self.show_states()

    def show_states(self) -> None:
        app = self.wizard
        stepper = self.query_one(PhaseStepper)
        for state in app.states:
            row = stepper.row(state.phase)
            if state.phase == app.running_phase:
                row.show("running", "running… (c to cancel)")
                continue
            row.show(state.status, f"{runner.PHASE_WEIGHTS[state.phase]}% · {state.reason}")
        stepper.show_progress(app.progress_percent)
        notice = self.query_one("#notice", Static)
        own = self.state()
        problem = app.problem or ""
        if not problem and own is not None and own.status == "failed" and own.fix:
            problem = f"{own.reason} — to fix: {own.fix}"
            if own.phase == app.running_phase:
                problem = ""
        if str(notice.content) != problem:
            notice.update(problem)
        notice.set_class(bool(problem), "-visible")

    def show_activity(self, text: str) -> None:
        """The last thing the running phase said (one line)."""
        self.query_one("#activity", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))

    def state(self) -> runner.PhaseState | None:
        return next((s for s in self.wizard.states if s.phase == self.PHASE), None)

    # -- artifacts -------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read this phase's artifacts again (a worker); `show_view` follows."""
        self.run_worker(
            self._load_view,
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group=f"load-{self.PHASE}",
        )

    def _load_view(self) -> None:
        view = self.read_view(self.wizard.workspace)
        if view is not None and not get_current_worker().is_cancelled:
            self.post_message(ViewLoaded(self.PHASE, view))

    def read_view(self, workspace: Workspace) -> object | None:
        """The phase's artifacts as a plain view object (`loaders`); runs off the UI thread."""
        return None

    @on(ViewLoaded)
    def _on_view_loaded(self, message: ViewLoaded) -> None:
        message.stop()
        self.view = message.view
        self.views_loaded += 1
        self.show_view(message.view)

    def show_view(self, view: object) -> None:
        """Put a freshly loaded view on screen."""

    # -- actions ---------------------------------------------------------------------------------
    def action_run_phase(self) -> None:
        self.wizard.run_phases([self.PHASE])

    @on(PhaseRow.Selected)
    def _on_row_selected(self, message: PhaseRow.Selected) -> None:
        self.wizard.show_phase(message.phase)

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                f"{type(error).__name__}: {error}",
                title="Could not load",
                severity="error",
                markup=False,
            )
