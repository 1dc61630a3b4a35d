"""Headless Chromium driven over `--remote-debugging-pipe` with the DevTools protocol: JSON
messages ending in NUL on the browser's fds 3 and 4. No driver, no port, no browser download.
Used to check the HTML reports (data and model): console, network, charts.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)


class DevTools:
    """Chromium under the DevTools protocol over a pipe, with every message it sent kept."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._profile = tempfile.mkdtemp(prefix="mlwizard-chromium-")
        self._id = 0
        self._buffer = b""
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()
        # Chromium reads fd 3 and writes fd 4. Copies numbered 10 and up cannot clash with 3 or
        # 4, and bash moves them there as it execs Chromium.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        os.close(to_browser)
        os.close(from_browser)
        script = f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]} {ends[0]}<&- {ends[1]}>&-'
        self._log = Path(self._profile) / "stderr.log"
        user_data = f"--user-data-dir={self._profile}"
        try:
            with open(self._log, "wb") as log:
                self.process = subprocess.Popen(
                    ["/bin/bash", "-c", script, binary, *CHROMIUM_FLAGS, user_data, "about:blank"],
                    pass_fds=ends,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
        finally:
            for fd in ends:
                os.close(fd)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        answer_id = self._id
        reply = self._receive(lambda m: m.get("id") == answer_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        def wanted(m: dict[str, Any]) -> bool:
            return m.get("method") == method and m.get("sessionId") == session

        return next((e for e in self.events if wanted(e)), None) or self._receive(wanted)

    def _receive(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from Chromium in {self.timeout} s")
            if select.select([self._reader], [], [], left)[0]:
                chunk = os.read(self._reader, 1 << 16)
                if not chunk:
                    tail = self._log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"Chromium closed its pipe:\n{tail}")
                self._buffer += chunk

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                try:
                    os.write(self._writer, b'{"id": 0, "method": "Browser.close"}\0')
                    self.process.wait(timeout=15)
                except (OSError, subprocess.TimeoutExpired):
                    self.process.kill()  # only the process this test started
                    self.process.wait(timeout=15)
        finally:
            os.close(self._writer)
            os.close(self._reader)
            shutil.rmtree(self._profile, ignore_errors=True)


AUDIT_PROBE = """JSON.stringify({
    findings: [...document.querySelectorAll('#audit table.findings tr.finding')]
        .filter(r => r.getBoundingClientRect().height > 0).map(r => r.cells[1].textContent),
    excluded: [...document.querySelectorAll('#audit table.exclusions tr')].slice(1)
        .filter(r => r.getBoundingClientRect().height > 0).map(r => r.cells[0].textContent),
})"""
CHART_PROBE = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('rect')].filter(r => {
        const b = r.getBoundingClientRect();
        return b.width > 0 && b.height > 0;
    }).length;
    return {kind: svg.dataset.chart, width: box.width, height: box.height, marks: marks};
}))"""


def open_page(path: Path) -> dict[str, Any]:
    """Load `path` in a fresh headless Chromium; return its charts and what the page did."""
    assert CHROMIUM is not None
    browser = DevTools(CHROMIUM)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        session_id = session["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session_id)
        browser.send("Page.navigate", session_id, url=path.resolve().as_uri())
        browser.wait_for("Page.loadEventFired", session_id)
        probe = browser.send("Runtime.evaluate", session_id, expression=CHART_PROBE,
                             returnByValue=True)  # fmt: skip
        charts = json.loads(probe["result"]["value"])
        audit = browser.send("Runtime.evaluate", session_id, expression=AUDIT_PROBE,
                             returnByValue=True)  # fmt: skip
        events = [e for e in browser.events if e.get("sessionId") == session_id]
    finally:
        browser.close()
    return {
        "charts": charts,
        "audit": json.loads(audit["result"]["value"]),
        "requests": [
            e["params"]["request"]["url"]
            for e in events
            if e["method"] == "Network.requestWillBeSent"
        ],
        "errors": [e["params"] for e in events if is_error(e)],
    }


def is_error(event: dict[str, Any]) -> bool:
    """An uncaught exception, console.error/assert, or an error logged by the browser (a
    Content-Security-Policy violation, a failed load)."""
    method, params = event["method"], event["params"]
    if method == "Runtime.exceptionThrown":
        return True
    if method == "Runtime.consoleAPICalled":
        return params["type"] in ("error", "assert")
    return method == "Log.entryAdded" and params["entry"]["level"] == "error"
