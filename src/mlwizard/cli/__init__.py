"""The command line shell (typer). Heavy libraries are imported inside commands only."""

from mlwizard.cli.app import app, main

__all__ = ["app", "main"]
