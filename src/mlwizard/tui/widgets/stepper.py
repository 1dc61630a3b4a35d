"""The phase stepper: the five phases with their state, and the overall progress by weight."""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from mlwizard.core.runner import PHASE_NAMES, PHASE_TITLES

# What the UI shows for a phase: the core's statuses plus "running", which only the UI knows.
RowStatus = Literal["pending", "running", "done", "stale", "failed", "cancelled"]

ICONS: dict[str, str] = {
    "pending": "○",
    "running": "◐",
    "done": "●",
    "stale": "◌",
    "failed": "✘",
    "cancelled": "⊘",
}


class PhaseRow(Static):
    """Two lines of the stepper: key, icon, phase and status; then the reason for the status.
    A click asks to open the phase's screen."""

    DEFAULT_CSS = """
    PhaseRow {
        height: 2;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    PhaseRow:hover { background: $boost; }
    PhaseRow.-current { background: $primary 30%; }
    PhaseRow.-pending { color: $text-muted; }
    PhaseRow.-running { color: $accent; text-style: bold; }
    PhaseRow.-done { color: $success; }
    PhaseRow.-stale { color: $warning; }
    PhaseRow.-failed { color: $error; }
    PhaseRow.-cancelled { color: $warning; }
    """

    STATUS_CLASSES: ClassVar[tuple[str, ...]] = tuple(f"-{s}" for s in ICONS)

    class Selected(Message):
        def __init__(self, phase: str) -> None:
            super().__init__()
            self.phase = phase

    def __init__(self, phase: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.phase = phase
        self.status: RowStatus = "pending"
        self.reason = ""
        self._rendered = False

    def on_mount(self) -> None:
        self.show("pending", "")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Selected(self.phase))

    def show(self, status: RowStatus, reason: str) -> None:
        # Restyling and re-rendering cost the UI thread time: touch only what changed.
        if not self.has_class(f"-{status}"):
            self.remove_class(*self.STATUS_CLASSES)
            self.add_class(f"-{status}")
        if (status, reason) == (self.status, self.reason) and self._rendered:
            return
        self.status, self.reason, self._rendered = status, reason, True
        self.tooltip = reason or None  # the second line, for when the row is folded to one
        key = PHASE_NAMES.index(self.phase) + 1 if self.phase in PHASE_NAMES else 0
        # Text, not markup: reasons quote user input and error messages, which may hold "[...]".
        self.update(
            Text.assemble(
                (f"{key} ", "dim"),
                f"{ICONS[status]} ",
                (f"{PHASE_TITLES.get(self.phase, self.phase):<11}", "bold"),
                status,
                "\n    ",
                (reason, "dim"),
            )
        )


class PhaseStepper(Vertical):
    """The five phases, top to bottom, in pipeline order, and the overall progress."""

    DEFAULT_CSS = """
    PhaseStepper {
        height: auto;
        border: round $primary;
        border-title-color: $text;
        padding: 0 0;
    }
    PhaseStepper > #overall {
        height: 1;
        padding: 0 1;
        margin-top: 1;
    }
    PhaseStepper > #overall Bar { width: 1fr; }
    PhaseStepper > #overall-label { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, phases: tuple[str, ...] = PHASE_NAMES, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.phases = phases
        self.border_title = "Phases"

    def compose(self) -> ComposeResult:
        for phase in self.phases:
            yield PhaseRow(phase, id=f"phase-{phase}")
        yield ProgressBar(total=100, show_eta=False, id="overall")
        yield Static("", id="overall-label")

    def row(self, phase: str) -> PhaseRow:
        return self.query_one(f"#phase-{phase}", PhaseRow)

    def show_progress(self, percent: int) -> None:
        self.query_one("#overall", ProgressBar).update(progress=percent)
        self.query_one("#overall-label", Static).update("overall, by phase weight")

    def mark_current(self, phase: str) -> None:
        for row in self.query(PhaseRow):
            row.set_class(row.phase == phase, "-current")
