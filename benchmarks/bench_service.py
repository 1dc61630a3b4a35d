"""The generated service against a bare FastAPI + onnxruntime app on the same model, side by side
in one run; the installed size of the bundle's requirements in a fresh venv; and the >= 60 s
schemathesis acceptance run (all checks) against the service.

    .venv/bin/python benchmarks/bench_service.py                 # everything
    .venv/bin/python benchmarks/bench_service.py --skip-size --schemathesis 0 --duration 5

Both apps run under one uvicorn worker on 127.0.0.1 and are loaded by Debian's `wrk` with the
same single-row JSON body; the rounds alternate (bare, service, bare, service, ...) so a busy
machine weighs on both. The service runs as shipped: strict validation, domain warnings,
Prometheus metrics and one JSON log line per request (to a file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

BARE_APP = '''
"""A bare FastAPI + onnxruntime app: parse, feed, run, answer. No validation, metrics or logs."""
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

MODEL = Path(__file__).parent / "models" / "champion"
schema = json.loads((MODEL / "schema.json").read_text())
options = ort.SessionOptions()  # the service's own session settings: one thread, no spinning
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.add_session_config_entry("session.intra_op.allow_spinning", "0")
options.add_session_config_entry("session.inter_op.allow_spinning", "0")
session = ort.InferenceSession(
    str(MODEL / "model.onnx"), options, providers=["CPUExecutionProvider"]
)
classes = [str(c) for c in schema["classes"]]
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> Response:
    rows = orjson.loads(await request.body())["rows"]
    feed = {}
    for f in schema["features"]:
        values = [row.get(f["name"]) for row in rows]
        if f["kind"] == "numeric":
            feed[f["input"]] = np.array(
                [np.nan if v is None else v for v in values], dtype=np.float32
            ).reshape(-1, 1)
        else:
            feed[f["input"]] = np.array(
                [schema["missing_token"] if v is None else str(v) for v in values], dtype=object
            ).reshape(-1, 1)
    labels, proba = session.run(None, feed)
    out = [
        {"prediction": classes[int(i)], "proba": dict(zip(classes, p.tolist()))}
        for i, p in zip(labels, proba)
    ]
    return Response(orjson.dumps({"predictions": out}), media_type="application/json")
'''

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(folder: Path, module: str, log: Path, env: dict[str, str]) -> tuple[Any, str]:
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    out = log.open("wb")
    process = subprocess.Popen(
        command, cwd=folder, stdout=out, stderr=out, env={**os.environ, **env}
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{module} did not start: {log.read_text()[-2000:]}")


def wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), f"{url}/predict"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        assert found, text
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: (.*)", text)
    assert rate, text
    return {
        "rps": float(rate.group(1)),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def installed_size(requirements: Path) -> dict[str, Any]:
    """MB the requirements add to a fresh venv (pip and setuptools of the empty venv excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        empty = _du(venv)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", "-r", str(requirements)],
            check=True,
        )
        full = _du(venv)
        top = subprocess.run(
            ["du", "-sm", *map(str, (venv / "lib").glob("python3*/site-packages/*"))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    largest = sorted((line.split("\t") for line in top), key=lambda x: -int(x[0]))[:5]
    return {
        "venv_mb": round(full / 1e6, 1),
        "added_mb": round((full - empty) / 1e6, 1),
        "largest": {Path(p).name: int(mb) for mb, p in largest},
    }


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def schemathesis(url: str, seconds: int, folder: Path) -> dict[str, Any]:
    started = time.monotonic()
    done = subprocess.run(
        [
            *(shutil.which("st") or "st", "run", f"{url}/openapi.json", "--checks", "all"),
            *("--max-time", str(seconds), "--seed", "1", "--no-color"),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    cases = re.search(r"(\d+) generated, (.*)", done.stdout)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "exit_code": done.returncode,
        "cases": cases.group(0) if cases else done.stdout[-500:],
        "verdict": "No issues found" in done.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schemathesis", type=int, default=65, help="seconds (0: skip)")
    parser.add_argument("--skip-size", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from helpers.deploy import build_project
    from mlwizard.core.deploy import phase as deploy

    root = Path(tempfile.mkdtemp(prefix="mlwizard-bench-service-"))
    project = build_project(root / "project")
    deploy.run(project.ctx)
    service = project.service
    (service / "bare_app.py").write_text(BARE_APP)
    body = json.dumps({"rows": project.test_rows()[:1]})
    script = root / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body)))
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "service": []}
    apps = {"bare": "bare_app", "service": "app"}
    env = {"PYTHONDONTWRITEBYTECODE": "1", "LOG_LEVEL": "INFO"}
    processes = {}
    try:
        for name, module in apps.items():
            processes[name] = start(service, module, root / f"{name}.log", env)
        for _, url in processes.values():  # warm both
            wrk(url, script, 2)
        for _ in range(args.rounds):
            for name, (_, url) in processes.items():
                runs[name].append(wrk(url, script, args.duration))
                print(name, runs[name][-1], flush=True)
        st = (
            schemathesis(processes["service"][1], args.schemathesis, root)
            if args.schemathesis
            else None
        )
    finally:
        for process, _ in processes.values():
            process.terminate()
            process.wait(10)
    logged = sum(1 for _ in (root / "service.log").open())
    load_after = os.getloadavg()[0]
    summary = {
        name: {
            "rps_median": statistics.median(r["rps"] for r in rounds),
            "p50_ms_median": statistics.median(r["p50_ms"] for r in rounds),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in rounds),
        }
        for name, rounds in runs.items()
    }
    ratio = summary["service"]["rps_median"] / summary["bare"]["rps_median"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "wrk": f"-t1 -c16 -d{args.duration}s, {args.rounds} alternating rounds, 1 uvicorn worker",
        "rounds": runs,
        "summary": summary,
        "throughput_ratio": round(ratio, 3),
        "service_log_lines": logged,
        "schemathesis": st,
        "installed_size": None if args.skip_size else installed_size(service / "requirements.txt"),
    }
    print(json.dumps(result, indent=2))
    out = args.out or REPO / "benchmarks" / "results" / f"{result['date'][:10]}-service.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
