"""The Textual shell of mlwizard.

Importing `mlwizard.tui` does not import Textual: `MlwizardApp` and `run_tui` are loaded on first
use (module `__getattr__`), so the CLI can import this package at no cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlwizard.tui.app import MlwizardApp, run_tui

__all__ = ["MlwizardApp", "run_tui"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlwizard.tui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
