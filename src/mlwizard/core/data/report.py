"""Reports of a data profile: `profile.json`, a Markdown summary and a self-contained HTML page.

The HTML page draws its charts as inline SVG whose geometry is computed here; it carries no script,
and its Content-Security-Policy allows nothing to be fetched, so it looks the same offline, from a
mail attachment or from a CI artifact. Every string that comes from the data (column names,
category values) goes through Jinja's autoescape in the HTML and through `markdown_escape` in the
Markdown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.kernel.templates import render, templates_dir

HTML_TEMPLATE = "report/report.html.j2"
MARKDOWN_TEMPLATE = "report/summary.md.j2"
REPORT_FILES = {"json": "profile.json", "markdown": "profile.md", "html": "report.html"}
LABEL_CHARS = 28  # longer labels are cut in charts; the full text is in the tooltip
CHAR_WIDTH = 6.6  # an estimate of one character's width in the charts' 11px sans-serif


def write_reports(profile: dict[str, Any], directory: Path, title: str) -> dict[str, Path]:
    """Write `profile.json`, `profile.md` and `report.html` into `directory`, each atomically.

    All three are rendered before the first is written, so a failure leaves the folder as it was.
    """
    texts = {
        "json": json.dumps(json_safe(profile), indent=2, allow_nan=False) + "\n",
        "markdown": render_markdown(profile, title),
        "html": render_html(profile, title),
    }
    paths = {kind: directory / name for kind, name in REPORT_FILES.items()}
    for kind, path in paths.items():
        atomic.write_text(path, texts[kind])
    return paths


def render_html(profile: dict[str, Any], title: str) -> str:
    return (
        _html_environment(templates_dir())
        .get_template(HTML_TEMPLATE)
        .render(title=title, **_view(profile))
    )


def render_markdown(profile: dict[str, Any], title: str) -> str:
    return render(
        MARKDOWN_TEMPLATE, title=markdown_escape(title), md=markdown_escape, **_view(profile)
    )


@lru_cache(maxsize=1)
def _html_environment(root: Path) -> jinja2.Environment:
    """Like `templates.render`'s environment, but escaping HTML: names come from users' files."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None, so that it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


_MARKDOWN_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)


def markdown_escape(text: Any) -> str:
    """Text that shows as itself in a Markdown table cell: no markup, no raw HTML."""
    return str(text).translate(_MARKDOWN_SPECIAL)


# --- numbers as text ---------------------------------------------------------------------------


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "—"
    if 0 < fraction < 0.001:
        return "<0.1%"
    return f"{100 * fraction:.1f}%"


def _cut(text: str, limit: int = LABEL_CHARS) -> str:
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
        chart.texts.append(Text(label_width - 6, y + row - 6, _cut(text), anchor="end"))
        chart.texts.append(Text(label_width + bar + 4, y + row - 6, shown, cls="value"))
    return chart


def heatmap_chart(columns: list[str], matrix: list[list[float | None]]) -> Chart:
    cell = 18.0
    margin = _label_space(columns, 22)
    size = margin + cell * len(columns) + 4
    chart = Chart("heatmap", "Correlation heatmap", size, size)
    for i, a in enumerate(columns):
        chart.texts.append(Text(margin - 4, margin + i * cell + 13, _cut(a, 22), anchor="end"))
        chart.texts.append(Text(margin + i * cell + 13, margin - 4, _cut(a, 22), rotate=True))
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
    longest = max((len(_cut(label, limit)) for label in labels), default=0)
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
        chart.texts.append(Text(left + j * cell + 12, top - 4, _cut(name, 22), rotate=True))
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


# --- the view the templates render -------------------------------------------------------------


def _view(profile: dict[str, Any]) -> dict[str, Any]:
    rows = profile["rows"]
    sample = profile.get("sample") or {}
    columns = []
    estimated = bool(sample) and not sample.get("complete", True)
    for index, (name, stats) in enumerate(profile["columns"].items()):
        columns.append(_column_view(index, name, stats, estimated))
    target = profile.get("target")
    return {
        "rows": rows,
        "rows_text": fmt(rows),
        "n_columns": len(columns),
        "columns": columns,
        "sample": sample,
        "sample_text": _sample_text(sample, rows),
        "counts": {
            kind: sum(1 for c in columns if c["kind"] == kind)
            for kind in ("numeric", "categorical", "datetime")
        },
        "missing_cells": percent(
            sum(c["stats"]["nulls"] for c in columns) / (rows * len(columns))
            if rows and columns
            else 0.0
        ),
        "target": _target_view(target) if target else None,
        "correlations": _correlation_view(profile.get("correlations") or {}),
        "missingness": _missingness_view(profile, columns),
        "fmt": fmt,
        "percent": percent,
    }


