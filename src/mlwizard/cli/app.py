"""The `mlwizard` command. Each command imports the core (and anything heavy) when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlwizard import __version__
from mlwizard.cli import operations
from mlwizard.cli.experiments import experiments
from mlwizard.cli.output import (
    err,
    errors_to_exit_codes,
    out,
    print_json,
    progress,
    report_failure,
)
from mlwizard.cli.reproduce import reproduce
from mlwizard.core.runner import PHASE_NAMES

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace

app = typer.Typer(
    name="mlwizard",
    help="From a table of data and a question to a validated, served, monitored model.",
    invoke_without_command=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    add_completion=False,
)


# The CLI's choices come from the core's phase table (light to import: no heavy library).
PHASE_CHOICES = (*PHASE_NAMES, "all")


def _phase_choice(value: str) -> str:
    if value not in PHASE_CHOICES:
        raise typer.BadParameter(f"'{value}' is not one of {', '.join(PHASE_CHOICES)}")
    return value


ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project", "-p", help="The project folder.", envvar="MLWIZARD_PROJECT", file_okay=False
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"mlwizard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """With no command, opens the interactive TUI on the current folder."""
    if ctx.invoked_subcommand is None:
        from mlwizard.tui import run_tui

        raise typer.Exit(run_tui(Path.cwd()))


@app.command()
def new(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    data: Annotated[Path | None, typer.Option(help="A CSV or Parquet file to copy in.")] = None,
    target: Annotated[str, typer.Option(help="The column to predict.")] = "",
    force: Annotated[bool, typer.Option(help="Scaffold into a non-empty folder.")] = False,
    table: Annotated[str, typer.Option(help="SQLite: the table to read; Excel: the sheet.")] = "",
) -> None:
    """Scaffold a project: a documented mlwizard.toml, a README, a .gitignore, folders."""
    from mlwizard.core.scaffold import create_project

    with errors_to_exit_codes():
        project = create_project(directory, data=data, target=target, force=force, table=table)
    out.print(f"Created project in {project}")
    if not target:
        out.print("Next: set \\[data] target in mlwizard.toml, then `mlwizard run --phase all`.")
    else:
        out.print(f"Next: cd {project} && mlwizard run --phase all")


@app.command()
def run(
    phase: Annotated[
        str,
        typer.Option(
            metavar="[" + "|".join(PHASE_CHOICES) + "]",
            callback=_phase_choice,
            autocompletion=lambda: list(PHASE_CHOICES),
            help="The phase to run; `all` runs what is needed.",
        ),
    ],
    project: ProjectOption = Path("."),
    data: Annotated[
        str | None,
        typer.Option(
            help="Set the data: a file (CSV, Parquet, JSON, Excel, SQLite), a glob, "
            "or a database URL (sqlite:///..., postgresql://...)."
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Set the column to predict.")] = None,
    table: Annotated[
        str | None, typer.Option(help="Set the SQLite table to read, or the Excel sheet.")
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option(min=1, help="Seconds for the model phase (overrides config).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout; progress on stderr.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            help='Where candidates train: "local" or "dask://HOST:PORT" (overrides '
            "[model] executor)."
        ),
    ] = None,
    with_upstream: Annotated[
        bool, typer.Option(help="Also run the phases it needs that are not up to date.")
    ] = False,
    hypothesis: Annotated[
        str | None,
        typer.Option(
            help="What this experiment tests; stored with the next model run "
            "(see `mlwizard experiments`)."
        ),
    ] = None,
) -> None:
    """Run phases headless, skipping those whose inputs have not changed."""
    from mlwizard.core import runner
    from mlwizard.core.kernel.workspace import Workspace

    with errors_to_exit_codes():
        workspace = Workspace(project)
        _apply_data_options(workspace, data, target, table)
        if hypothesis and hypothesis.strip():
            from mlwizard.core.model.hypotheses import set_pending

            set_pending(workspace, hypothesis)
        with progress() as emit:
            report = runner.run(
                workspace,
                runner.resolve_phases(phase, upstream=with_upstream),
                time_budget=time_budget,
                emit=emit,
                executor=executor,
            )
    if json_output:
        print_json(report.to_json())
    if report.error is not None:
        report_failure(report.error)
    elif not json_output:
        _print_summary(report)
    raise typer.Exit(report.exit_code)


def _apply_data_options(
    workspace: Workspace, data: str | None, target: str | None, table: str | None = None
) -> None:
    """`--data/--target/--table` create the config on a first run, or update it."""
    from mlwizard.core.ingest.sources import source_value
    from mlwizard.core.kernel.config import update_config_file
    from mlwizard.core.kernel.errors import BadInputError

    source = None if data is None else source_value(workspace.root, data)
    if not workspace.exists():
        if source is None or not target:
            raise BadInputError(
                f"{workspace.root}: no mlwizard.toml here; pass --data PATH --target COLUMN "
                "or run `mlwizard new DIR` first"
            )
        from mlwizard.core.scaffold import write_config

        workspace.root.mkdir(parents=True, exist_ok=True)
        write_config(workspace.root, source, target, table or "")
        return
    given = {"source": source, "target": target, "table": table}
    updates = {k: v for k, v in given.items() if v is not None}
    if updates:
        update_config_file(workspace.config_path, {"data": updates})


def _print_summary(report) -> None:
    for name, outcome in report.phases.items():
        artifacts = ", ".join(f"{k}: {v}" for k, v in list(outcome.artifacts.items())[:3])
        out.print(f"[bold]{name:<10}[/] {outcome.status:<8} {artifacts}", soft_wrap=True)


@app.command()
def status(
    project: ProjectOption = Path("."),
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Show each phase's checkpoint: done, stale, pending or failed, why, and what fixes it."""
    from rich.markup import escape
    from rich.table import Table

    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.runner import project_status

    with errors_to_exit_codes():
        states = project_status(Workspace(project))
    if json_output:
        print_json(
            {"project": str(Path(project).resolve()), "phases": [s.to_json() for s in states]}
        )
        return
    colours = {
        "done": "green",
        "stale": "yellow",
        "failed": "red",
        "cancelled": "yellow",
        "pending": "dim",
    }
    table = Table(title=f"mlwizard project {Path(project).resolve()}")
    for column in ("phase", "status", "why", "to fix", "finished", "took"):
        table.add_column(column)
    for state in states:
        cp = state.checkpoint
        table.add_row(
            state.phase,
            f"[{colours[state.status]}]{state.status}[/]",
            escape(state.reason),
            escape(state.fix),
            cp.finished_at if cp else "",
            f"{cp.duration_s:.1f}s" if cp else "",
        )
    out.print(table)


