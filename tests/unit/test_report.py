"""The profile reports: files written atomically, names escaped, and the HTML page checked in
headless Chromium (console, network, charts).

Chromium is driven over `--remote-debugging-pipe` with the DevTools protocol: JSON messages ending
in NUL on the browser's fds 3 and 4. That needs no driver, no port and no browser download.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlwizard.core.data import report
from mlwizard.core.data.profile import profile_dataset
from mlwizard.core.data.report import REPORT_FILES, markdown_escape, write_reports

ODD = '<b>"x"</b>'
AUDIT = {
    "findings": [
        {
            "rule": "target_leakage",
            "severity": "warning",
            "column": ODD,
            "message": "alone predicts the target: ROC AUC 0.990",
            "action": "excluded; list it in [data] keep if it is known before the outcome",
        },
        {
            "rule": "duplicate_rows",
            "severity": "info",
            "column": None,
            "message": "3 rows repeat an earlier row exactly",
            "action": "drop the copies in the source",
        },
    ],
    "excluded_columns": {ODD: "target leakage: ROC AUC 0.990 on its own"},
    "types": {ODD: "numeric"},
}
PIPE = "a|b & <c>"
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


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A profile of a real CSV: numerics with NaN, categoricals with nulls, odd names, a target."""
    rng = np.random.default_rng(5)
    rows = 1500
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "x": x,
            "y": x * 0.7 + rng.normal(size=rows) * 0.7,
            "small": rng.integers(1, 6, size=rows),
            ODD: rng.choice(["<i>one</i>", "two & three", "'four'"], size=rows),
            PIPE: rng.uniform(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "城市": rng.choice(["東京", "Zürich"], size=rows),
            "label": np.where(x + rng.normal(size=rows) > 0, "yes!", "no!"),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "x"] = np.nan
    frame.loc[rng.random(rows) < 0.2, "colour"] = None
    frame.loc[rng.random(rows) < 0.05, ODD] = None
    path = tmp_path_factory.mktemp("report") / "data.csv"
    frame.to_csv(path, index=False)
    con = duckdb.connect(":memory:")
    return profile_dataset(con, con.read_csv(str(path)), target="label", seed=1, sample_rows=1000)


@pytest.fixture
def written(profile: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    return write_reports(profile, tmp_path / "reports", 'Profile of "data.csv" <1>', AUDIT)


def test_three_files_are_written_and_the_json_is_strict(
    written: dict[str, Path], profile: dict[str, Any]
) -> None:
    assert {k: p.name for k, p in written.items()} == REPORT_FILES
    folder = written["json"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES.values())  # no temps

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    loaded = json.loads(written["json"].read_text(), parse_constant=refuse)
    assert loaded["rows"] == profile["rows"] == 1500
    assert loaded["sample"]["rows"] == 1000 and not loaded["sample"]["complete"]


def test_names_and_values_from_the_data_are_escaped_in_html(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    for raw in (ODD, "<i>one</i>", "<c>", '<1>"'):
        assert raw not in html
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in html  # the column name, escaped
    assert "&lt;i&gt;one&lt;/i&gt;" in html  # a category value, escaped
    assert "東京" in html and "城市" in html
    assert "sample of 1,000 rows" in html


def test_the_html_carries_the_audit(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert 'href="#audit"' in html and "1 warning, 1 info" in html
    assert "ROC AUC 0.990 on its own" in html  # why the column was excluded
    assert "drop the copies in the source" in html  # what to do
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in html and ODD not in html


def test_the_html_loads_nothing_from_anywhere(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert "<script" not in html
    assert "default-src 'none'" in html  # the page's CSP forbids every fetch
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attribute.startswith(("#", "data:")), attribute
    assert "@import" not in html and "url(" not in html


def test_markdown_summary_escapes_names(written: dict[str, Path]) -> None:
    text = written["markdown"].read_text()
    assert '# Profile of "data.csv" &lt;1&gt;' in text
    assert markdown_escape(ODD) in text and "<b>" not in text
    assert "a\\|b &amp; &lt;c&gt;" in text  # a pipe would otherwise split the table cell
    assert "sample of 1,000 rows" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header_cells = rows[0].count(" | ")
    column_rows = rows[1 : 1 + 8]
    assert all(row.replace("\\|", "").count(" | ") == header_cells for row in column_rows)


def test_reports_are_written_atomically(
    profile: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "reports"
    first = write_reports(profile, folder, "first")
    before = {p.name: p.read_bytes() for p in first.values()}

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("template failed")

    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError, match="template failed"):
        write_reports(profile, folder, "second")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched, no temps


# --- headless Chromium ---------------------------------------------------------------------------


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


def expected_charts(profile: dict[str, Any]) -> dict[str, int]:
    columns = profile["columns"].values()
    return {
        "histogram": sum(1 for c in columns if c.get("histogram")),
        "top-values": sum(1 for c in columns if c.get("top_counts")),
        "heatmap": 1,
        "association": 1,
        "missing": 1,
        "patterns": 1,
    }


@needs_chromium
def test_report_renders_in_headless_chromium(
    written: dict[str, Path], profile: dict[str, Any]
) -> None:
    page = open_page(written["html"])
    assert page["errors"] == []
    assert page["requests"] == [written["html"].resolve().as_uri()]  # the page itself, no more
    kinds: dict[str, int] = {}
    for chart in page["charts"]:
        kinds[chart["kind"]] = kinds.get(chart["kind"], 0) + 1
        assert chart["width"] > 50 and chart["height"] > 20, chart
        assert chart["marks"] > 0, chart  # bars or cells drawn with a real size
    assert kinds == expected_charts(profile)
    assert kinds["histogram"] == 4 and kinds["top-values"] == 4
    # The audit beside the profile: every finding and exclusion shown, names as written.
    assert page["audit"] == {"findings": ["target_leakage", "duplicate_rows"], "excluded": [ODD]}


@needs_chromium
def test_the_browser_check_catches_errors_and_requests(tmp_path: Path) -> None:
    """The same check on a page that misbehaves: it must fail there, or it proves nothing."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        "<script>console.error('boom')</script>"
        '<img src="http://127.0.0.1:9/pixel.png" alt="">'
        "</body></html>"
    )
    result = open_page(page)
    assert any("boom" in json.dumps(e) for e in result["errors"])
    assert "http://127.0.0.1:9/pixel.png" in result["requests"]
    assert result["charts"] == []
