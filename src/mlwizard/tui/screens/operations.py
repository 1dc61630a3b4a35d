"""Operations: drift per feature with its level, and whether to retrain, with the reasons."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.operations.drift import PSI_ALERT, PSI_WARN
from mlwizard.tui import loaders
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.widgets.charts import bar

LEVEL_STYLE = {"stable": "green", "moderate": "yellow", "major": "bold red"}
PSI_SCALE = 0.5  # a bar this long means PSI 0.5 (well past "major")


class OperationsScreen(PhaseScreen):
    PHASE = "operations"
    AUTO_FOCUS = "#drift"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="advice")
        yield DataTable(id="drift", cursor_type="row", zebra_stripes=True)
        yield Static("", id="drift-note")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#drift", DataTable).add_columns("feature", "PSI", "drift", "")
        self.query_one("#advice", Static).border_title = "Retraining"

    def read_view(self, workspace: Workspace) -> loaders.OperationsView:
        return loaders.operations_view(workspace)

    def show_view(self, view: object) -> None:
        assert isinstance(view, loaders.OperationsView)
        advice = Text()
        if view.retrain:
            advice.append("Retrain recommended\n", style="bold red")
        else:
            advice.append("No retraining needed\n", style="bold green")
        for reason in view.reasons:
            advice.append(f"  • {reason}\n")
        self.query_one("#advice", Static).update(advice)
        table = self.query_one("#drift", DataTable)
        table.clear()
        features: dict[str, Any] = view.drift.get("features") or {}
        for name, info in sorted(
            features.items(), key=lambda kv: -float((kv[1] or {}).get("psi") or 0)
        ):
            psi = float(info.get("psi") or 0)
            level = str(info.get("level", ""))
            table.add_row(
                name,
                f"{psi:.3f}",
                Text(level, style=LEVEL_STYLE.get(level, "")),
                Text(bar(min(psi, PSI_SCALE), PSI_SCALE, 20), style=LEVEL_STYLE.get(level, "")),
                key=name,
            )
        current = view.drift.get("current")
        note = (
            f"Drift of {current} against the training split: PSI above its sampling noise "
            f"≤ {PSI_WARN:g} stable, ≤ {PSI_ALERT:g} moderate, above that major."
            if current
            else "No drift report yet: run the operations phase (r)."
        )
        self.query_one("#drift-note", Static).update(Text(note, style="dim"))