@app.command()
def predict(
    input_file: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="A file to score (CSV, Parquet, JSON, Excel), or - for NDJSON on stdin "
            "(predictions as NDJSON on stdout, row by row).",
        ),
    ],
    project: ProjectOption = Path("."),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write (.csv or .parquet).")
    ] = None,
) -> None:
    """Batch predictions with the deployed ONNX model (the same code the service runs)."""
    from rich.markup import escape

    from mlwizard.core.kernel.workspace import Workspace

    flagged: dict[str, int] = {}
    with errors_to_exit_codes():
        if str(input_file) == "-":
            import sys

            from mlwizard.core.deploy.stream import predict_stream

            rows = predict_stream(Workspace(project), sys.stdin, sys.stdout, flagged)
            written = None
        else:
            from mlwizard.core.deploy.batch import predict_file

            written = predict_file(Workspace(project), input_file, output, flagged)
    if flagged:
        summary = ", ".join(f"{key} ({count})" for key, count in sorted(flagged.items()))
        err.print(
            f"warning: {sum(flagged.values())} value(s) unlike training, still scored and "
            f"flagged in the warnings column: {escape(summary)}"
        )
    if written is None:
        err.print(f"Scored {rows} row(s)")
    else:
        out.print(f"Wrote predictions to {written}")


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo project.")] = Path(
        "mlwizard-demo"
    ),
    force: Annotated[bool, typer.Option(help="Reuse a non-empty folder.")] = False,
    time_budget: Annotated[float, typer.Option(min=1, help="Seconds for the model phase.")] = 120,
) -> None:
    """Scaffold a project on the bundled penguins data (predicting sex) and run every phase."""
    from importlib import resources

    from mlwizard.core import runner
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.scaffold import create_project

    with errors_to_exit_codes():
        with resources.as_file(resources.files("mlwizard.datasets") / "penguins.csv") as data:
            project = create_project(directory, data=data, target="sex", force=force)
        workspace = Workspace(project)
        with progress() as emit:
            report = runner.run(workspace, runner.PHASE_NAMES, time_budget=time_budget, emit=emit)
    if report.error is not None:
        report_failure(report.error)
        raise typer.Exit(report.exit_code)
    model = report.phases["model"].metrics
    deploy = report.phases["deploy"]
    service = deploy.artifacts["service"]
    headline = [model["metric"], *(k for k in ("accuracy", "r2", "rmse") if k != model["metric"])]
    scores = ", ".join(
        f"{k} {model['test'][k]:.3f}" for k in headline if model["test"].get(k) is not None
    )
    exe, bin_dir = _command()
    lines = [
        f"\n[bold]Demo project:[/] {project}",
        f"Best model: [bold]{model['best_model']}[/] — test {scores}",
        f"ONNX parity (max abs diff): {deploy.metrics['onnx_max_abs_diff']:.2e}",
        f"Artifacts: {project / 'artifacts'}",
        f"Status:    {exe} status --project {project}",
        f"TUI:       {exe} tui --project {project}",
        f"Serve it:  cd {service} && {bin_dir}uvicorn app:app --port 8000",
        f"Container: docker build -t {project.name} {service}",
    ]
    for line in lines:  # whole commands, never wrapped mid-command when piped
        out.print(line, soft_wrap=True)


def _command() -> tuple[str, str]:
    """How to call mlwizard (and the venv's other commands) from the user's shell: by name when
    the running one is on PATH, else by its full path (`make demo` does not activate the venv)."""
    import shutil
    import sys

    bin_dir = Path(sys.executable).parent
    found = shutil.which("mlwizard")
    if found and Path(found).resolve().parent == bin_dir.resolve():
        return "mlwizard", ""
    return str(bin_dir / "mlwizard"), f"{bin_dir}/"


@app.command()
def tui(project: ProjectOption = Path(".")) -> None:
    """Open the interactive TUI on a project."""
    from mlwizard.tui import run_tui

    raise typer.Exit(run_tui(project.resolve()))


app.command()(experiments)
app.command()(reproduce)
app.command()(operations.monitor)
app.command()(operations.models)
app.command()(operations.retrain)
app.command()(operations.rollback)


def main() -> None:
    app()
