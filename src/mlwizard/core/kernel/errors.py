"""Errors the shells turn into one-line messages and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class MlwizardError(Exception):
    """Base for errors a user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInputError(MlwizardError):
    """Bad data, configuration or usage: exit 2 with one line naming what and where."""


class UpstreamNotReadyError(MlwizardError):
    """A phase was asked for while a phase it depends on is missing or stale."""


class QualityGateError(MlwizardError):
    """A quality gate or the success criterion failed: exit 1.

    A phase that stops on a gate may attach the metrics and outputs that explain why (the audit's
    findings, say): the runner records them in the failed checkpoint and the JSON report.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        metrics: dict[str, Any] | None = None,
        outputs: dict[str, Path] | None = None,
    ) -> None:
        super().__init__(message)
        self.metrics = metrics or {}
        self.outputs = outputs or {}


class CancelledError(MlwizardError):
    """The user cancelled a running phase."""

    exit_code = 130


class InternalError(MlwizardError):
    """An unexpected exception inside a phase: a bug. Its cause holds the original traceback."""

    exit_code = 3
