"""A real ``tokensmith serve`` on a loopback port, its CLI, and a loopback ASGI host.

The server is the installed ``tokensmith`` command in its own process; accounts are made
with ``tokensmith ... --json`` (the click command, run in the test process against the
server's database); APIs guarded by :mod:`tokensmith.resource` run under uvicorn in a
thread of the test process.  Every token travels over a loopback socket.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import uvicorn
from click.testing import CliRunner

from tokensmith.cli import main

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "integration-secret-Kd4Wp9Zr2Tn7Vb1Hq6Lx3Mc8Fj5Gs0Y"
#: The ``aud`` the server puts in its tokens, and the one examples/payments_api.py expects.
AUDIENCE = "payments"
#: Seconds in which a spent refresh token may be presented once more (T-Gate flow).
REFRESH_GRACE = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command() -> list[str]:
    script = Path(sys.executable).parent / "tokensmith"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tokensmith.cli import main; main()"]


@dataclass
class LiveServer:
    """A running ``tokensmith serve``: its base URL (= issuer) and the CLI beside it."""

    base: str
    env: dict[str, str] = field(repr=False)
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return self.base

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        """``tokensmith ARGS --json`` on the server's database; the parsed output.

        The command runs in this process (an interpreter start costs seconds) with the
        server's environment; it reaches the server only through the shared database."""
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TOKENSMITH_")}
        env.update(self.env)
        result = CliRunner().invoke(main, [*args, "--json"], input=stdin, env=env)
        if result.exit_code != 0:
            raise AssertionError(
                f"tokensmith {' '.join(args)} failed ({result.exit_code}):\n{result.output}"
            ) from result.exception
        return json.loads(result.stdout)

    def metrics(self) -> str:
        return httpx.get(self.base + "/metrics", timeout=5).text

    def issued(self, dialect: str = "oauth", grant: str = "client_credentials") -> float:
        """``tokensmith_tokens_issued_total{dialect=..., grant=...}`` from ``/metrics``."""
        pattern = re.compile(
            r"^tokensmith_tokens_issued_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$", re.M
        )
        want = {f'dialect="{dialect}"', f'grant="{grant}"'}
        for m in pattern.finditer(self.metrics()):
            if set(m.group("labels").split(",")) == want:
                return float(m.group("value"))
        return 0.0

    def metadata(self) -> dict[str, Any]:
        url = self.base + "/.well-known/oauth-authorization-server"
        return dict(httpx.get(url, timeout=5).json())


def server_env(tmp: Path, port: int, **settings: str) -> dict[str, str]:
    """A hermetic environment: no inherited ``TOKENSMITH_*``, one shared secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    env.update(
        {
            "TOKENSMITH_SECRET_KEY": SECRET_KEY,
            "TOKENSMITH_SECRET_KEY_FILE": str(tmp / "unused.key"),
            "TOKENSMITH_DATABASE_URL": f"sqlite:///{tmp / 'tokensmith.db'}",
            "TOKENSMITH_PORT": str(port),
            "TOKENSMITH_AUDIENCE": AUDIENCE,
            "TOKENSMITH_PURGE_INTERVAL": "0",
        }
    )
    env.update({"TOKENSMITH_" + k.upper(): v for k, v in settings.items()})
    return env


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until ``url`` answers 200; RuntimeError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def run_server(tmp: Path, **settings: str) -> Iterator[LiveServer]:
    """``tokensmith serve --port P --compat tpay --compat tbc --compat dot --database-url ...``
    until ``/healthz`` answers; terminated afterwards."""
    port = free_port()
    env = server_env(tmp, port, **settings)
    log = tmp / "serve.log"
    argv = [
        *_command(),
        "serve",
        "--port",
        str(port),
        "--compat",
        "tpay",
        "--compat",
        "tbc",
        "--compat",
        "dot",
        "--database-url",
        env["TOKENSMITH_DATABASE_URL"],
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", env, log, proc)
    try:
        try:
            wait_for(server.base + "/healthz", proc)
        except RuntimeError as exc:
            raise RuntimeError(f"tokensmith serve: {exc}\n{log.read_text()}") from None
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` (the examples are scripts, not a package)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Forms(HTMLParser):
    """Every ``<form>`` of a page: its action and its named inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": {}})
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return  # a browser sends only checked boxes
            self.forms[-1]["fields"][a["name"]] = a.get("value", "on")
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].setdefault(a["name"], []).append(a.get("value", ""))


def form(html: str, action: str) -> dict[str, Any]:
    """The form posting to ``action``: ``{"fields": {...}, "buttons": {name: [values]}}``."""
    parser = _Forms()
    parser.feed(html)
    for found in parser.forms:
        if found["action"] == action:
            return found
    raise AssertionError(f"no form with action {action!r} on the page")


def jose_header(token: str) -> dict[str, Any]:
    """The (unverified) JOSE header of a JWS compact token."""
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))
