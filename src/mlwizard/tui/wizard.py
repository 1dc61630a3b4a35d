"""What a phase screen may read from, and ask of, the app: a Protocol, so no screen imports the
App and the App calls no screen-specific method.

"Attributes down, messages up": the App owns this state and tells every mounted screen that a
part of it changed (`PhaseView.wizard_changed`); a screen reads what it shows from here, and asks
for work only through the methods below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from mlwizard.core import runner
    from mlwizard.core.deploy.local_service import LocalService
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.tui.messages import ServiceAnswered

# What changed: the phase statuses, the running model phase's leaderboard, the local service, or
# the answer to a sample request.
Change = Literal["status", "live", "service", "response"]


class PhaseView(Protocol):
    """A phase screen, as the App sees it."""

    PHASE: ClassVar[str]

    @property
    def is_mounted(self) -> bool: ...

    def wizard_changed(self, what: Change) -> None: ...

    def reload(self) -> None: ...


class Wizard(Protocol):
    workspace: Workspace
    states: list[runner.PhaseState]
    problem: str | None
    running_phase: str | None
    activity: str
    live_runs: dict[str, dict[str, Any]]
    model_started: float | None
    model_budget: float | None
    budget_input: float | None  # the model screen's budget field, once it has been shown
    service: LocalService | None
    service_busy: str | None
    last_response: ServiceAnswered | None

    @property
    def progress_percent(self) -> int: ...

    def register_screen(self, screen: PhaseView) -> None: ...

    def run_phases(self, phases: list[str], time_budget: float | None = None) -> None: ...

    def show_phase(self, phase: str) -> None: ...

    def save_config(self, updates: dict[str, dict[str, Any]], what: str) -> bool: ...

    def action_cancel(self) -> None: ...

    def action_run_all(self) -> None: ...

    def action_refresh_status(self) -> None: ...

    def action_help(self) -> None: ...

    def start_service(self) -> None: ...

    def stop_service(self) -> None: ...

    def sample_request(self) -> None: ...
