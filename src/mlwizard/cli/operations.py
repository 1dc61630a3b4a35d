"""`mlwizard monitor`, `models`, `retrain` and `rollback`: thin calls into core.operations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mlwizard.cli.output import errors_to_exit_codes, out, print_json, progress_printer

ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project", "-p", help="The project folder.", envvar="MLWIZARD_PROJECT", file_okay=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def monitor(
    current: Annotated[
        str,
        typer.Argument(
            metavar="CURRENT",
            help="A file or glob of production data, or the service's request log (NDJSON).",
        ),
    ],
    project: ProjectOption = Path("."),
    labels: Annotated[
        str | None,
        typer.Option(
            help="The column of CURRENT holding the true outcome; for a request log, a file "
            "with request_id and the outcome."
        ),
    ] = None,
    shadow: Annotated[
        Path | None,
        typer.Option(help="Evaluate the logged shadow challenger against this labels file."),
    ] = None,
    prometheus: Annotated[
        Path | None, typer.Option(help="Also write the drift scores as a Prometheus textfile.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Drift, prediction drift and (with labels) metrics of CURRENT against the champion.

    Exit 0 healthy, 3 drift or degradation, 2 bad input.
    """
    from mlwizard.core.kernel import atomic
    from mlwizard.core.kernel.workspace import Workspace

    workspace = Workspace(project)
    if shadow is not None:
        from mlwizard.core.operations.shadow import evaluate_shadow

        with errors_to_exit_codes():
            result = evaluate_shadow(workspace, Path(current), shadow)
        if json_output:
            print_json(result)
        else:
            d = result["decision"]
            out.print(
                f"shadow: {result['labelled_pairs']} labelled requests, champion "
                f"v{result['champion_version']} {d['metric']} {d['champion']}, challenger "
                f"v{result['challenger_version']} {d['challenger']}"
            )
            out.print(escape(d["reason"]), soft_wrap=True)
        return
    from mlwizard.core.operations.monitor import monitor as run_monitor
    from mlwizard.core.operations.report import to_prometheus, write_report

    with errors_to_exit_codes():
        report = run_monitor(workspace, current, labels)
        paths = write_report(workspace, report)
        report["reports"] = {k: str(v) for k, v in paths.items()}
        if prometheus is not None:
            atomic.write_text(prometheus, to_prometheus(report, workspace.root.name))
    if json_output:
        print_json(report)
    else:
        _print_monitor(report)
    raise typer.Exit(report["exit_code"])


def _print_monitor(report: dict) -> None:
    colour = "green" if report["status"] == "healthy" else "bold red"
    out.print(
        f"[{colour}]{report['status']}[/]: {report['rows']} rows of {escape(report['current'])} "
        f"against model version {report['version']}",
        soft_wrap=True,
    )
    for name, f in report["features"].items():
        if f["level"] not in ("stable",):
            out.print(
                f"  {escape(name)}: {f['level']} — {escape('; '.join(f['reasons']))}",
                soft_wrap=True,
            )
    prediction = report.get("prediction")
    if prediction:
        out.print(f"  predictions: {prediction['level']} (PSI {prediction['psi']:.3f})")
    for what in report["degraded"]:
        out.print(f"  degraded: {escape(what)}", soft_wrap=True)
    out.print(f"Report: {report['reports']['html']}", soft_wrap=True)


def models(project: ProjectOption = Path("."), json_output: JsonOption = False) -> None:
    """The model registry: versions, their data and scores, and the champion."""
    from rich.table import Table

    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.operations.registry import Registry

    registry = Registry(Workspace(project).root)
    versions, champion = registry.versions(), registry.champion()
    if json_output:
        print_json({"champion": champion, "versions": versions, "history": registry.history()})
        return
    if not versions:
        out.print("No registered model yet: run `mlwizard run --phase all`.")
        return
    table = Table(title="Model registry")
    for column in ("version", "", "model", "data version", "metric", "test", "created", "origin"):
        table.add_column(column)
    for m in versions:
        metric = m.get("metric")
        score = (m.get("test") or {}).get(metric)
        table.add_row(
            str(m["version"]),
            "champion" if m["version"] == champion else "",
            str(m.get("model")),
            str(m.get("data_version")),
            str(metric),
            f"{score:.4f}" if isinstance(score, float) else "",
            str(m.get("created_at")),
            escape(str(m.get("origin"))),
        )
    out.print(table)
    history = registry.history()
    if history:
        last = history[-1]
        out.print(f"Last decision ({last['at']}): {escape(last['reason'])}", soft_wrap=True)


def retrain(
    data: Annotated[str, typer.Option(help="The new data: a file, a glob or a database URL.")],
    project: ProjectOption = Path("."),
    time_budget: Annotated[
        float | None, typer.Option(min=1, help="Seconds for the challenger's model phase.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Train a challenger on new data; it becomes champion only if significantly better."""
    from mlwizard.core import runner
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.operations.retrain import retrain as run_retrain

    with errors_to_exit_codes():
        result = run_retrain(
            Workspace(project), data, runner.run, time_budget=time_budget, emit=progress_printer()
        )
    if json_output:
        print_json(result)
        return
    verdict = "[green]promoted[/]" if result["promoted"] else "[yellow]champion kept[/]"
    out.print(f"{verdict}: {escape(result['reason'])}", soft_wrap=True)


def rollback(
    version: Annotated[
        int | None, typer.Argument(help="The version to make champion (default: the previous).")
    ] = None,
    project: ProjectOption = Path("."),
    json_output: JsonOption = False,
) -> None:
    """Make an earlier version champion again and restore its bundle into registry/serving/."""
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.operations.registry import Registry

    with errors_to_exit_codes():
        result = Registry(Workspace(project).root).rollback(version)
    if json_output:
        print_json(result)
        return
    out.print(
        f"{escape(result['reason'])}; bundle restored in {escape(result['serving'])}",
        soft_wrap=True,
    )
