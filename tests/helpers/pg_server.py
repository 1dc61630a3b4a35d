"""A throwaway PostgreSQL server on 127.0.0.1 for the database-source tests.

Debian's server binaries (`/usr/lib/postgresql/<version>/bin`) start a fresh cluster in a temporary
folder, with trust authentication for 127.0.0.1 only, on a free port. PostgreSQL refuses to run as
root, so under root every server command runs as the `postgres` user (`runuser`). The fixture always
stops the server and removes the folder; when no server can start, the tests that need it skip and
say why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

START_TIMEOUT_S = 30
SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str = SUPERUSER
    dbname: str = "postgres"

    def url(self, password: str | None = None, dbname: str | None = None) -> str:
        auth = self.user if password is None else f"{self.user}:{password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname or self.dbname}"

    def execute(self, *statements: str) -> None:
        """Run SQL statements (test set-up: tables and rows) in one transaction."""
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.url()) as con, con.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            con.commit()

    def ingest(self, table: str, data: pa.Table) -> None:
        """Create `table` from Arrow data (ADBC's bulk COPY)."""
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.url()) as con, con.cursor() as cur:
            cur.adbc_ingest(table, data, mode="create")
            con.commit()


def server_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's `bin` folder, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """Root cannot run PostgreSQL: run the command as the `postgres` user instead."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", SUPERUSER, "--", *args]


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_server_user(args), capture_output=True, text=True, timeout=timeout, check=False
    )


def _make_workdir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="mlwizard-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SUPERUSER)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    return workdir


def _start(bin_dir: Path, workdir: Path) -> tuple[PostgresServer | None, str]:
    data = workdir / "data"
    init = _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
        timeout=120,
    )
    if init.returncode != 0:
        return None, f"initdb failed: {init.stderr.strip() or init.stdout.strip()}"
    last_error = ""
    for _ in range(3):  # a port picked as free can be taken before the server binds it
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(workdir / "server.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ],
            timeout=START_TIMEOUT_S + 15,
        )
        if started.returncode == 0:
            return PostgresServer("127.0.0.1", port), ""
        log = workdir / "server.log"
        last_error = log.read_text(errors="replace")[-500:] if log.exists() else started.stderr
    return None, f"pg_ctl start failed: {last_error.strip()}"


def _stop(bin_dir: Path, workdir: Path) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        _run([str(bin_dir / "pg_ctl"), "-D", str(workdir / "data"), "-m", "fast", "stop"], 60)


@contextlib.contextmanager
def running_postgres() -> Iterator[tuple[PostgresServer | None, str]]:
    """A server and "" — or None and the reason none could start. Always cleaned up."""
    bin_dir = server_bin_dir()
    if bin_dir is None:
        yield None, "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
        return
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            yield None, "running as root and there is no 'postgres' user to run the server"
            return
    workdir = _make_workdir()
    try:
        try:
            server, reason = _start(bin_dir, workdir)
        except subprocess.TimeoutExpired as exc:
            server, reason = None, f"the PostgreSQL server did not start in time ({exc.timeout}s)"
        yield server, reason
    finally:
        _stop(bin_dir, workdir)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as (server, reason):
        if server is None:
            pytest.skip(f"no PostgreSQL server for this test: {reason}")
        yield server
