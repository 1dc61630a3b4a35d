"""`mlwizard experiments`: the model phase's runs, grouped by phase run, or compared side by side.

Registered in `app.py` with `app.command()(experiments)`. The core (and DuckDB) is imported
inside the command, so `mlwizard --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mlwizard.cli.output import errors_to_exit_codes, out, print_json

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.model.experiment_query import Comparison, PhaseRun, RunRow

STATUS_STYLE = {"done": "green", "failed": "red", "skipped": "yellow", "cancelled": "dim"}
CHOSEN = "★"


def experiments(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="RUN_ID",
            help="Compare these runs side by side (ids or unique prefixes, as listed).",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        Path,
        typer.Option(
            "--project",
            "-p",
            help="The project folder.",
            envvar="MLWIZARD_PROJECT",
            file_okay=False,
        ),
    ] = Path("."),
    limit: Annotated[
        int, typer.Option(min=0, help="How many phase runs to list, latest first (0: all).")
    ] = 5,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """List the model runs, latest phase run first, or compare runs side by side.

    Each run: id, status, validation score, time, deployable or why not; ★ marks the choice.
    """
    from mlwizard.core.kernel.errors import BadInputError
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.model.experiment_query import compare_runs, list_phase_runs, store_path

    with errors_to_exit_codes():
        workspace = Workspace(project)
        if not workspace.exists() and not store_path(workspace).is_file():
            raise BadInputError(f"{workspace.root}: not an mlwizard project (no mlwizard.toml)")
        if run_ids:
            comparison = compare_runs(workspace, run_ids)
        else:
            every = list_phase_runs(workspace)
            shown = every[:limit] if limit else every
    if run_ids:
        if json_output:
            print_json({"project": str(workspace.root), "comparison": comparison.to_json()})
        else:
            _print_comparison(comparison)
        return
    if json_output:
        print_json(
            {
                "project": str(workspace.root),
                "store": str(store_path(workspace)),
                "phase_runs_total": len(every),
                "phase_runs": [p.to_json() for p in shown],
            }
        )
        return
    _print_listing(workspace, shown, hidden=len(every) - len(shown))


# -- the listing -----------------------------------------------------------------------------------
def _print_listing(workspace: Workspace, phase_runs: list[PhaseRun], hidden: int) -> None:
    if not phase_runs:
        out.print(
            f"No model runs yet in {workspace.root}. Train some with "
            "`mlwizard run --phase model` (or `--phase all`)."
        )
        return
    out.print(f"[bold]Experiments[/] in {workspace.root}", soft_wrap=True)
    for phase_run in phase_runs:
        out.print()
        for line in _phase_header(phase_run):
            out.print(line, soft_wrap=True)
        out.print(_phase_table(phase_run))
        for line in _phase_notes(workspace, phase_run):
            out.print(line, soft_wrap=True)
    out.print()
    if hidden:
        out.print(f"[dim]{hidden} older phase run(s) not shown; --limit 0 lists them all.[/]")
    out.print("[dim]Compare runs: mlwizard experiments RUN_ID RUN_ID · for scripts: --json[/]")


def _phase_header(phase_run: PhaseRun) -> list[str]:
    head = f"[bold]Phase run {phase_run.phase_run_id[:8]}[/] · {_when(phase_run.started_at)}"
    if phase_run.current:
        head += " · [bold green]current model[/]"
    first = phase_run.runs[0]
    facts = []
    if first.data_fingerprint:
        facts.append(f"data {first.data_fingerprint[:10]}")
    if first.seed is not None:
        facts.append(f"seed {first.seed}")
    if phase_run.metric:
        better = {"maximize": "higher", "minimize": "lower"}.get(phase_run.direction or "")
        facts.append(
            f"ranked by validation {phase_run.metric}"
            + (f" ({better} is better)" if better else "")
        )
    lines = [head, f"[dim]{' · '.join(facts)}[/]"] if facts else [head]
    if phase_run.hypothesis:
        lines.append(f"hypothesis: {escape(phase_run.hypothesis)}")
    return lines


def _phase_table(phase_run: PhaseRun) -> Table:
    """Compact enough for 80 columns; the reasons go below the table, where they can wrap."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", style="cyan", no_wrap=True, min_width=8)
    table.add_column("candidate", overflow="fold")
    table.add_column("status", no_wrap=True)
    arrow = {"maximize": " ↑", "minimize": " ↓"}.get(phase_run.direction or "", "")
    table.add_column(f"{phase_run.metric or 'score'}{arrow}", justify="right", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("deployable", no_wrap=True)
    for run in phase_run.ranked():
        table.add_row(
            run.short_id,
            Text(f"{CHOSEN} {run.candidate}", style="bold") if run.chosen else f"  {run.candidate}",
            Text(run.status, style=STATUS_STYLE.get(run.status, "")),
            _score(run.score),
            f"{run.duration_s:.1f}s" if run.duration_s is not None else "",
            _deployable(run),
        )
    return table


def _phase_notes(workspace: Workspace, phase_run: PhaseRun) -> list[str]:
    """What was chosen and why the others were not: not deployable, not trained, failed."""
    lines = []
    chosen = phase_run.chosen
    if chosen is not None:
        line = f"{CHOSEN} chosen: [bold]{chosen.candidate}[/] (run {chosen.short_id})"
        details = []
        test = phase_run.test or {}
        if phase_run.metric and isinstance(test.get(phase_run.metric), int | float):
            details.append(f"test {phase_run.metric} {_score(test[phase_run.metric])}")
        parity = (chosen.metrics or {}).get("parity") or {}
        if isinstance(parity.get("max_abs_diff"), int | float):
            details.append(f"ONNX matches the pipeline (max diff {parity['max_abs_diff']:.1e})")
        if details:
            line += ": " + ", ".join(details)
        if phase_run.current:
            model = workspace.artifact_dir("model") / "model.onnx"
            line += f"; the project's model ({workspace.relative(model)})"
        lines.append(line)
    elif phase_run.error:
        lines.append(f"[red]model phase failed:[/] {phase_run.error}")
    elif not any(r.status == "done" and r.deployable for r in phase_run.runs):
        lines.append("[red]no run of this phase run can be deployed[/]")
    else:
        lines.append("[dim]no choice recorded for this phase run[/]")
    for run in phase_run.ranked():
        why = run.reason or "no reason recorded"
        if run.status == "done" and run.deployable is False:
            lines.append(f"[red]not deployable:[/] {_who(run)}: {why}")
        elif run.status in ("skipped", "cancelled"):
            lines.append(f"[yellow]not trained:[/] {_who(run)}: {run.status}, {why}")
        elif run.status == "failed":
            lines.append(f"[red]failed:[/] {_who(run)}: {why}")
    for proposal in phase_run.proposals[:3]:
        lines.append(f"[cyan]next hypothesis:[/] {escape(str(proposal.get('hypothesis', '')))}")
    return ["  " + line for line in lines]


def _who(run: RunRow) -> str:
    return f"{run.candidate} ({run.short_id})"


def _deployable(run: RunRow) -> Text:
    if run.status != "done" or run.deployable is None:
        return Text("–", style="dim")
    return Text("yes", style="green") if run.deployable else Text("no", style="red")


def _notes(run: RunRow) -> str:
    if run.reason:
        return run.reason
    parity = (run.metrics or {}).get("parity") or {}
    if run.deployable and isinstance(parity.get("max_abs_diff"), int | float):
        return f"ONNX matches (max diff {parity['max_abs_diff']:.1e})"
    return ""


# -- the comparison --------------------------------------------------------------------------------
def _print_comparison(comparison: Comparison) -> None:
    runs = comparison.runs
    table = Table(title="Runs compared", title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for run in runs:
        table.add_column(f"{run.short_id}\n{run.candidate}", overflow="fold", max_width=40)
    facts: list[tuple[str, list[Any]]] = [
        ("phase run", [r.phase_run_id[:8] for r in runs]),
        ("started", [_when(r.started_at, short=True) for r in runs]),
        ("status", [r.status for r in runs]),
        ("deployable", [_deployable(r) for r in runs]),
        ("chosen", [CHOSEN if r.chosen else "" for r in runs]),
        ("why / notes", [_notes(r) for r in runs]),
        ("data", [(r.data_fingerprint or "")[:10] for r in runs]),
        ("seed", [r.seed for r in runs]),
    ]
    for label, values in facts:
        table.add_row(label, *(_cell(v) for v in values))
    table.add_section()
    for name, values in comparison.metrics.items():
        table.add_row(name, *(_number(v) if v is not None else "" for v in values))
    table.add_section()
    for name, values in comparison.params.items():
        style = "yellow" if name in comparison.differing_params else ""
        table.add_row(Text(name, style=style), *(Text(_value(v), style=style) for v in values))
    versions = _differing_versions(runs)
    if versions:
        table.add_section()
        for name, values in versions.items():
            table.add_row(Text(name, style="yellow"), *(Text(v, style="yellow") for v in values))
    out.print(table)
    if comparison.differing_params:
        out.print("[dim]Parameters that differ between the runs are in yellow.[/]")


def _differing_versions(runs: list[RunRow]) -> dict[str, list[str]]:
    names = dict.fromkeys(name for r in runs for name in r.package_versions)
    result = {}
    for name in names:
        values = [r.package_versions.get(name, "") for r in runs]
        if len(set(values)) > 1:
            result[name] = values
    return result


# -- formatting ------------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    return value if isinstance(value, Text) else _value(value)


def _value(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _score(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"


def _when(value: Any, short: bool = False) -> str:
    if value is None:
        return ""
    return value.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M UTC")
