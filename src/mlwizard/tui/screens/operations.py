"""Operations: the retraining advice, drift per feature, the registry, the latest monitoring
report and the last champion/challenger decision; retrain and rollback run in workers.

Every decision shown here is the core's (the phase's advice, the gate's reason); the screen only
shows them and calls `retrain`/`rollback`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.operations.drift import PSI_ALERT, PSI_WARN
from mlwizard.tui import loaders
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.widgets.charts import bar

LEVEL_STYLE = {"stable": "green", "moderate": "yellow", "major": "bold red", "insufficient": "dim"}
PSI_SCALE = 0.5  # a bar this long means PSI 0.5 (well past "major")


class OperationsScreen(PhaseScreen):
    PHASE = "operations"
    AUTO_FOCUS = "#drift"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_phase", "Run phase"),
        Binding("t", "retrain", "Retrain"),
        Binding("b", "rollback", "Roll back"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="advice")
        yield DataTable(id="drift", cursor_type="row", zebra_stripes=True)
        yield Static("", id="drift-note")
        yield DataTable(id="registry", cursor_type="row", zebra_stripes=True)
        yield Static("", id="decision")
        yield Static("", id="monitor")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#drift", DataTable).add_columns("feature", "PSI", "drift", "")
        self.query_one("#registry", DataTable).add_columns(
            "version", "", "model", "data version", "metric", "test", "origin"
        )
        self.query_one("#advice", Static).border_title = "Retraining"
        self.query_one("#registry", DataTable).border_title = "Model registry"
        self.query_one("#monitor", Static).border_title = "Latest monitoring"

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
        self._show_drift(view.drift)
        self._show_registry(view)
        self._show_monitor(view.monitor)

    def _show_drift(self, drift: dict[str, Any]) -> None:
        table = self.query_one("#drift", DataTable)
        table.clear()
        features: dict[str, Any] = drift.get("features") or {}
        for name, info in sorted(
            features.items(), key=lambda kv: -float((kv[1] or {}).get("psi") or 0)
        ):
            psi = float(info.get("psi") or 0)
            level = str(info.get("level", ""))
            style = LEVEL_STYLE.get(level, "")
            table.add_row(
                name,
                f"{psi:.3f}",
                Text(level, style=style),
                Text(bar(min(psi, PSI_SCALE), PSI_SCALE, 20), style=style),
                key=name,
            )
        current = drift.get("current")
        note = (
            f"Drift of {current} against the training split: PSI above its sampling noise "
            f"≤ {PSI_WARN:g} stable, ≤ {PSI_ALERT:g} moderate, above that major."
            if current
            else "No drift report yet: run the operations phase (r)."
        )
        self.query_one("#drift-note", Static).update(Text(note, style="dim"))

    def _show_registry(self, view: loaders.OperationsView) -> None:
        table = self.query_one("#registry", DataTable)
        table.clear()
        for m in view.versions:
            metric = m.get("metric")
            score = (m.get("test") or {}).get(metric)
            table.add_row(
                str(m.get("version")),
                Text("champion", style="bold green") if m.get("version") == view.champion else "",
                str(m.get("model")),
                str(m.get("data_version")),
                str(metric),
                f"{score:.4f}" if isinstance(score, float) else "",
                str(m.get("origin")),
            )
        last = view.history[-1] if view.history else None
        text = (
            Text(f"Last decision ({last.get('event')}, {last.get('at')}): {last.get('reason')}")
            if last
            else Text(
                "No champion/challenger decision yet: t retrains on [operations] retrain_data."
            )
        )
        self.query_one("#decision", Static).update(text)

    def _show_monitor(self, report: dict[str, Any]) -> None:
        if not report:
            text = Text("No monitoring report yet: run `mlwizard monitor CURRENT`.", style="dim")
        else:
            text = Text(
                f"{report.get('status')}: {report.get('rows')} rows of {report.get('current')} "
                f"({report.get('created_at')})\n"
            )
            for name, info in (report.get("features") or {}).items():
                if info.get("level") not in ("stable", None):
                    text.append(f"  {name}: ", style="bold")
                    text.append(str(info.get("level")), style=LEVEL_STYLE.get(info["level"], ""))
                    text.append(f" {'; '.join(info.get('reasons') or [])}\n")
            prediction = report.get("prediction") or {}
            if prediction:
                text.append(f"  predictions: {prediction.get('level')}\n")
            overall = (report.get("performance") or {}).get("overall") or {}
            if overall.get("value") is not None:
                text.append(
                    f"  {report['performance']['metric']}: {overall['value']:.4f} "
                    f"(training {overall.get('reference')})\n"
                )
        self.query_one("#monitor", Static).update(text)

    # -- actions: the core decides, workers only call it ------------------------------------------
    def action_retrain(self) -> None:
        self._retrain()

    def action_rollback(self) -> None:
        self._rollback()

    @work(thread=True, exclusive=True, exit_on_error=False, group="operations-action")
    def _retrain(self) -> None:
        from mlwizard.core import runner
        from mlwizard.core.operations.retrain import retrain

        workspace = self.wizard.workspace
        data = workspace.load_config().operations.retrain_data
        if not data:
            self.app.call_from_thread(
                self.notify, "set [operations] retrain_data in mlwizard.toml first", title="Retrain"
            )
            return
        result = retrain(workspace, data, runner.run)
        self.app.call_from_thread(self.notify, result["reason"], title="Retrain", markup=False)
        self.app.call_from_thread(self.reload)

    @work(thread=True, exclusive=True, exit_on_error=False, group="operations-action")
    def _rollback(self) -> None:
        from mlwizard.core.operations.registry import Registry

        result = Registry(self.wizard.workspace.root).rollback()
        self.app.call_from_thread(self.notify, result["reason"], title="Rollback", markup=False)
        self.app.call_from_thread(self.reload)
