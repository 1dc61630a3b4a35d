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
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mlwizard.core.data.report_charts import (
    bar_chart,
    cut,
    heatmap_chart,
    histogram_chart,
    patterns_chart,
    percent,
)
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.kernel.templates import render, templates_dir

HTML_TEMPLATE = "report/report.html.j2"
MARKDOWN_TEMPLATE = "report/summary.md.j2"
REPORT_FILES = {"json": "profile.json", "markdown": "profile.md", "html": "report.html"}


def write_reports(
    profile: dict[str, Any],
    directory: Path,
    title: str,
    audit: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write `profile.json`, `profile.md` and `report.html` into `directory`, each atomically.

    `audit` (findings, excluded_columns, types) puts the audit beside the profile in the HTML
    page. All three are rendered before the first is written, so a failure leaves the folder as
    it was.
    """
    texts = {
        "json": json.dumps(json_safe(profile), indent=2, allow_nan=False) + "\n",
        "markdown": render_markdown(profile, title),
        "html": render_html(profile, title, audit),
    }
    paths = {kind: directory / name for kind, name in REPORT_FILES.items()}
    for kind, path in paths.items():
        atomic.write_text(path, texts[kind])
    return paths


def render_html(profile: dict[str, Any], title: str, audit: dict[str, Any] | None = None) -> str:
    return (
        _html_environment(templates_dir())
        .get_template(HTML_TEMPLATE)
        .render(title=title, audit=_audit_view(audit) if audit else None, **_view(profile))
    )


def _audit_view(audit: dict[str, Any]) -> dict[str, Any]:
    """The audit's findings (errors first) and the excluded columns with their reasons."""
    findings = list(audit.get("findings") or [])
    excluded = audit.get("excluded_columns") or {}
    types = audit.get("types") or {}
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("error", "warning", "info")}
    tally = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())
    return {
        "summary": f"{tally}; {len(excluded)} column{'s' if len(excluded) != 1 else ''} "
        "excluded from the features. Each finding says what was found and what to do.",
        "findings": findings,
        "excluded": [
            {"column": name, "type": types.get(name, ""), "why": why}
            for name, why in excluded.items()
        ],
    }


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
            summary = "top: " + ", ".join(cut(str(t["value"]), 16) for t in top[:3])
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
