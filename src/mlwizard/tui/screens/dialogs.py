"""Modal dialogs: the help screen, and the form that creates a project in a bare folder."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("1 … 5", "open a phase: Discovery, Data, Model, Deployment, Operations"),
    ("click a phase", "the same, with the mouse"),
    ("r", "run this screen's phase (Discovery: ctrl+r saves the form first)"),
    ("a", "run every phase that is not up to date, in order"),
    ("c", "cancel the running phase"),
    ("s", "read the checkpoints again"),
    ("ctrl+s", "Discovery: save the form to mlwizard.toml"),
    ("x", "Data: keep or exclude the highlighted column"),
    ("b", "Model: edit the time budget"),
    ("u / d / t", "Deployment: start / stop the service, try a sample request"),
    ("tab / shift+tab", "move between fields and tables"),
    ("escape", "leave a text field (so single-letter keys work again)"),
    ("ctrl+p", "command palette: every main action by name"),
    ("?", "this help"),
    ("q", "quit (cancels a running phase, stops the service)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80%;
        max-width: 90;
        height: auto;
        max-height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in HELP_KEYS:
            table.add_row(key, what)
        with VerticalScroll() as scroll:
            scroll.border_title = "mlwizard — keys"
            scroll.border_subtitle = "escape to close"
            yield Static(table)
            yield Static(
                "\nThe TUI reads and writes the same checkpoints as `mlwizard run`: a phase done "
                "in one shows as done in the other. Stale means its inputs changed since it ran."
            )

    def action_close(self) -> None:
        self.dismiss(None)


class NewProjectScreen(ModalScreen[tuple[str, str] | None]):
    """Asks for a data file and a target column; dismisses with them, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    NewProjectScreen { align: center middle; }
    NewProjectScreen > Vertical {
        width: 76;
        max-width: 95%;
        height: auto;
        border: round $warning;
        background: $surface;
        padding: 0 1;
    }
    NewProjectScreen .row { height: auto; }
    NewProjectScreen Label { width: 14; padding: 1 0 0 0; }
    NewProjectScreen Input { width: 1fr; }
    NewProjectScreen #new-buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Create a project here?"
            yield Static(
                f"There is no mlwizard.toml in {self.root}.\n"
                "Give a data file and the column to predict to create one "
                "(or escape to look around first)."
            )
            with Horizontal(classes="row"):
                yield Label("Data file")
                yield Input(placeholder="path/to/data.csv", id="new-data")
            with Horizontal(classes="row"):
                yield Label("Target column")
                yield Input(placeholder="the column to predict", id="new-target")
            with Horizontal(id="new-buttons"):
                yield Button("Cancel", id="new-cancel")
                yield Button("Create", id="new-create", variant="primary")

    @on(Input.Submitted, "#new-data")
    def _next_field(self) -> None:
        self.query_one("#new-target", Input).focus()

    @on(Input.Submitted, "#new-target")
    @on(Button.Pressed, "#new-create")
    def action_create(self) -> None:
        data = self.query_one("#new-data", Input).value.strip()
        target = self.query_one("#new-target", Input).value.strip()
        if not data or not target:
            self.notify("Give both the data file and the target column.", severity="error")
            return
        path = Path(data).expanduser()
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            self.notify(f"{path}: file not found", severity="error", markup=False)
            return
        self.dismiss((str(path), target))

    @on(Button.Pressed, "#new-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
