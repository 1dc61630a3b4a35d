"""The model phase's HTML report: leaderboard, confusion matrix or residuals, calibration,
permutation importance and worst slices, from `leaderboard.json` and `evaluation.json`.

Like the data report: one self-contained page, inline SVG whose geometry is computed here, no
script, a Content-Security-Policy that fetches nothing; names from the data are escaped by
Jinja's autoescape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.kernel.templates import templates_dir

TEMPLATE = "report/model.html.j2"
FILE = "report.html"
WIDTH, BAR_H, LABEL_W = 560, 18, 170


def _bars(kind: str, label: str, items: list[tuple[str, float, str]]) -> dict[str, Any]:
    """Horizontal bars: (name, value >= 0, tooltip) each, scaled to the largest."""
    top = max((v for _, v, _ in items), default=0.0) or 1.0
    rects, texts = [], []
    for i, (name, value, tip) in enumerate(items):
        y = 4 + i * (BAR_H + 6)
        width = max(1.0, (WIDTH - LABEL_W - 60) * max(0.0, value) / top)
        rects.append(
            {
                "cls": "bar",
                "x": LABEL_W,
                "y": y,
                "width": round(width, 1),
                "height": BAR_H,
                "fill": "",
                "tip": tip,
            }
        )
        texts.append(
            {
                "cls": "label",
                "x": LABEL_W - 6,
                "y": y + 13,
                "anchor": "end",
                "text": name[:26],
                "rotate": False,
            }
        )
        texts.append(
            {
                "cls": "value",
                "x": LABEL_W + width + 4,
                "y": y + 13,
                "anchor": "start",
                "text": fmt(value),
                "rotate": False,
            }
        )
    height = 8 + len(items) * (BAR_H + 6)
    return {
        "kind": kind,
        "label": label,
        "width": WIDTH,
        "height": height,
        "rects": rects,
        "texts": texts,
    }


def _heatmap(matrix: dict[str, Any]) -> dict[str, Any]:
    labels, rows = matrix["labels"], matrix["matrix"]
    n = len(labels)
    cell = max(14, min(48, (WIDTH - LABEL_W) // max(1, n)))
    top = max((v for row in rows for v in row), default=0) or 1
    rects, texts = [], []
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            shade = round(0.1 + 0.9 * count / top, 3)
            rects.append(
                {
                    "cls": "cell",
                    "x": LABEL_W + j * cell,
                    "y": 20 + i * cell,
                    "width": cell - 2,
                    "height": cell - 2,
                    "fill": f"rgba(61,124,184,{shade})",
                    "tip": f"true {labels[i]}, predicted {labels[j]}: {count}",
                }
            )
        texts.append(
            {
                "cls": "label",
                "x": LABEL_W - 6,
                "y": 20 + i * cell + cell / 2 + 4,
                "anchor": "end",
                "text": str(labels[i])[:26],
                "rotate": False,
            }
        )
    for j, name in enumerate(labels):
        texts.append(
            {
                "cls": "label",
                "x": LABEL_W + j * cell + cell / 2,
                "y": 14,
                "anchor": "middle",
                "text": str(name)[:8],
                "rotate": False,
            }
        )
    return {
        "kind": "confusion",
        "label": "confusion matrix (rows: true, columns: predicted)",
        "width": max(WIDTH, LABEL_W + n * cell + 10),
        "height": 30 + n * cell,
        "rects": rects,
        "texts": texts,
    }


def _calibration(curve: dict[str, Any]) -> dict[str, Any]:
    items = [
        (
            f"{b['lower']:.1f}–{b['upper']:.1f}",
            float(b["observed"] or 0.0),
            f"{b['count']} rows, mean predicted {fmt(b['mean_predicted'])}, "
            f"observed {fmt(b['observed'])}",
        )
        for b in curve.get("bins", [])
        if b.get("count")
    ]
    return _bars("calibration", f"calibration: {curve.get('what', '')}", items)


def _residuals(residuals: dict[str, Any]) -> dict[str, Any] | None:
    histogram = residuals.get("histogram")
    if not histogram:
        return None
    edges, counts = histogram["edges"], histogram["counts"]
    items = [
        (f"{fmt(edges[i])} … {fmt(edges[i + 1])}", float(c), f"{c} rows")
        for i, c in enumerate(counts)
    ]
    return _bars("residuals", "residuals (target − prediction), validation rows", items)


def view(board: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the template shows."""
    metric = board["metric"]
    scored = [r for r in board["rows"] if r.get("score") is not None]
    charts = [
        _bars(
            "leaderboard",
            f"validation {metric} by candidate",
            [
                (r["name"], abs(float(r["score"])), f"{r['name']}: {fmt(r['score'])}")
                for r in scored
            ],
        )
    ]
    valid = evaluation.get("validation", {})
    if valid.get("confusion_matrix"):
        charts.append(_heatmap(valid["confusion_matrix"]))
    if valid.get("calibration"):
        charts.append(_calibration(valid["calibration"]))
    if valid.get("residuals"):
        chart = _residuals(valid["residuals"])
        if chart:
            charts.append(chart)
    analysis = evaluation.get("error_analysis") or {}
    importance = analysis.get("permutation_importance") or {}
    features = importance.get("features") or []
    if features:
        charts.append(
            _bars(
                "importance",
                importance.get("what", "permutation importance"),
                [
                    (f["feature"], max(0.0, float(f["importance"])), f"± {fmt(f['std'])}")
                    for f in features[:15]
                ],
            )
        )
    return {
        "metric": metric,
        "best": board.get("best_model"),
        "baseline": board.get("baseline"),
        "rows": board["rows"],
        "test": (evaluation.get("test") or {}).get("scores") or {},
        "test_rows": (evaluation.get("test") or {}).get("rows"),
        "warnings": evaluation.get("warnings") or [],
        "charts": charts,
        "slices": analysis.get("worst_slices") or [],
        "importance_skipped": importance.get("skipped"),
        "fmt": fmt,
    }


def render(board: dict[str, Any], evaluation: dict[str, Any], title: str) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(TEMPLATE).render(title=title, **view(board, evaluation))


def write(path: Path, board: dict[str, Any], evaluation: dict[str, Any], title: str) -> Path:
    return atomic.write_text(path, render(board, evaluation, title))
