"""The data report's charts as geometry (inline SVG drawn by the template), and percentages.

No script runs in the page: every bar, cell and label is placed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlwizard.core.kernel.formatting import fmt

LABEL_CHARS = 28  # longer labels are cut in charts; the full text is in the tooltip
CHAR_WIDTH = 6.6  # an estimate of one character's width in the charts' 11px sans-serif


# --- numbers as text ---------------------------------------------------------------------------


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "—"
    if 0 < fraction < 0.001:
        return "<0.1%"
    return f"{100 * fraction:.1f}%"


def cut(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- charts as geometry ------------------------------------------------------------------------


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    tip: str
    cls: str = "bar"
    fill: str | None = None


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    cls: str = "label"
    rotate: bool = False  # vertical, reading upwards


@dataclass
class Chart:
    kind: str
    label: str
    width: float
    height: float
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)


def histogram_chart(name: str, histogram: dict[str, Any], integer_bins: bool) -> Chart:
    """Vertical bars, one per bin, drawn at equal width (the outer bins may span more range)."""
    edges, counts = histogram["edges"], histogram["counts"]
    width, height, top, bottom = 320.0, 150.0, 14.0, 22.0
    chart = Chart("histogram", f"Histogram of {name}", width, height)
    peak = max(counts) or 1
    slot = width / len(counts)
    for i, count in enumerate(counts):
        bar_height = (height - top - bottom) * count / peak
        if count:
            bar_height = max(bar_height, 1.0)  # a lone outlier still shows
        if integer_bins:
            span = _integer_label(edges, i)
        else:
            closing = "]" if i == len(counts) - 1 else ")"
            span = f"[{fmt(edges[i])}, {fmt(edges[i + 1])}{closing}"
        chart.rects.append(
            Rect(
                x=round(i * slot + 1, 2),
                y=round(height - bottom - bar_height, 2),
                width=round(max(slot - 2, 1), 2),
                height=round(bar_height, 2),
                tip=f"{span}: {count:,}",
            )
        )
    chart.texts += [
        Text(0, height - 6, fmt(edges[0])),
        Text(width, height - 6, fmt(edges[-1]), anchor="end"),
        Text(0, 10, f"max {peak:,} per bin", cls="note"),
    ]
    return chart


def _integer_label(edges: list[float], i: int) -> str:
    """The integers in bin i of one-bin-per-integer edges (the outer bins may hold several)."""
    low = math.ceil(edges[i]) if i == 0 else round(edges[i] + 0.5)
    high = math.floor(edges[i + 1]) if i == len(edges) - 2 else round(edges[i + 1] - 0.5)
    return fmt(low) if low == high else f"{fmt(low)} to {fmt(high)}"


def bar_chart(kind: str, label: str, items: list[tuple[str, float, str]]) -> Chart:
    """Horizontal bars: (label, value in [0, max], text shown at the bar's end)."""
    row = 20.0
    label_width = _label_space([text for text, _, _ in items], LABEL_CHARS)
    width = label_width + 320.0
    chart = Chart(kind, label, width, row * len(items) + 4)
    peak = max((value for _, value, _ in items), default=0.0) or 1.0
    span = width - label_width - 110
    for i, (text, value, shown) in enumerate(items):
        y = i * row + 2
        bar = max(span * value / peak, 1.0)
        chart.rects.append(Rect(label_width, y + 3, round(bar, 2), row - 6, f"{text}: {shown}"))
        chart.texts.append(Text(label_width - 6, y + row - 6, cut(text), anchor="end"))
        chart.texts.append(Text(label_width + bar + 4, y + row - 6, shown, cls="value"))
    return chart


def heatmap_chart(columns: list[str], matrix: list[list[float | None]]) -> Chart:
    cell = 18.0
    margin = _label_space(columns, 22)
    size = margin + cell * len(columns) + 4
    chart = Chart("heatmap", "Correlation heatmap", size, size)
    for i, a in enumerate(columns):
        chart.texts.append(Text(margin - 4, margin + i * cell + 13, cut(a, 22), anchor="end"))
        chart.texts.append(Text(margin + i * cell + 13, margin - 4, cut(a, 22), rotate=True))
        for j, b in enumerate(columns):
            r = matrix[i][j]
            chart.rects.append(
                Rect(
                    margin + j * cell,
                    margin + i * cell,
                    cell - 1,
                    cell - 1,
                    f"{a} × {b}: r = {fmt(r)}",
                    cls="cell",
                    fill=_diverging(r),
                )
            )
    return chart


def _label_space(labels: list[str], limit: int) -> float:
    """Room for the longest (cut) label, from 40 to 200 px."""
    longest = max((len(cut(label, limit)) for label in labels), default=0)
    return min(max(longest * CHAR_WIDTH + 12, 40.0), 200.0)


def _diverging(r: float | None) -> str:
    """Blue for -1, white for 0, red for +1; grey when undefined."""
    if r is None:
        return "rgb(220,220,220)"
    t = max(-1.0, min(1.0, r))
    far = (178, 24, 43) if t > 0 else (33, 102, 172)
    mix = [round(255 + (c - 255) * abs(t)) for c in far]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def patterns_chart(columns: list[str], patterns: list[dict[str, Any]]) -> Chart:
    """A grid: one row per pattern, a red cell where that column is missing, a bar for its rows."""
    cell, bar_width, left = 16.0, 120.0, 4.0
    top = _label_space(columns, 22)
    bars = left + cell * len(columns) + 8
    chart = Chart(
        "patterns", "Missingness patterns", bars + bar_width + 110, top + cell * len(patterns) + 4
    )
    for j, name in enumerate(columns):
        chart.texts.append(Text(left + j * cell + 12, top - 4, cut(name, 22), rotate=True))
    peak = max((p["count"] for p in patterns), default=0) or 1
    for i, pattern in enumerate(patterns):
        y = top + i * cell
        missing = set(pattern["missing"])
        for j, name in enumerate(columns):
            state = "missing" if name in missing else "present"
            x = left + j * cell
            chart.rects.append(
                Rect(x, y, cell - 1, cell - 1, f"{name}: {state}", cls=f"cell {state}")
            )
        shown = f"{pattern['count']:,} ({percent(pattern['fraction'])})"
        tip = f"{', '.join(pattern['missing']) or 'no column missing'}: {shown}"
        bar = round(max(bar_width * pattern["count"] / peak, 1.0), 2)
        chart.rects.append(Rect(bars, y + 2, bar, cell - 5, tip))
        chart.texts.append(Text(bars + bar_width + 6, y + cell - 4, shown, cls="value"))
    return chart