def _sample_text(sample: dict[str, Any], rows: int) -> str:
    """One sentence on where the statistics come from."""
    if not sample:
        return ""
    if sample.get("complete"):
        return f"Every statistic is exact: the sample holds all {fmt(rows)} rows."
    return (
        "Quantiles, histograms, top values, correlations, target association and missingness "
        f"patterns come from a seeded random sample of {fmt(sample['rows'])} rows "
        f"({percent(sample.get('fraction'))}, seed {sample.get('seed')}), with counts scaled to "
        "all rows; row counts, missing values, distinct values, min, max, mean and std come "
        "from every row."
    )


def _column_view(index: int, name: str, stats: dict[str, Any], estimated: bool) -> dict[str, Any]:
    kind = stats.get("kind") or ("numeric" if stats.get("numeric") else "categorical")
    approx = "≈ " if stats.get("distinct_approximate") else ""
    facts: list[tuple[str, str]] = [
        ("type", str(stats["type"])),
        ("missing", f"{fmt(stats['nulls'])} ({percent(stats['null_fraction'])})"),
        ("distinct", approx + fmt(stats["distinct"])),
    ]
    chart = None
    summary = ""
    if stats.get("numeric"):
        facts += [(key, fmt(stats.get(key))) for key in ("mean", "std", "min", "max")]
        facts += [(f"p{_percentile(q)}", fmt(v)) for q, v in (stats.get("quantiles") or {}).items()]
        if stats.get("non_finite"):
            facts.append(("NaN or ±inf", fmt(stats["non_finite"])))
        if stats.get("histogram"):
            histogram = stats["histogram"]
            chart = histogram_chart(name, histogram, bool(histogram.get("per_integer")))
        summary = f"mean {fmt(stats.get('mean'))}, std {fmt(stats.get('std'))}"
    else:
        if kind == "datetime":
            facts += [("min", fmt(stats.get("min"))), ("max", fmt(stats.get("max")))]
        top = stats.get("top_counts") or []
        if top:
            chart = bar_chart(
                "top-values",
                f"Most frequent values of {name}",
                [
                    (
                        str(t["value"]),
                        float(t["count"]),
                        f"{t['count']:,} ({percent(t['fraction'])})",
                    )
                    for t in top
                ],
            )
            summary = "top: " + ", ".join(_cut(str(t["value"]), 16) for t in top[:3])
    return {
        "index": index,
        "anchor": f"col-{index}",
        "name": name,
        "kind": kind,
        "stats": stats,
        "facts": facts,
        "chart": chart,
        "chart_note": "counts estimated from the sample" if chart and estimated else "",
        "summary": summary,
        "missing_text": percent(stats["null_fraction"]),
        "distinct_text": approx + fmt(stats["distinct"]),
        "top": stats.get("top_counts") or [],
        **{f"{key}_text": fmt(stats.get(key)) for key in ("mean", "std", "min", "max")},
    }


def _percentile(q: str) -> str:
    return f"{float(q) * 100:g}"


def _target_view(target: dict[str, Any]) -> dict[str, Any]:
    scored = [a for a in target["association"] if a["score"] is not None]
    chart = None
    if scored:
        chart = bar_chart(
            "association",
            f"Association with the target {target['name']}",
            [(a["column"], float(a["score"]), f"{a['score']:.3f}") for a in scored],
        )
    return {**target, "chart": chart, "measures": _MEASURES}


_MEASURES = {
    "pearson": "Pearson's r (score |r|)",
    "correlation_ratio": "correlation ratio η, adjusted for the number of groups",
    "cramers_v": "Cramér's V, bias-corrected",
}


def _correlation_view(correlations: dict[str, Any]) -> dict[str, Any]:
    columns = correlations.get("columns") or []
    matrix = correlations.get("matrix") or []
    chart = heatmap_chart(columns, matrix) if len(columns) >= 2 and matrix else None
    return {
        "chart": chart,
        "columns": columns,
        "of_columns": correlations.get("of_columns", len(columns)),
        "top_pairs": correlations.get("top_pairs") or [],
    }


def _missingness_view(profile: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    missing = [c for c in columns if c["stats"]["nulls"]]
    missing.sort(key=lambda c: -c["stats"]["null_fraction"])
    chart = None
    if missing:
        chart = bar_chart(
            "missing",
            "Missing values per column",
            [
                (
                    c["name"],
                    float(c["stats"]["null_fraction"]),
                    percent(c["stats"]["null_fraction"]),
                )
                for c in missing
            ],
        )
    info = profile.get("missingness") or {}
    patterns = info.get("patterns") or []
    pattern_columns = info.get("columns") or []
    pattern_chart = (
        patterns_chart(pattern_columns, patterns) if pattern_columns and patterns else None
    )
    return {
        "chart": chart,
        "pattern_chart": pattern_chart,
        "patterns": patterns,
        "distinct_patterns": info.get("distinct_patterns", len(patterns)),
    }
