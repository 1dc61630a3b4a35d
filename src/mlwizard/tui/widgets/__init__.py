"""Reusable widgets of the mlwizard TUI, each with its own DEFAULT_CSS."""

from mlwizard.tui.widgets.charts import BarChart
from mlwizard.tui.widgets.stepper import PhaseRow, PhaseStepper

__all__ = ["BarChart", "PhaseRow", "PhaseStepper"]
