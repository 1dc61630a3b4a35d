"""Deployment: the ONNX parity check, the generated service files with highlighted previews,
and the service itself, started and stopped locally, with a sample request."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer, VerticalScroll
from textual.widgets import Button, DataTable, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from mlwizard.core.kernel.workspace import Workspace
from mlwizard.tui import loaders
from mlwizard.tui.messages import ViewLoaded
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.wizard import Change

DEFAULT_PREVIEW = "app.py"


class PreviewLoaded(ViewLoaded):
    """The text of one generated file (phase = its name, view = (text, language))."""


class DeployScreen(PhaseScreen):
    PHASE = "deploy"
    AUTO_FOCUS = "#files"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_phase", "Run phase"),
        Binding("u", "service_up", "Start service"),
        Binding("d", "service_down", "Stop service"),
        Binding("t", "sample_request", "Try a request"),
    ]

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="parity", cursor_type="none", show_cursor=False)
        with Horizontal(id="deploy-files"):
            yield OptionList(id="files")
            with ScrollableContainer(id="preview-scroll"):
                yield Static("", id="preview")
        with Horizontal(id="service-row"):
            yield Button("Start", id="service-up", variant="success", compact=True)
            yield Button("Stop", id="service-down", variant="error", compact=True)
            yield Button("Try a request", id="service-try", compact=True)
            yield Static("service: stopped", id="service-status")
        with VerticalScroll(id="response-scroll"):
            yield Static(
                Text("u starts the service; t sends it the first test row.", style="dim"),
                id="response",
            )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#parity", DataTable).add_columns(
            "ONNX parity", "max |diff|", "tolerance", "labels agree", "ok"
        )
        self.query_one("#files", OptionList).border_title = "Files"

    @work(thread=True, exclusive=True, exit_on_error=False, group="load-preview")
    def _load_preview(self, name: str) -> None:
        view = self.view
        if not isinstance(view, loaders.DeployView) or view.service_dir is None:
            return
        text = loaders.preview(view.service_dir / name)
        if not get_current_worker().is_cancelled:
            self.post_message(PreviewLoaded(name, text))

    def read_view(self, workspace: Workspace) -> loaders.DeployView:
        return loaders.deploy_view(workspace)

    def show_view(self, view: object) -> None:
        if not isinstance(view, loaders.DeployView):
            return
        table = self.query_one("#parity", DataTable)
        table.clear()
        for row in view.parity:
            ok = row.get("ok")
            table.add_row(
                row["candidate"],
                _sci(row.get("max_abs_diff")),
                _sci(row.get("tolerance")),
                f"{row['label_agreement']:.2%}"
                if isinstance(row.get("label_agreement"), int | float)
                else "—",
                Text("✓" if ok else ("✘" if ok is False else "—"), style="green" if ok else "red"),
            )
        for name, check in view.checks.items():  # the bundle's validators, as the phase ran them
            status = str(check.get("status")) if isinstance(check, dict) else "—"
            mark = {"passed": ("✓", "green"), "failed": ("✘", "red")}.get(status, ("—", "dim"))
            table.add_row(f"check {name}: {status}", "", "", "", Text(*mark))
        files = self.query_one("#files", OptionList)
        highlighted = files.highlighted_option.id if files.highlighted_option else None
        files.clear_options()
        files.add_options([Option(name, id=name) for name in view.files])
        if not view.files:
            self.query_one("#preview", Static).update(
                Text("No service yet: run the deployment phase (r).", style="dim")
            )
            return
        chosen = highlighted if highlighted in view.files else None
        chosen = chosen or (DEFAULT_PREVIEW if DEFAULT_PREVIEW in view.files else view.files[0])
        files.highlighted = view.files.index(chosen)
        self._load_preview(chosen)
        self.show_service()

    @on(PreviewLoaded)
    def _on_preview(self, message: PreviewLoaded) -> None:
        message.stop()
        text, language = message.view
        preview = self.query_one("#preview", Static)
        if language:
            preview.update(Syntax(text, language, line_numbers=True, word_wrap=False))
        else:
            preview.update(Text(text))
        self.query_one("#preview-scroll").border_title = message.phase

    @on(OptionList.OptionHighlighted, "#files")
    def _on_file(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._load_preview(event.option.id)

    # -- the service -----------------------------------------------------------------------------
    def wizard_changed(self, what: Change) -> None:
        super().wizard_changed(what)
        if what == "service":
            self.show_service()
        elif what == "response" and self.wizard.last_response is not None:
            answer = self.wizard.last_response
            self.show_response(answer.status, answer.body, answer.error)

    def show_service(self) -> None:
        app = self.wizard
        status = self.query_one("#service-status", Static)
        if app.service is not None:
            status.update(Text(f"service: running at {app.service.url}", style="green"))
        elif app.service_busy:
            status.update(Text(f"service: {app.service_busy}…", style="cyan"))
        else:
            status.update(Text("service: stopped", style="dim"))

    def show_response(self, status: int | None, body: object, error: str | None) -> None:
        response = self.query_one("#response", Static)
        if error:
            response.update(Text(error, style="red"))
            return
        text = json.dumps(body, indent=2, ensure_ascii=False)
        response.update(Syntax(f"HTTP {status}\n{text}", "json", word_wrap=True))

    @on(Button.Pressed, "#service-up")
    def action_service_up(self) -> None:
        self.wizard.start_service()

    @on(Button.Pressed, "#service-down")
    def action_service_down(self) -> None:
        self.wizard.stop_service()

    @on(Button.Pressed, "#service-try")
    def action_sample_request(self) -> None:
        self.wizard.sample_request()


def _sci(value: object) -> str:
    return f"{value:.1e}" if isinstance(value, int | float) else "—"
