"""A monitoring report as JSON, Markdown, self-contained HTML, and a Prometheus textfile."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.workspace import Workspace

COLOURS = {
    "stable": "#2e7d32",
    "moderate": "#ef6c00",
    "major": "#c62828",
    "insufficient": "#757575",
}
LEVEL_VALUE = {"insufficient": -1, "stable": 0, "moderate": 1, "major": 2}


def write_report(ws: Workspace, report: dict[str, Any]) -> dict[str, Path]:
    """`artifacts/operations/monitor/report-<time>.{json,md,html}` and `latest.*` copies."""
    folder = ws.artifact_dir("operations") / "monitor"
    stamp = re.sub(r"[^0-9]", "", str(report["created_at"]))[:14]
    markdown, page = to_markdown(report), to_html(report)
    paths: dict[str, Path] = {}
    for name in (f"report-{stamp}", "latest"):
        paths[f"{name}.json"] = atomic.write_json(folder / f"{name}.json", report)
        paths[f"{name}.md"] = atomic.write_text(folder / f"{name}.md", markdown)
        paths[f"{name}.html"] = atomic.write_text(folder / f"{name}.html", page)
    return {
        "json": paths[f"report-{stamp}.json"],
        "markdown": paths[f"report-{stamp}.md"],
        "html": paths[f"report-{stamp}.html"],
    }


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    order = ["major", "moderate", "stable", "insufficient"]
    features = report.get("features") or {}
    return sorted(features.items(), key=lambda kv: (order.index(kv[1]["level"]), -kv[1]["psi"]))


def _fmt(value: Any, digits: int = 3) -> str:
    return (
        "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    )


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Monitoring report: {report['status']}",
        "",
        f"{report['rows']} rows of `{report['current']}` against model version "
        f"{report['version']} ({report.get('model')}), {report['created_at']}.",
        "",
        "| feature | level | PSI | noise floor | JS | missing rate | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in _rows(report):
        missing = f.get("missing_rate") or {}
        rate = f"{missing['reference']:.1%} → {missing['current']:.1%}" if missing else ""
        notes = "; ".join(f.get("reasons") or []).replace("|", "\\|")
        lines.append(
            f"| {name} | {f['level']} | {_fmt(f['psi'])} | {_fmt(f['noise_floor'])} | "
            f"{_fmt(f['js'])} | {rate} | {notes} |"
        )
    skipped = report.get("not_monitored") or {}
    if skipped:
        lines += [
            "",
            "Not monitored: " + ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items())),
        ]
    prediction = report.get("prediction")
    if prediction:
        lines += [
            "",
            f"Prediction drift: {prediction['level']} (PSI {_fmt(prediction['psi'])}, "
            f"JS {_fmt(prediction['js'])}).",
        ]
    performance = report.get("performance")
    if performance:
        overall = performance["overall"]
        lines += [
            "",
            f"## {performance['metric']} on {performance['labelled_rows']} labelled rows",
            "",
            "| slice | rows | now | at training | degraded |",
            "|---|---|---|---|---|",
            f"| overall | {overall['rows']} | {_fmt(overall.get('value'), 4)} | "
            f"{_fmt(overall.get('reference'), 4)} | {'yes' if overall.get('degraded') else 'no'} |",
        ]
        for name, values in performance["slices"].items():
            for value, entry in values.items():
                lines.append(
                    f"| {name} = {value} | {entry['rows']} | {_fmt(entry.get('value'), 4)} | "
                    f"{_fmt(entry.get('reference'), 4)} | "
                    f"{'yes' if entry.get('degraded') else 'no'} |"
                )
    advice = report.get("advice") or {}
    lines += [
        "",
        "## " + ("Retrain recommended" if advice.get("retrain") else "No retraining needed"),
        "",
    ]
    lines += [f"- {reason}" for reason in advice.get("reasons") or []]
    return "\n".join(lines) + "\n"


def to_html(report: dict[str, Any]) -> str:
    """One file, no external resources: inline CSS and bars drawn with plain divs."""
    esc = html.escape
    rows = []
    for name, f in _rows(report):
        colour = COLOURS.get(f["level"], "#000")
        width = min(f["psi"], 0.5) / 0.5 * 100
        rows.append(
            f"<tr><td>{esc(name)}</td><td style='color:{colour};font-weight:bold'>{f['level']}</td>"
            f"<td>{_fmt(f['psi'])}</td><td><div class='bar' style='width:{width:.0f}%;"
            f"background:{colour}'></div></td><td>{_fmt(f['js'])}</td>"
            f"<td>{esc('; '.join(f.get('reasons') or []))}</td></tr>"
        )
    body = "\n".join(rows)
    markdown = esc(to_markdown(report))
    status_colour = COLOURS["major"] if report["status"] != "healthy" else COLOURS["stable"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Monitoring report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: .3rem .6rem; border-bottom: 1px solid #ddd; }}
.bar {{ height: .8rem; min-width: 2px; }} td:nth-child(4) {{ width: 10rem; }}
pre {{ background: #f6f6f6; padding: 1rem; white-space: pre-wrap; }}
</style></head><body>
<h1>Monitoring: <span style="color:{status_colour}">{esc(report["status"])}</span></h1>
<p>{report["rows"]} rows of <code>{esc(str(report["current"]))}</code> against model version
{report["version"]}, {esc(str(report["created_at"]))}.</p>
<table><tr><th>feature</th><th>level</th><th>PSI</th><th></th><th>JS</th><th>why</th></tr>
{body}
</table>
<h2>Details</h2>
<pre>{markdown}</pre>
</body></html>
"""


def to_prometheus(report: dict[str, Any], service: str = "mlwizard") -> str:
    """A node-exporter textfile: drift scores and levels per feature, and the overall status."""

    def label(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")

    lines = [
        "# HELP mlwizard_drift_psi PSI of a feature against the model's reference.",
        "# TYPE mlwizard_drift_psi gauge",
    ]
    for name, f in (report.get("features") or {}).items():
        lines.append(
            f'mlwizard_drift_psi{{service="{label(service)}",feature="{label(name)}"}} {f["psi"]}'
        )
    lines += [
        "# HELP mlwizard_drift_level Drift level: -1 too few rows, 0 stable, 1 moderate, 2 major.",
        "# TYPE mlwizard_drift_level gauge",
    ]
    for name, f in (report.get("features") or {}).items():
        lines.append(
            f'mlwizard_drift_level{{service="{label(service)}",feature="{label(name)}"}} '
            f"{LEVEL_VALUE.get(f['level'], 0)}"
        )
    prediction = report.get("prediction") or {}
    if prediction:
        lines += [
            "# TYPE mlwizard_prediction_drift_psi gauge",
            f'mlwizard_prediction_drift_psi{{service="{label(service)}"}} {prediction["psi"]}',
        ]
    lines += [
        "# HELP mlwizard_monitor_drift 1 when the last monitor run found drift or degradation.",
        "# TYPE mlwizard_monitor_drift gauge",
        f'mlwizard_monitor_drift{{service="{label(service)}"}} '
        f"{int(report['status'] != 'healthy')}",
        "# TYPE mlwizard_monitor_rows gauge",
        f'mlwizard_monitor_rows{{service="{label(service)}"}} {report["rows"]}',
    ]
    return "\n".join(lines) + "\n"
