"""Data: the profile per column with a chart of the highlighted one, the audit's findings by
severity with a keep/exclude toggle per column, the split settings and the HTML report's path."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from mlwizard.core.kernel.workspace import Workspace
from mlwizard.tui import loaders
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.widgets import BarChart

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def column_role(name: str, view: loaders.DataView) -> str:
    """What the column is to the model: the target, a feature, or excluded (and why)."""
    config = view.config
    if config is not None:
        if name == config.data.target:
            return "target"
        if name in config.data.exclude:
            return "excluded ([data] exclude)"
        if name in config.data.keep:
            return "kept ([data] keep)"
    excluded = view.metrics.get("excluded_columns") or view.audit.get("excluded_columns") or {}
    if name in excluded:
        return f"excluded: {excluded[name]}"
    return "feature"


def summary_cell(info: dict[str, Any]) -> str:
    if info.get("numeric"):
        low, mean, high = info.get("min"), info.get("mean"), info.get("max")
        if low is None:
            return ""
        return f"{low:.4g} … {high:.4g} (mean {mean:.4g})"
    top = info.get("top") or []
    values = [str(t.get("value") if isinstance(t, dict) else t) for t in top[:3]]
    return ", ".join(values)


class DataScreen(PhaseScreen):
    PHASE = "data"
    AUTO_FOCUS = "#profile"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_phase", "Run phase"),
        Binding("x", "toggle_column", "Keep/exclude"),
    ]

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="data-tabs"):
            with TabPane("Profile", id="tab-profile"):
                yield DataTable(id="profile", cursor_type="row", zebra_stripes=True)
                yield BarChart(id="chart")
            with TabPane("Audit", id="tab-audit"):
                yield DataTable(id="findings", cursor_type="row")
                yield Static("", id="audit-summary")
            with TabPane("Splits", id="tab-splits"):
                yield Static("", id="splits")

    def on_mount(self) -> None:
        super().on_mount()
        profile = self.query_one("#profile", DataTable)
        profile.add_columns("column", "type", "role", "nulls", "distinct", "summary")
        findings = self.query_one("#findings", DataTable)
        findings.add_columns("severity", "rule", "column", "message")

    def read_view(self, workspace: Workspace) -> loaders.DataView:
        return loaders.data_view(workspace)

    def show_view(self, view: object) -> None:
        assert isinstance(view, loaders.DataView)
        self._show_profile(view)
        self._show_audit(view)
        self._show_splits(view)

    def _show_profile(self, view: loaders.DataView) -> None:
        table = self.query_one("#profile", DataTable)
        cursor = table.cursor_row
        table.clear()
        columns: dict[str, Any] = view.profile.get("columns") or {}
        for name, info in columns.items():
            role = column_role(name, view)
            style = "dim" if role.startswith("excluded") else ("bold" if role == "target" else "")
            table.add_row(
                Text(name, style=style),
                str(view.metrics.get("types", {}).get(name) or info.get("type", "")),
                Text(role, style="yellow" if role.startswith("excluded") else ""),
                f"{100 * float(info.get('null_fraction') or 0):.1f}%",
                str(info.get("distinct", "")),
                summary_cell(info),
                key=name,
            )
        if not columns:
            self.query_one("#chart", BarChart).plot("No profile yet: run the data phase (r).", [])
            return
        table.move_cursor(row=min(cursor, len(columns) - 1))
        self._chart(self.highlighted_column())

    def highlighted_column(self) -> str | None:
        table = self.query_one("#profile", DataTable)
        if table.row_count == 0:
            return None
        if self.query_one("#data-tabs", TabbedContent).active == "tab-audit":
            findings = self.query_one("#findings", DataTable)
            if findings.row_count:
                key = findings.coordinate_to_cell_key(findings.cursor_coordinate).row_key.value
                column = (key or "").split("\x00", 1)[0]
                return column or None
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#profile")
    def _on_profile_row(self, event: DataTable.RowHighlighted) -> None:
        self._chart(event.row_key.value)

    def _chart(self, column: str | None) -> None:
        chart = self.query_one("#chart", BarChart)
        if not isinstance(self.view, loaders.DataView) or column is None:
            return
        info = (self.view.profile.get("columns") or {}).get(column, {})
        kind = "histogram" if info.get("numeric") else "most frequent values"
        chart.plot(f"{column}: {kind}", self.view.charts.get(column, []))

    def _show_audit(self, view: loaders.DataView) -> None:
        table = self.query_one("#findings", DataTable)
        table.clear()
        findings = view.audit.get("findings") or view.metrics.get("findings") or []
        order = {"error": 0, "warning": 1, "info": 2}
        ranked = sorted(
            (f for f in findings if isinstance(f, dict)),
            key=lambda f: order.get(str(f.get("severity")), 3),
        )
        for i, finding in enumerate(ranked):
            severity = str(finding.get("severity", ""))
            column = finding.get("column") or ""
            table.add_row(
                Text(severity, style=SEVERITY_STYLE.get(severity, "")),
                str(finding.get("rule", "")),
                column,
                f"{finding.get('message', '')} — {finding.get('action', '')}",
                key=f"{column}\x00{i}",
            )
        counts = {s: sum(1 for f in ranked if f.get("severity") == s) for s in order}
        excluded = view.metrics.get("excluded_columns") or view.audit.get("excluded_columns") or {}
        text = Text()
        text.append(
            f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info"
            + (" — no findings" if not ranked else "")
            + "\n",
            style="bold",
        )
        for name, why in excluded.items():
            text.append(f"excluded {name}: {why}\n", style="yellow")
        text.append("x on a row keeps or excludes its column (written to [data] keep/exclude)")
        self.query_one("#audit-summary", Static).update(text)

    def _show_splits(self, view: loaders.DataView) -> None:
        text = Text()
        config = view.config
        if config is not None:
            s = config.split
            text.append("Split settings ([split] in mlwizard.toml)\n", style="bold")
            text.append(
                f"  strategy {s.strategy}; validation {s.valid_fraction:g}, "
                f"test {s.test_fraction:g}"
            )
            if s.time_column:
                text.append(f"; time column {s.time_column}")
            if s.group_column:
                text.append(f"; group column {s.group_column}")
            text.append("\n\n")
        splits = view.metrics.get("splits") or {}
        if splits:
            text.append("Splits of the last run\n", style="bold")
            for name, split in splits.items():
                balance = split.get("class_balance") or {}
                shares = ", ".join(f"{k} {v:.0%}" for k, v in list(balance.items())[:4])
                overlap = split.get("rows_also_in_train")
                text.append(f"  {name:<6} {split.get('rows', '?'):>7} rows  {shares}")
                if overlap:
                    text.append(f"  ({overlap} also in train)", style="yellow")
                text.append("\n")
        for warning in view.metrics.get("warnings") or []:
            text.append(f"  ⚠ {warning}\n", style="yellow")
        text.append("\nHTML report: ", style="bold")
        text.append(view.report or "none yet (artifacts/data/report.html)")
        self.query_one("#splits", Static).update(text)

    def action_toggle_column(self) -> None:
        column = self.highlighted_column()
        view = self.view
        if column is None or not isinstance(view, loaders.DataView) or view.config is None:
            self.notify("No column to toggle here.", severity="warning")
            return
        data = view.config.data
        if column == data.target:
            self.notify("The target is never a feature.", severity="warning")
            return
        keep, exclude = list(data.keep), list(data.exclude)
        role = column_role(column, view)
        if role.startswith("excluded"):
            exclude = [c for c in exclude if c != column]
            excluded = view.metrics.get("excluded_columns") or {}
            if column in excluded and column not in keep:
                keep.append(column)
            verb = "kept"
        else:
            keep = [c for c in keep if c != column]
            if column not in exclude:
                exclude.append(column)
            verb = "excluded"
        if self.wizard.save_config(
            {"data": {"keep": keep, "exclude": exclude}}, what=f"{column} {verb}"
        ):
            self.reload()
