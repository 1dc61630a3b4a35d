"""`mlwizard reproduce`: rebuild the model from its manifest and check it is the same model."""

from __future__ import annotations

from pathlib import Path

import typer

from mlwizard.cli.operations import ProjectOption
from mlwizard.cli.output import err, errors_to_exit_codes, out


def reproduce(project: ProjectOption = Path(".")) -> None:
    """Rebuild the model version from its manifest without the clock -- the chosen run's model,
    the tested refit and the deployed refit -- and exit 1 if metrics, ONNX bytes or ONNX
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
    models = ", ".join(result.rebuilt) or "nothing rebuilt"
    if result.roles:
        models += f" ({result.roles})"
    if result.identical:
        out.print(f"{result.model}: rebuilt from the manifest, identical: {models}", soft_wrap=True)
    else:
        count = len(result.differences)
        err.print(
            f"[bold red]error:[/] {escape(result.model)}: rebuilt from the manifest, NOT identical "
            f"({count} difference{'s' if count != 1 else ''}, first: "
            f"{escape(result.differences[0])})",
            soft_wrap=True,
        )
    raise typer.Exit(0 if result.identical else 1)
