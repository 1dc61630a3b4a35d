"""Discovery: the data source, the target, the task and metric, the success criterion, costs.

Saved with the core's `update_config_file` (comments in mlwizard.toml are kept), then the
discovery phase runs like `mlwizard run --phase discovery` would.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import get_current_worker

from mlwizard.core.contract.tasks import DEFAULT_METRIC, METRICS
from mlwizard.core.discovery import approach as approaches
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.tui import loaders
from mlwizard.tui.messages import ColumnsLoaded
from mlwizard.tui.screens.base import PhaseScreen

TASKS = ("auto", "binary", "multiclass", "regression")
# The kind of learning (the core decides what each means and declines reinforcement learning).
APPROACHES = (
    ("auto: supervised when a target is set", "auto"),
    ("supervised: predict the target", "supervised"),
    ("clustering: groups of similar rows (no target)", "clustering"),
    ("anomaly detection: unusual rows (target: a label to evaluate)", "anomaly"),
    ("sequential decisions with rewards (reinforcement learning)", "reinforcement_learning"),
)
NO_TARGET = ("clustering", "anomaly")

SOURCE_PAUSE_S = 0.4  # typing pause before the path is tried


def metric_options(task: str) -> list[tuple[str, str]]:
    if task in METRICS:
        names = list(METRICS[task])
        return [("auto", "auto"), *((f"{n} ({METRICS[task][n]})", n) for n in names)]
    every = dict.fromkeys(m for metrics in METRICS.values() for m in metrics)
    return [("auto", "auto"), *((m, m) for m in every)]


def parse_number(text: str, what: str, minimum: float | None = None) -> float | None:
    """The number in an optional field; ValueError with a message naming the field."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what}: '{text}' is not a number") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{what}: must be a number ≥ {minimum:g}" if minimum is not None else what)
    return value


def _plan_lines(s: dict[str, Any]) -> list[tuple[str, str] | str]:
    """The suggested approach, the model phase's estimate and the value at stake, if known."""
    lines: list[tuple[str, str] | str] = []
    if s.get("suggestion"):
        lines += [
            ("\nSuggested approach: ", "bold"),
            f"{s['suggestion']['approach']} — {s['suggestion']['why']}",
        ]
    if s.get("feasibility"):
        f = s["feasibility"]
        lines += [
            ("\nModel phase: ", "bold"),
            f"about {f['model_phase_s']:g}s, "
            f"{f['peak_memory_mb']} MB peak; reachable: {s['reachable']['verdict']}",
        ]
    if s.get("value"):
        v = s["value"]
        lines += [
            ("\nAt stake: ", "bold"),
            f"baseline cost {v['baseline_cost']:g}; a perfect "
            f"model saves {v['perfect_model_saving']:g}",
        ]
    return lines


