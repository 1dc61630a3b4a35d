"""Horizontal bar charts drawn with block characters: histograms and counts in a terminal."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int) -> str:
    """A bar `width` cells long at `top`, with eighth-cell precision."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(value / top * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


class BarChart(Static):
    """Labelled horizontal bars, one per line; the longest is as wide as the widget allows."""

    DEFAULT_CSS = """
    BarChart {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.bars: list[tuple[str, float]] = []
        self.title = ""

    def plot(self, title: str, bars: list[tuple[str, float]]) -> None:
        self.title, self.bars = title, bars
        self.refresh(layout=True)
        self.update(self._text(max(20, self.size.width - 2 if self.size.width else 60)))

    def on_resize(self) -> None:
        if self.bars or self.title:
            self.update(self._text(max(20, self.size.width - 2)))

    def _text(self, width: int) -> Text:
        text = Text(self.title + "\n", style="bold")
        if not self.bars:
            text.append("no chart for this column", style="dim")
            return text
        label_width = min(14, max(len(label) for label, _ in self.bars))
        count_width = max(len(f"{value:g}") for _, value in self.bars)
        room = max(4, width - label_width - count_width - 3)
        top = max(value for _, value in self.bars)
        for i, (label, value) in enumerate(self.bars):
            shown = label if len(label) <= label_width else label[: label_width - 1] + "…"
            text.append(f"{shown:>{label_width}} ", style="dim")
            text.append(bar(value, top, room), style="cyan")
            text.append(f" {value:g}")
            if i < len(self.bars) - 1:
                text.append("\n")
        return text
