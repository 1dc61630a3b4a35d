"""Real servers on 127.0.0.1, started by the tests as separate processes and always stopped.

- `dask_cluster`: `dask scheduler` and two `dask worker --nthreads 1`, each logging to a file
  (the tests read the workers' logs to see which jobs ran where).
- `s3_server`: moto's S3-compatible server (`moto_server`), with dummy credentials and
  `AWS_ENDPOINT_URL` pointing at it, as any S3 client finds an endpoint.
- `http_server`: Python's `http.server` in a thread, serving a folder and a paginated JSON API.

When a server cannot start (its package is not installed), the tests that need it skip and say why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import mlwizard

START_TIMEOUT_S = 180  # a worker imports dask and numpy: slow on a loaded machine
QUIET = ("--no-dashboard", "--no-show")
SRC = str(Path(mlwizard.__file__).resolve().parents[1])  # the workers import this mlwizard


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text()[-800:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"not listening on {port} after {START_TIMEOUT_S}s")


# -- Dask ----------------------------------------------------------------------------------------


@dataclass
class DaskCluster:
    address: str  # tcp://127.0.0.1:PORT
    worker_logs: list[Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def logs(self) -> list[str]:
        return [path.read_text(errors="replace") for path in self.worker_logs]


@contextlib.contextmanager
def running_dask(folder: Path, workers: int = 2) -> Iterator[DaskCluster]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    processes: list[subprocess.Popen[bytes]] = []
    # One OpenMP/BLAS thread per worker process from the start; mlwizard sets its own limit too.
    env = _env(OMP_NUM_THREADS="1", MALLOC_TRIM_THRESHOLD_="65536")
    try:
        log = folder / "scheduler.log"
        with open(log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), *QUIET],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=folder,
                )
            )
        _wait_port(port, processes[0], log)
        logs = []
        for i in range(workers):
            log = folder / f"worker-{i}.log"
            logs.append(log)
            with open(log, "wb") as out:
                processes.append(
                    subprocess.Popen(
                        [
                            *dask,
                            "worker",
                            address,
                            "--nthreads",
                            "1",
                            "--host",
                            "127.0.0.1",
                            "--no-dashboard",
                            "--name",
                            f"w{i}",
                            "--local-directory",
                            str(folder / f"worker-{i}"),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=folder,
                    )
                )
        from distributed import Client

        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
        yield DaskCluster(address, logs, processes)
    finally:
        _stop(list(reversed(processes)))


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask[distributed] is not installed (pip install 'mlwizard[dask]')")
    with running_dask(tmp_path_factory.mktemp("dask")) as cluster:
        yield cluster


# -- S3 (moto) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing-key-id",
            aws_secret_access_key="testing-secret-key",
            region_name="us-east-1",
        )


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto[server] is not installed (the dev extra has it)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        _wait_port(port, process, log)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        _stop([process])


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The standard variables an S3 client reads, pointing at the test server."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    return s3_server


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class HttpServer:
    root: Path  # files served under /files/
    url: str  # http://127.0.0.1:PORT
    api_records: list[dict[str, Any]] = field(default_factory=list)  # served by /api/items
    page_size: int = 10
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _handler(server: HttpServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(server.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers)))
            parts = urlsplit(self.path)
            if parts.path == "/api/items":
                return self._api(parse_qs(parts.query))
            if parts.path.startswith("/files/"):
                self.path = self.path[len("/files") :]
                return super().do_GET()
            self.send_error(404)

        def do_HEAD(self) -> None:
            server.requests.append((self.path, dict(self.headers)))
            if self.path.startswith("/files/"):
                self.path = self.path[len("/files") :]
                return super().do_HEAD()
            self.send_error(405)  # like many APIs: no HEAD

        def _api(self, query: dict[str, list[str]]) -> None:
            if self.headers.get("Authorization") != "Bearer api-secret-token":
                self.send_error(401)
                return
            page = int(query.get("page", ["1"])[0])
            size = server.page_size
            items = server.api_records[(page - 1) * size : page * size]
            more = page * size < len(server.api_records)
            nxt = f"{server.url}/api/items?page={page + 1}" if more else None
            body = json.dumps({"items": items, "next": nxt}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    root = tmp_path / "served"
    root.mkdir()
    port = free_port()
    server = HttpServer(root, f"http://127.0.0.1:{port}")
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(server))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
