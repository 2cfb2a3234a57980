"""Real ``tokensmith serve`` processes on free loopback ports, and the CLI beside them.

Servers are started once per module (or session) and stopped with their whole process
group. Each runs in its own temporary directory with its own environment: only what a
test passes, never the developer's ``TOKENSMITH_*`` variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent
TOKENSMITH = str(BIN / "tokensmith")
SECRET_KEY = "e2e-secret-key-Rb5Ty1Mk8Vq3Wz6Hc9Ld2Nf7Gs4Jx0Pa"
START_TIMEOUT = 30.0

#: Every server process a test started, so that none outlives the test run (a test that
#: fails between a start and its stop, or replaces a server it then forgets to stop).
_STARTED: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a server or CLI call: PATH and friends, our settings, nothing else
    named ``TOKENSMITH_*`` or ``PROMETHEUS_*``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKENSMITH_", "PROMETHEUS_")) and k != "PYTEST_CURRENT_TEST"
    }
    env["TOKENSMITH_SECRET_KEY"] = SECRET_KEY
    env.update(overrides)
    return env


@dataclass
class Server:
    """One ``tokensmith serve`` process group."""

    base_url: str
    database_url: str
    workdir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    secrets_seen: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> Any:
        """Run ``tokensmith ARGS --json --database-url DB`` and return its JSON output."""
        return cli(self.env, self.workdir, *args, "--database-url", self.database_url)

    def client(self, *args: str) -> tuple[str, str]:
        return self.clients([*args])[0]

    def clients(self, *specs: list[str]) -> list[tuple[str, str]]:
        """``tokensmith clients create SPEC`` for each spec, run side by side."""
        made = self.cli_parallel(*(["clients", "create", *spec] for spec in specs))
        self.secrets_seen.extend(data["client_secret"] for data in made)
        return [(data["client_id"], data["client_secret"]) for data in made]

    def merchant_admin(self, merchant_name: str, email: str, password: str) -> None:
        """A merchant and an admin user of it, who logs in with ``password``."""
        merchant = self.cli("merchants", "create", "--name", merchant_name)
        done = subprocess.run(
            [
                *(TOKENSMITH, "users", "create", "--merchant", merchant["merchant_id"]),
                *("--email", email, "--password-stdin", "--role", "admin", "--json"),
                *("--database-url", self.database_url),
            ],
            input=password + "\n",
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def cli_parallel(self, *commands: list[str]) -> list[Any]:
        """Several CLI commands at once (each is a Python start-up: seconds, not millis)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda args: self.cli(*args), commands))


def cli(env: dict[str, str], cwd: Path, *args: str) -> Any:
    done = subprocess.run(
        [TOKENSMITH, *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"tokensmith {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)


def start_server(
    workdir: Path,
    database_url: str,
    *args: str,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
    port: int | None = None,
) -> Server:
    """Start ``tokensmith serve`` and (unless told not to) wait until it is healthy; on
    ``port`` if given (a restart keeps its address, and so its default issuer)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = base_env(
        # every test runs from 127.0.0.1, and some poll with refused credentials; throttling
        # itself is tested in-process (tests/web/test_rate_limiting.py)
        TOKENSMITH_FAILURES_PER_ADDRESS="10000",
        TOKENSMITH_FAILURES_PER_CLIENT="10000",
        **(extra_env or {}),
    )
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [TOKENSMITH, "serve", "--port", str(port), "--database-url", database_url, *args],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, workers included
        )
    _STARTED.append(proc)
    server = Server(f"http://127.0.0.1:{port}", database_url, workdir, env, proc, log_path)
    if wait:
        wait_healthy(server)
    return server


def wait_healthy(server: Server) -> None:
    """Wait until ``/healthz`` answers 200; fail with the server's output if it does not."""
    proc = server.proc
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    stop_server(server)
    raise AssertionError(f"server did not come up in {START_TIMEOUT}s:\n{server.log()}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=5)


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_run() -> Iterator[None]:
    """At the end of the run, kill the process group of any server still running."""
    yield
    for proc in _STARTED:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextlib.contextmanager
def running_server(workdir: Path, database_url: str, *args: str, **kw: Any) -> Iterator[Server]:
    server = start_server(workdir, database_url, *args, **kw)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server every seed module drives: SQLite, every dialect enabled."""
    workdir = tmp_path_factory.mktemp("e2e-server")
    db = f"sqlite:///{workdir / 'tokensmith.db'}"
    with running_server(
        workdir, db, "--compat", "tpay", "--compat", "tbc", "--compat", "dot", "--log-json"
    ) as s:
        yield s
        # whatever the modules did, the server's own output never showed a secret
        leaked = [v for v in s.secrets_seen if v in s.log()]
        assert not leaked, "a secret reached the server log"
