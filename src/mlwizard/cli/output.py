"""Output channels: results on stdout, diagnostics on stderr, errors mapped to exit codes.

Scripts can pipe stdout safely: with `--json` it carries exactly one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from mlwizard.core.kernel.errors import MlwizardError

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

INTERNAL_ERROR_EXIT = 3


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn core errors into one line and an exit code; never show users a traceback.

    Unexpected exceptions are bugs: they get one line too, and `MLWIZARD_DEBUG=1` shows the
    traceback for a bug report.
    """
    try:
        yield
    except MlwizardError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("MLWIZARD_DEBUG"):
            raise
        raise fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(rerun with MLWIZARD_DEBUG=1 for the traceback, and please report it)",
            INTERNAL_ERROR_EXIT,
        ) from None


def report_failure(error: MlwizardError) -> None:
    """One line for a failed run; the traceback of a bug only with MLWIZARD_DEBUG=1."""
    if error.__cause__ is not None and os.environ.get("MLWIZARD_DEBUG"):
        import traceback

        traceback.print_exception(error.__cause__)
    hint = " (rerun with MLWIZARD_DEBUG=1 for the traceback)" if error.exit_code == 3 else ""
    err.print(f"[bold red]error:[/] {escape(str(error))}{hint}", soft_wrap=True)


def progress_printer(quiet: bool = False) -> Callable[[Any], None]:
    """An event sink that narrates the pipeline on stderr."""
    from mlwizard.core.kernel.events import Event

    styles = {"phase_started": "bold cyan", "phase_finished": "green", "phase_skipped": "dim"}

    def sink(event: Event) -> None:
        if quiet or event.kind == "run_finished":
            return
        style = styles.get(event.kind, "")
        label = {"phase_started": "▶", "phase_finished": "✓", "phase_skipped": "·"}.get(
            event.kind, " "
        )
        text = f"{label} {event.phase:<10} {escape(event.message)}"
        err.print(f"[{style}]{text}[/]" if style else text, soft_wrap=True, markup=True)

    return sink