class DiscoveryScreen(PhaseScreen):
    PHASE = "discovery"
    AUTO_FOCUS = "#discovery-form"  # not a field: single-letter keys work at once
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+r", "save_and_run", "Save & run"),
        Binding("r", "save_and_run", "Save & run", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.columns: loaders.ColumnsRead | None = None
        self._config: Config | None = None
        self._summary: dict[str, Any] = {}
        self._filled = False
        self._source_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="discovery-form", classes="form"):
            with Horizontal(classes="field"):
                yield Label("Data source", classes="field-label")
                yield Input(placeholder="data/file.csv (relative to the project)", id="source")
                yield Button("Read", id="read-source", compact=True)
            yield Static("", id="source-status", classes="field-note")
            with Horizontal(classes="field"):
                yield Label("Approach", classes="field-label")
                yield Select[str](list(APPROACHES), allow_blank=False, id="approach")
            with Horizontal(classes="field"):
                yield Label("Problem", classes="field-label")
                yield Input(placeholder="the problem in your words (optional)", id="problem")
            with Horizontal(classes="field"):
                yield Label("Target column", classes="field-label")
                yield Select[str]([], prompt="read the source first", id="target")
            with Horizontal(classes="field"):
                yield Label("Task", classes="field-label")
                yield Select[str]([(t, t) for t in TASKS], allow_blank=False, id="task")
            with Horizontal(classes="field"):
                yield Label("Metric", classes="field-label")
                yield Select[str](metric_options("auto"), allow_blank=False, id="metric")
            with Horizontal(classes="field"):
                yield Label("Success: test ≥", classes="field-label", id="threshold-label")
                yield Input(placeholder="unset: beat the baseline", id="threshold", type="number")
            with Horizontal(classes="field", id="costs"):
                yield Label("Cost FP / FN", classes="field-label")
                yield Input(placeholder="false positive", id="cost-fp", type="number")
                yield Input(placeholder="false negative", id="cost-fn", type="number")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save")
                yield Button("Save & run", id="save-run", variant="primary")
            yield Static("", id="discovery-summary", classes="summary")

    # -- loading ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="read-columns")
    def _read_columns(self, source: str, quiet: bool = False) -> None:
        read = loaders.read_columns(self.wizard.workspace, source)
        if quiet and read.error:  # still typing: a half-typed path is no error yet
            return
        if not get_current_worker().is_cancelled:
            self.post_message(ColumnsLoaded(read))

    def read_view(self, workspace: Workspace) -> loaders.DiscoveryView:
        return loaders.discovery_view(workspace)

    def show_view(self, view: object) -> None:
        assert isinstance(view, loaders.DiscoveryView)
        self._config, self._summary = view.config, view.summary
        if view.config is not None and not self._filled:
            # Fill the form once: later reloads must not overwrite what the user is typing.
            self._filled = True
            d = view.config.discovery
            self.query_one("#source", Input).value = view.config.data.source
            self.query_one("#task", Select).value = d.task
            self.query_one("#approach", Select).value = d.approach
            self.query_one("#problem", Input).value = d.problem
            self._set_metrics(d.task, d.metric)
            for field, value in (
                ("#threshold", d.success_threshold),
                ("#cost-fp", d.cost_false_positive),
                ("#cost-fn", d.cost_false_negative),
            ):
                self.query_one(field, Input).value = "" if value is None else f"{value:g}"
            if view.columns is not None:
                self._show_columns(view.columns, view.config.data.target)
        self._show_summary()
        self._show_costs()

    @on(ColumnsLoaded)
    def _on_columns(self, message: ColumnsLoaded) -> None:
        message.stop()
        target = self.query_one("#target", Select).value
        self._show_columns(message.read, target if isinstance(target, str) else "")

    def _show_columns(self, read: loaders.ColumnsRead, target: str) -> None:
        self.columns = read
        status = self.query_one("#source-status", Static)
        select = self.query_one("#target", Select)
        if read.error:
            status.update(Text(f"✘ {read.error}", style="red"))
            select.set_options([])
            return
        status.update(Text(f"✓ {len(read.columns)} columns", style="green"))
        select.set_options([(c, c) for c in read.columns])
        if target in read.columns:
            select.value = target

    def _show_summary(self) -> None:
        s = self._summary
        summary = self.query_one("#discovery-summary", Static)
        if not s:
            summary.update(Text("Not run yet: save, then run (ctrl+r).", style="dim"))
            return
        inferred = s.get("task_inferred")
        summary.update(
            Text.assemble(
                ("Last run: ", "bold"),
                f"{s.get('task')} task on '{s.get('target')}' "
                f"(suggested: {inferred}), judged by {s.get('metric')}; "
                f"{s.get('rows')} rows, {s.get('target_distinct')} distinct targets, "
                f"{s.get('target_missing')} missing.\n",
                ("Success: ", "bold"),
                str(s.get("success_criterion", "")),
                *_plan_lines(s),
            )
        )

    def effective_task(self) -> str:
        task = self.query_one("#task", Select).value
        if task == "auto":
            return str(self._summary.get("task_inferred") or "auto")
        return str(task)

    def _set_metrics(self, task: str, metric: str | None = None) -> None:
        select = self.query_one("#metric", Select)
        current = metric or (select.value if isinstance(select.value, str) else "auto")
        options = metric_options(self.effective_task() if task == "auto" else task)
        select.set_options(options)
        values = [v for _, v in options]
        select.value = current if current in values else "auto"

    def _show_costs(self) -> None:
        self.query_one("#costs").display = self.effective_task() == "binary"
        task = self.effective_task()
        label = self.query_one("#threshold-label", Label)
        metric = self.query_one("#metric", Select).value
        if metric == "auto" and task in DEFAULT_METRIC:
            metric = DEFAULT_METRIC[task]
        directions: dict[str, str] = dict(METRICS[task]) if task in METRICS else {}
        direction = directions.get(str(metric), "maximize")
        label.update(f"Success: test {'≥' if direction == 'maximize' else '≤'}")

    # -- events ----------------------------------------------------------------------------------
    @on(Input.Changed, "#source")
    def _on_source_typed(self, event: Input.Changed) -> None:
        """Fill the target drop-down as soon as the typed path reads (after a short pause)."""
        if self._source_timer is not None:
            self._source_timer.stop()
        source = event.value.strip()
        if source and (self.columns is None or self.columns.source != source):
            self._source_timer = self.set_timer(
                SOURCE_PAUSE_S, lambda: self._read_columns(source, quiet=True)
            )

    @on(Input.Submitted, "#source")
    @on(Button.Pressed, "#read-source")
    def _on_read_source(self) -> None:
        if self._source_timer is not None:  # asked for now: no quiet read behind it
            self._source_timer.stop()
        source = self.query_one("#source", Input).value.strip()
        if not source:
            self.notify("Type the path of a data file first.", severity="warning")
            return
        self.query_one("#source-status", Static).update(Text("reading…", style="dim"))
        self._read_columns(source)

    @on(Select.Changed, "#task")
    def _on_task(self) -> None:
        task = self.query_one("#task", Select).value
        self._set_metrics(str(task))
        self._show_costs()

    @on(Select.Changed, "#metric")
    def _on_metric(self) -> None:
        self._show_costs()

    @on(Button.Pressed, "#save")
    def action_save(self) -> bool:
        updates = self.form_updates()
        if updates is None:
            return False
        return self.wizard.save_config(updates, what="discovery settings")

    @on(Button.Pressed, "#save-run")
    def action_save_and_run(self) -> None:
        if self.action_save():
            self.wizard.run_phases([self.PHASE])

    def action_run_phase(self) -> None:
        self.action_save_and_run()

    def form_updates(self) -> dict[str, dict[str, Any]] | None:
        """What the form sets in mlwizard.toml, or None (after a notification) when invalid."""
        source = self.query_one("#source", Input).value.strip()
        target = self.query_one("#target", Select).value
        problems = []
        if not source:
            problems.append("the data source is empty")
        elif self.columns is None or self.columns.source != source:
            problems.append("read the data source first (Enter in its field)")
        elif self.columns.error:
            problems.append(f"the data source cannot be read: {self.columns.error}")
        chosen = str(self.query_one("#approach", Select).value)
        problem = self.query_one("#problem", Input).value.strip()
        if chosen == "reinforcement_learning" or approaches.looks_like_rl(problem):
            problems.append(approaches.rl_refusal("the discovery form"))
        if chosen == "clustering":
            target = ""  # clustering learns without one
        elif (not isinstance(target, str) or not target) and chosen not in NO_TARGET:
            problems.append("choose the target column")
        discovery: dict[str, Any] = {
            "task": str(self.query_one("#task", Select).value),
            "metric": str(self.query_one("#metric", Select).value),
        }
        before = self._config.discovery if self._config is not None else None
        if chosen != "auto" or (before is not None and before.approach != "auto"):
            discovery["approach"] = chosen
        if problem or (before is not None and before.problem):
            discovery["problem"] = problem
        fields = (
            ("#threshold", "success_threshold", "success threshold", None),
            ("#cost-fp", "cost_false_positive", "cost of a false positive", 0.0),
            ("#cost-fn", "cost_false_negative", "cost of a false negative", 0.0),
        )
        for selector, key, what, minimum in fields:
            if key.startswith("cost") and not self.query_one("#costs").display:
                continue
            try:
                value = parse_number(self.query_one(selector, Input).value, what, minimum)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if value is not None:
                discovery[key] = value
            elif self._config is not None and getattr(self._config.discovery, key) is not None:
                problems.append(
                    f"{what} is set in mlwizard.toml; to unset it, delete its line there"
                )
        if problems:
            self.notify("\n".join(problems), title="Cannot save", severity="error", markup=False)
            return None
        target = target if isinstance(target, str) else ""
        return {"data": {"source": source, "target": target}, "discovery": discovery}
