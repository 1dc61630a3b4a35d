"""Widgets of the mlwizard TUI. Each carries its own DEFAULT_CSS; the layout lives in app.tcss."""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from mlwizard.core.pipeline import PHASE_WEIGHTS

# What the UI shows for a phase: the core's statuses plus "running", which only the UI knows.
RowStatus = Literal["pending", "running", "done", "stale", "failed"]


_ICONS: dict[str, str] = {
    "pending": "○",
    "running": "◐",
    "done": "●",
    "stale": "◌",
    "failed": "✘",
}


class PhaseRow(Static):
    """One line of the stepper: icon, phase, weight, status and the reason for it."""

    DEFAULT_CSS = """
    PhaseRow {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    PhaseRow.-pending { color: $text-muted; }
    PhaseRow.-running { color: $accent; text-style: bold; }
    PhaseRow.-done { color: $success; }
    PhaseRow.-stale { color: $warning; }
    PhaseRow.-failed { color: $error; }
    """

    STATUS_CLASSES: ClassVar[tuple[str, ...]] = tuple(f"-{s}" for s in _ICONS)

    def __init__(self, phase: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.phase = phase
        self.status: RowStatus = "pending"
        self.reason = ""
        self._rendered = False

    def on_mount(self) -> None:
        self.show("pending", "")

    def show(self, status: RowStatus, reason: str) -> None:
        # Restyling and re-rendering cost the UI thread time: touch only what changed.
        if not self.has_class(f"-{status}"):
            self.remove_class(*self.STATUS_CLASSES)
            self.add_class(f"-{status}")
        if (status, reason) == (self.status, self.reason) and self._rendered:
            return
        self.status, self.reason, self._rendered = status, reason, True
        weight = PHASE_WEIGHTS.get(self.phase, 0)
        # Text, not markup: reasons quote user input and error messages, which may hold "[...]".
        self.update(
            Text.assemble(
                f" {_ICONS[status]} ",
                (f"{self.phase:<11}", "bold"),
                f"{weight:>3}%  ",
                f"{status:<8} ",
                reason,
            )
        )


class PhaseStepper(Vertical):
    """The five phases, top to bottom, in pipeline order."""

    DEFAULT_CSS = """
    PhaseStepper {
        height: auto;
    }
    """

    def __init__(self, phases: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.phases = phases

    def compose(self) -> ComposeResult:
        for phase in self.phases:
            yield PhaseRow(phase, id=f"phase-{phase}")

    def row(self, phase: str) -> PhaseRow:
        return self.query_one(f"#phase-{phase}", PhaseRow)
