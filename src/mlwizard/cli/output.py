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


@contextmanager
def progress(quiet: bool = False) -> Iterator[Callable[[Any], None]]:
    """`progress_printer`'s sink, its bars taken down however the run ends."""
    sink = progress_printer(quiet)
    try:
        yield sink
    finally:
        if isinstance(sink, _Bars):
            sink.close()


def progress_printer(quiet: bool = False) -> Callable[[Any], None]:
    """An event sink that narrates the pipeline on stderr: rich progress bars on a terminal,
    plain lines otherwise (logs, CI). stdout is never touched, so `--json` stays one object."""
    if quiet:
        return lambda _event: None
    if err.is_terminal and not os.environ.get("MLWIZARD_PLAIN_PROGRESS"):
        return _Bars()
    return _plain_line


_LABELS = {"phase_started": "▶", "phase_finished": "✓", "phase_skipped": "·"}
_STYLES = {"phase_started": "bold cyan", "phase_finished": "green", "phase_skipped": "dim"}


def _line(event: Any) -> str | None:
    if event.kind == "run_finished":
        return None
    step = _step(event)
    if step is not None and step.is_phase_step:
        if not step.label:  # all done: the phase's own "done" line follows
            return None
        return f"  {event.phase:<10} step {step.done + 1}/{step.total}: {escape(step.label)}"
    if step is not None:
        label = f" ({escape(step.label)})" if step.label else ""
        return f"  {event.phase:<10} {step.step} {step.done}/{step.total}{label}"
    if not event.message:
        return None
    style = _STYLES.get(event.kind, "")
    text = f"{_LABELS.get(event.kind, ' ')} {event.phase:<10} {escape(event.message)}"
    return f"[{style}]{text}[/]" if style else text


def _step(event: Any) -> Any:
    from mlwizard.core.kernel.events import StepProgress

    return event.payload if isinstance(event.payload, StepProgress) else None


def _plain_line(event: Any) -> None:
    text = _line(event)
    if text is not None:
        err.print(text, soft_wrap=True, markup=True)


class _Bars:
    """One bar per running phase (a spinner and the elapsed time; filled by its named steps,
    the running one in its description) and one per counted step (the model phase's
    candidates), above which messages scroll."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        step = _step(event)
        if event.kind == "phase_started":
            self._start()
            self.tasks[event.phase] = self.progress.add_task(event.phase, total=None)
        if step is not None and step.is_phase_step:
            if event.phase not in self.tasks:
                self._start()
                self.tasks[event.phase] = self.progress.add_task(event.phase, total=None)
            label = f"{event.phase} · {step.label}" if step.label else event.phase
            self.progress.update(
                self.tasks[event.phase], completed=step.done, total=step.total, description=label
            )
            self.progress.refresh()  # a few per phase: drawn now, not at the next tick
            return
        if step is not None:
            key = f"{event.phase}:{step.step}"
            if key not in self.tasks:
                self._start()
                self.tasks[key] = self.progress.add_task(f"{event.phase} {step.step}", total=None)
            label = f"{event.phase} {step.step}" + (f" · {step.label}" if step.label else "")
            self.progress.update(
                self.tasks[key], completed=step.done, total=step.total or None, description=label
            )
            return
        if event.kind in ("phase_finished", "phase_skipped", "run_finished"):
            for key in [
                k for k in self.tasks if k == event.phase or k.startswith(f"{event.phase}:")
            ]:
                self.progress.remove_task(self.tasks.pop(key))
        text = _line(event)
        if text is not None:
            self.progress.console.print(text, soft_wrap=True, markup=True)
        if event.kind == "run_finished" or (not self.tasks and event.kind == "phase_finished"):
            self.close()

    def close(self) -> None:
        self.progress.stop()

    def _start(self) -> None:
        self.progress.start()  # idempotent while running; restarts after a stop
