"""Model: start the experiments with a time budget, watch the leaderboard fill in as each
background run finishes, cancel; then the selected run's metrics, confusion matrix or residual
summary, and worst slices."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static

from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.tui import loaders
from mlwizard.tui.screens.base import PhaseScreen
from mlwizard.tui.wizard import Change

DEFAULT_BUDGET = 300.0
BUDGET_PROBLEM = "The time budget must be at least 1 second."


def _budget(text: str) -> float | None:
    """The budget field's seconds, or None when it holds no usable budget."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value >= 1 else None


def confusion_table(matrix: dict[str, Any]) -> Table | None:
    labels, cells = matrix.get("labels") or [], matrix.get("matrix") or []
    if not labels or len(cells) != len(labels):
        return None
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("")
    for label in labels:
        table.add_column(str(label)[:10], justify="right")
    for label, row in zip(labels, cells, strict=False):
        table.add_row(
            str(label)[:12],
            *(
                Text(str(v), style="bold green" if i == j else ("red" if v else "dim"))
                for j, v in enumerate(row)
                for i in [labels.index(label)]
            ),
        )
    return table


class ModelScreen(PhaseScreen):
    PHASE = "model"
    AUTO_FOCUS = "#leaderboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_phase", "Start experiments"),
        Binding("b", "focus_budget", "Budget"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[str, dict[str, Any]] = {}
        self._ticker: Any = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="model-controls"):
            yield Label("Time budget (s)")
            yield Input(id="budget", type="number")
            yield Button("Start", id="start", variant="primary", compact=True)
            yield Button("Cancel", id="cancel", variant="error", compact=True)
        with Horizontal(id="model-progress"):
            yield ProgressBar(id="budget-bar", show_eta=False, show_percentage=False)
            yield Static("", id="time-left")
        yield DataTable(id="leaderboard", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="run-detail"):
            yield Static("", id="detail")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#leaderboard", DataTable)
        table.add_columns("#", "candidate", "status", "score", "cv", "time", "deployable")
        self._ticker = self.set_interval(0.5, self.tick, pause=True)

    # -- loading ---------------------------------------------------------------------------------
    def read_view(self, workspace: Workspace) -> loaders.ModelView:
        return loaders.model_view(workspace)

    def show_view(self, view: object) -> None:
        assert isinstance(view, loaders.ModelView)
        budget = self.query_one("#budget", Input)
        if not budget.value:
            budget.value = f"{view.time_budget or DEFAULT_BUDGET:g}"
        self.wizard.budget_input = _budget(budget.value)
        if self.wizard.running_phase != self.PHASE:
            self._fill(view.rows, view)
        self.tick()

    # -- the leaderboard -------------------------------------------------------------------------
    def wizard_changed(self, what: Change) -> None:
        super().wizard_changed(what)
        if what == "status":
            self.tick()
        elif what == "live":
            self.live = dict(self.wizard.live_runs)
            self._fill([{"name": n, **r} for n, r in self.live.items()], None)

    def _fill(self, rows: list[dict[str, Any]], view: loaders.ModelView | None) -> None:
        table = self.query_one("#leaderboard", DataTable)
        cursor = table.cursor_row
        direction = view.direction if view else "maximize"
        best = view.best if view else None

        def rank(row: dict[str, Any]) -> tuple[int, float]:
            score = row.get("score")
            if not isinstance(score, int | float) or row.get("status") != "done":
                return (1, 0.0)
            return (0, -score if direction == "maximize" else score)

        table.clear()
        for i, row in enumerate(sorted(rows, key=rank), start=1):
            name = str(row.get("name", "?"))
            status = str(row.get("status", ""))
            cv = (
                f"{row['cv_mean']:.4g} ± {row.get('cv_std') or 0:.2g}"
                if isinstance(row.get("cv_mean"), int | float)
                else "—"
            )
            duration = row.get("duration_s")
            style = {"running": "cyan", "failed": "red", "skipped": "dim"}.get(status, "")
            table.add_row(
                str(i),
                Text(name + (" ★" if name == best else ""), style="bold" if name == best else ""),
                Text(status, style=style),
                fmt(row.get("score")),
                cv,
                f"{duration:.1f}s" if isinstance(duration, int | float) else "—",
                fmt(row.get("deployable")),
                key=name,
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
            self._detail(self.selected_run())
        else:
            self.query_one("#detail", Static).update(
                Text("No runs yet: set a time budget and start (r).", style="dim")
            )

    def selected_run(self) -> str | None:
        table = self.query_one("#leaderboard", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#leaderboard")
    def _on_row(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.row_key.value)

    def _detail(self, name: str | None) -> None:
        detail = self.query_one("#detail", Static)
        view = self.view if isinstance(self.view, loaders.ModelView) else None
        if name is None:
            return
        if view is None or self.wizard.running_phase == self.PHASE:
            live = self.live.get(name, {})
            # The core's run messages already start with the candidate's name.
            detail.update(Text(live.get("message") or f"{name}: running…"))
            return
        row = next((r for r in view.rows if r.get("name") == name), {})
        detail.update(self._detail_table(name, row, view))

    def _detail_table(self, name: str, row: dict[str, Any], view: loaders.ModelView) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        head = Text.assemble((name, "bold"), f"  {row.get('status', '')}")
        if row.get("reason"):
            head.append(f" — {row['reason']}", style="yellow")
        grid.add_row(head)
        scores = row.get("validation") or {}
        if scores:
            line = Text("validation: ", style="bold")
            for i, (key, value) in enumerate(scores.items()):
                line.append(" · " if i else "")
                line.append(f"{key} {fmt(value)}", style="bold cyan" if key == view.metric else "")
            grid.add_row(line)
        evaluation = view.evaluation
        if evaluation.get("model") != name:
            if evaluation:
                grid.add_row(
                    Text(
                        f"Confusion matrix, residuals and slices are evaluated for the chosen "
                        f"model ({evaluation.get('model')}) only.",
                        style="dim",
                    )
                )
            return grid
        test = evaluation.get("test") or {}
        if test.get("scores"):
            scored = ", ".join(f"{k} {fmt(v)}" for k, v in list(test["scores"].items())[:4])
            grid.add_row(Text(f"test split ({test.get('rows', '?')} rows): {scored}"))
        valid = evaluation.get("validation") or {}
        matrix = confusion_table(valid.get("confusion_matrix") or {})
        if matrix is not None:
            grid.add_row(Text("confusion matrix (validation; rows: true, columns: predicted)"))
            grid.add_row(matrix)
        residuals = valid.get("residuals") or test.get("residuals")
        if isinstance(residuals, dict) and residuals.get("rows"):
            q = residuals.get("quantiles") or {}
            grid.add_row(
                Text(
                    f"residuals (y − prediction) on {residuals['rows']} rows: mean "
                    f"{fmt(residuals.get('mean'))}, std {fmt(residuals.get('std'))}, "
                    + ", ".join(f"{k} {fmt(v)}" for k, v in q.items())
                )
            )
        slices = (evaluation.get("error_analysis") or {}).get("worst_slices") or []
        if slices:
            grid.add_row(Text("worst slices (validation): where the model errs most"))
            table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
            for column in ("feature", "slice", "rows", "mean error", "× overall"):
                table.add_column(column)
            for s in slices[:5]:
                table.add_row(
                    str(s.get("feature", "")),
                    str(s.get("slice", "")),
                    str(s.get("rows", "")),
                    fmt(s.get("mean_error")),
                    fmt(s.get("ratio"), 3),
                )
            grid.add_row(table)
        return grid

    # -- running ---------------------------------------------------------------------------------
    @on(Input.Changed, "#budget")
    def _on_budget_changed(self, event: Input.Changed) -> None:
        self.wizard.budget_input = _budget(event.value)

    @on(Button.Pressed, "#start")
    def action_run_phase(self) -> None:
        budget = _budget(self.query_one("#budget", Input).value)
        if budget is None:
            self.notify(BUDGET_PROBLEM, severity="error")
            return
        self.live = {}
        self.wizard.run_phases([self.PHASE], time_budget=budget)

    @on(Button.Pressed, "#cancel")
    def _on_cancel(self) -> None:
        self.wizard.action_cancel()

    @on(Input.Submitted, "#budget")
    def _on_budget_submitted(self) -> None:
        self.action_run_phase()

    def action_focus_budget(self) -> None:
        self.query_one("#budget", Input).focus()

    def tick(self) -> None:
        """The budget bar and the time left, while the model phase runs."""
        app = self.wizard
        bar = self.query_one("#budget-bar", ProgressBar)
        left = self.query_one("#time-left", Static)
        if app.running_phase == self.PHASE and app.model_started is not None:
            budget = app.model_budget or DEFAULT_BUDGET
            elapsed = time.monotonic() - app.model_started
            bar.update(total=budget, progress=min(elapsed, budget))
            left.update(f"{max(0.0, budget - elapsed):.0f}s left of {budget:g}s")
            if self._ticker is not None:
                self._ticker.resume()
            return
        if self._ticker is not None:
            self._ticker.pause()
        state = self.state()
        done = state is not None and state.status == "done"
        bar.update(total=100, progress=100 if done else 0)
        left.update("finished" if done else "idle")
