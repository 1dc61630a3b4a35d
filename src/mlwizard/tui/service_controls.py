"""The App's half that keeps the phase screens informed and runs the local service.

The screens register themselves; `tell_screens` says what changed (see `wizard.Change`), and each
screen reads what it shows from the App's state. The service runs as a subprocess through the
core's `deploy.local_service`, started and stopped in thread workers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App

from mlwizard.core.deploy import local_service as svc
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.tui import loaders
from mlwizard.tui.messages import ServiceAnswered, ServiceStarted, ServiceStopped
from mlwizard.tui.wizard import Change, PhaseView

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel


class ServiceControls(App[int]):
    workspace: Workspace

    def __init__(self) -> None:
        super().__init__()
        self.phase_screens: dict[str, PhaseView] = {}
        self.service: svc.LocalService | None = None
        self.service_busy: str | None = None
        self.last_response: ServiceAnswered | None = None
        self._quitting = threading.Event()  # tells a service still starting to stop instead

    # -- the screens -----------------------------------------------------------------------------
    def register_screen(self, screen: PhaseView) -> None:
        self.phase_screens[screen.PHASE] = screen

    def tell_screens(self, what: Change) -> None:
        for screen in self.phase_screens.values():
            if screen.is_mounted:
                screen.wizard_changed(what)

    # -- the service -----------------------------------------------------------------------------
    def start_service(self) -> None:
        if self.service is not None or self.service_busy:
            self.notify("The service is already running (or busy).")
            return
        folder = loaders.output_path(
            self.workspace, "deploy", "service", "artifacts/deploy/service"
        )
        if not (folder / "app.py").is_file():
            self.notify("No service yet: run the deployment phase first.", severity="warning")
            return
        self.service_busy = "starting"
        self._show_service()
        self._start_service(folder)

    def stop_service(self) -> None:
        if self.service is None:
            self.notify("The service is not running.")
            return
        service, self.service = self.service, None
        self.service_busy = "stopping"
        self._show_service()
        self._stop_service(service)

    def sample_request(self) -> None:
        if self.service is None:
            self.notify("Start the service first (u).", severity="warning")
            return
        self._sample_request(self.service)

    def shutdown_service(self) -> None:
        """Stop the service now (on quit): a few seconds at most."""
        self._quitting.set()
        if self.service is not None:
            service, self.service = self.service, None
            service.stop(timeout=3.0)

    # -- workers and handlers --------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="service")
    def _start_service(self, folder: Path) -> None:
        try:
            service = svc.start(folder, cancel=self._quitting)
        except svc.ServiceError as exc:
            self.post_message(ServiceStopped(f"could not start: {exc}"))
            return
        self.post_message(ServiceStarted(service))

    @work(thread=True, exclusive=True, exit_on_error=False, group="service-stop")
    def _stop_service(self, service: svc.LocalService) -> None:
        service.stop()
        self.post_message(ServiceStopped("stopped"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="service-request")
    def _sample_request(self, service: svc.LocalService) -> None:
        try:
            rows = loaders.sample_rows(self.workspace)
        except Exception as exc:
            self.post_message(ServiceAnswered(None, None, None, f"no sample row: {exc}"))
            return
        try:
            status, body = svc.predict(service, rows)
        except svc.ServiceError as exc:
            self.post_message(ServiceAnswered(rows, None, None, str(exc)))
            return
        self.post_message(ServiceAnswered(rows, status, body))

    @on(ServiceStarted)
    def _on_service_started(self, message: ServiceStarted) -> None:
        self.service, self.service_busy = message.service, None
        self.notify(f"Service running at {message.service.url}.", markup=False)
        self._show_service()

    @on(ServiceStopped)
    def _on_service_stopped(self, message: ServiceStopped) -> None:
        self.service_busy = None
        severity: SeverityLevel = (
            "error" if message.reason.startswith("could not") else "information"
        )
        self.notify(f"Service {message.reason}.", severity=severity, markup=False)
        self._show_service()

    @on(ServiceAnswered)
    def _on_service_answered(self, message: ServiceAnswered) -> None:
        self.last_response = message
        self.tell_screens("response")
        if message.error:
            self.notify(message.error, title="Request failed", severity="error", markup=False)

    def _show_service(self) -> None:
        self.tell_screens("service")
