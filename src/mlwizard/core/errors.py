"""Errors the shells turn into one-line messages and exit codes."""


class MlwizardError(Exception):
    """Base for errors a user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInputError(MlwizardError):
    """Bad data, configuration or usage: exit 2 with one line naming what and where."""


class UpstreamNotReadyError(MlwizardError):
    """A phase was asked for while a phase it depends on is missing or stale."""


class QualityGateError(MlwizardError):
    """A quality gate or the success criterion failed: exit 1."""

    exit_code = 1


class CancelledError(MlwizardError):
    """The user cancelled a running phase."""

    exit_code = 130


class InternalError(MlwizardError):
    """An unexpected exception inside a phase: a bug. Its cause holds the original traceback."""

    exit_code = 3
