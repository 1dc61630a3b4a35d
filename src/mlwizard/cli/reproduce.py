"""`mlwizard reproduce`: rebuild the model from its manifest and check it is the same model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwizard.cli.output import err, errors_to_exit_codes, out


def reproduce(
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
) -> None:
    """Rebuild the model version from its manifest without the clock; exit 1 if metrics or ONNX
    predictions differ from the recorded ones."""
    from rich.markup import escape

    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.model.reproduce import reproduce as rebuild

    with errors_to_exit_codes():
        result = rebuild(Workspace(project))
    for line in result.checked:
        out.print(f"[green]same[/]     {escape(line)}", soft_wrap=True)
    for line in result.notes:
        err.print(f"[dim]note[/]     {escape(line)}", soft_wrap=True)
    for line in result.differences:
        out.print(f"[red]differs[/]  {escape(line)}", soft_wrap=True)
    verdict = "identical" if result.identical else "NOT identical"
    out.print(f"{result.model}: rebuilt from the manifest, {verdict}")
    raise typer.Exit(0 if result.identical else 1)
