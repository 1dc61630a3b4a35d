"""Command palette entries for the main actions (ctrl+p)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from mlwizard.core.runner import PHASE_NAMES, PHASE_TITLES

if TYPE_CHECKING:
    from mlwizard.tui.wizard import Wizard


class WizardCommands(Provider):
    def commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("Wizard", self.app)
        found: list[tuple[str, Callable[[], object], str]] = []
        for phase in PHASE_NAMES:
            title = PHASE_TITLES[phase]
            found.append((f"Open {title}", partial(app.show_phase, phase), f"the {title} screen"))
        for phase in PHASE_NAMES:
            title = PHASE_TITLES[phase]
            found.append(
                (f"Run {title}", partial(app.run_phases, [phase]), f"run the {phase} phase")
            )
        found += [
            ("Run all remaining phases", app.action_run_all, "every phase not up to date"),
            ("Cancel the running phase", app.action_cancel, "ask the core to stop"),
            ("Refresh status", app.action_refresh_status, "read the checkpoints again"),
            ("Start the service", app.start_service, "uvicorn on 127.0.0.1, a free port"),
            ("Stop the service", app.stop_service, "stop the local service"),
            ("Send a sample request", app.sample_request, "POST the first test row"),
            ("Help", app.action_help, "keys and what they do"),
        ]
        return found

    async def discover(self) -> Hits:
        for name, command, help_text in self.commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)
