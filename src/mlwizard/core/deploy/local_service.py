"""The generated prediction service, run locally as a subprocess: start, ask, stop. No Textual.

Workers call these off the UI thread; the App holds the `LocalService` and stops it on quit.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0


class ServiceError(Exception):
    """The service could not start or answer; the message says why, in one line."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalService:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start(
    folder: Path, timeout: float = START_TIMEOUT, cancel: threading.Event | None = None
) -> LocalService:
    """Start `uvicorn app:app` in `folder` on a free local port and wait until /health answers.

    Setting `cancel` (the app quitting) stops the process rather than leaving it behind.
    """
    if not (folder / "app.py").is_file():
        raise ServiceError(f"{folder}: no app.py here; run the deployment phase first")
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="mlwizard-service-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", HOST, "--port", str(port)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = LocalService(folder, port, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            service.stop()
            raise ServiceError("start cancelled")
        if not service.running():
            tail = service.log_tail()
            raise ServiceError(
                f"the service exited with code {process.returncode}" + (f": {tail}" if tail else "")
            )
        try:
            get(service, "/health", timeout=1.0)
            return service
        except ServiceError:
            time.sleep(0.2)
    service.stop()
    raise ServiceError(f"the service did not answer /health within {timeout:.0f}s")


def get(service: LocalService, path: str, timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
    return _call(urllib.request.Request(service.url + path), timeout)[1]


def predict(
    service: LocalService, rows: list[dict[str, Any]], timeout: float = REQUEST_TIMEOUT
) -> tuple[int, Any]:
    body = json.dumps({"rows": rows}).encode()
    request = urllib.request.Request(
        service.url + "/predict",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return _call(request, timeout)


def _call(request: urllib.request.Request, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": str(exc)}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceError(f"{request.full_url}: {exc}") from None
