"""A real ``tokensmith serve`` closes connections that hold a descriptor without sending a
request: idle ones after the keep-alive or header timeout, slow headers (slowloris) after
the header timeout, a trickled body after the body timeout; and beyond its connection cap
it closes the connection idle longest, so a token request still gets through while
hundreds of idle sockets are open, even under a low open-file limit.

The timeouts here are seconds, not the defaults, to keep the tests short."""

from __future__ import annotations

import base64
import contextlib
import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    TOKENSMITH,
    Server,
    base_env,
    free_port,
    stop_server,
    wait_healthy,
)

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 1.5
KEEPALIVE_TIMEOUT = 0.5
#: The open-file limit of the servers that face many idle sockets.
NOFILE = 256
CAP = 50
#: Idle sockets opened at once: fewer than the listen backlog those 256 descriptors leave
#: (a connection beyond it waits for the client's SYN to be sent again, a second later).
BATCH = 30
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


@contextlib.contextmanager
def serve(workdir: Path, nofile: int | None = None, **settings: str) -> Iterator[Server]:
    """``tokensmith serve`` with ``TOKENSMITH_<NAME>`` settings, under an open-file limit of
    ``nofile`` descriptors when given."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database_url = f"sqlite:///{workdir / 'tokensmith.db'}"
    env = base_env(
        TOKENSMITH_FAILURES_PER_ADDRESS="10000",
        **{"TOKENSMITH_" + name.upper(): value for name, value in settings.items()},
    )

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [TOKENSMITH, "serve", "--port", str(port), "--database-url", database_url],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limit,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, workdir, env, proc, log_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Short timeouts, the default connection cap."""
    with serve(
        tmp_path_factory.mktemp("timeouts"),
        http_header_timeout=str(HEADER_TIMEOUT),
        http_body_timeout=str(BODY_TIMEOUT),
        http_keepalive_timeout=str(KEEPALIVE_TIMEOUT),
    ) as server:
        yield server


def address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One whole response (its ``content-length`` body included)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def seconds_until_closed(sock: socket.socket, limit: float = 8.0) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (``limit`` if it does not), and what it
    sent before."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return time.monotonic() - start, received


def trickle(sock: socket.socket, parts: list[bytes], pause: float) -> float:
    """Send ``parts`` ``pause`` seconds apart until the server closes the connection;
    seconds from the first part to the close."""
    start = time.monotonic()
    sock.settimeout(pause)
    for part in parts:
        try:
            sock.sendall(part)
            if sock.recv(65536) == b"":
                break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    return time.monotonic() - start


def healthy(server: Server) -> None:
    assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200


def test_a_connection_idle_after_a_response_is_closed_after_the_keepalive_timeout(
    timed: Server,
) -> None:
    with connect(timed) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        waited, sent = seconds_until_closed(sock)
    assert sent == b""
    assert KEEPALIVE_TIMEOUT * 0.8 <= waited < HEADER_TIMEOUT
    healthy(timed)


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    timed: Server,
) -> None:
    with connect(timed) as sock:
        waited, sent = seconds_until_closed(sock)
    assert sent == b"", "a client that sent nothing is answered with nothing"
    assert HEADER_TIMEOUT * 0.8 <= waited < HEADER_TIMEOUT + 2.5
    healthy(timed)


def test_a_slowloris_is_cut_off_after_the_header_timeout_though_it_keeps_sending(
    timed: Server,
) -> None:
    lines = [b"GET /healthz HTTP/1.1\r\n"] + [b"X-Slow-%d: y\r\n" % i for i in range(100)]
    with connect(timed) as sock:
        waited = trickle(sock, lines, pause=0.25)
    assert HEADER_TIMEOUT * 0.8 <= waited < HEADER_TIMEOUT + 2.5
    healthy(timed)


def test_a_request_whose_headers_time_out_is_answered_408(timed: Server) -> None:
    with connect(timed) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        _, sent = seconds_until_closed(sock)
    assert sent.startswith(b"HTTP/1.1 408 ")


def test_a_trickled_body_is_cut_off_after_the_body_timeout(timed: Server) -> None:
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(timed) as sock:
        sock.sendall(head)
        waited = trickle(sock, [b"g"] * 100, pause=0.25)
    assert BODY_TIMEOUT * 0.8 <= waited < BODY_TIMEOUT + 2.5
    healthy(timed)


def test_a_request_sent_in_pieces_within_the_timeouts_is_served(timed: Server) -> None:
    creds = timed.client("--name", "pieces", "--scope", "read")
    body = b"grant_type=client_credentials"
    basic = b"Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode())
    pieces = [
        b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n",
        b"Authorization: " + basic + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        b"Content-Length: %d\r\n\r\n" % len(body),
        body[:10],
        body[10:],
    ]
    with connect(timed) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.3)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_a_busy_keepalive_connection_outlives_the_header_timeout(timed: Server) -> None:
    """The first request's header deadline ends with its headers: a connection that keeps
    sending whole requests inside the keep-alive timeout stays open."""
    with connect(timed) as sock:
        start = time.monotonic()
        while time.monotonic() - start < HEADER_TIMEOUT + 1:
            sock.sendall(HEALTHZ)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(KEEPALIVE_TIMEOUT / 2)


def open_idle(server: Server, count: int) -> list[socket.socket]:
    """``count`` connections that send nothing (those the server refuses included)."""
    socks = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            socks.append(socket.create_connection(address(server), timeout=5))
    return socks


def closed_by_server(socks: list[socket.socket]) -> int:
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def token_request(server: Server, creds: tuple[str, str]) -> Callable[[], int]:
    def issue() -> int:
        with httpx.Client(base_url=server.base_url, timeout=5) as http:  # a new connection
            response = http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=creds
            )
            return response.status_code

    return issue


def idle_sockets_do_not_stop_token_requests(server: Server, idle: int, cap: int) -> None:
    issue = token_request(server, server.client("--name", "under-siege", "--scope", "read"))
    socks: list[socket.socket] = []
    try:
        for _ in range(idle // BATCH):
            socks += open_idle(server, BATCH)
            assert issue() == 200, "a token request failed while idle sockets were open"
        time.sleep(0.5)
        assert closed_by_server(socks) >= len(socks) - cap
        assert issue() == 200
        healthy(server)
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Cap 50, 256 descriptors, a header timeout too long to help: 300 idle sockets."""
    with serve(
        tmp_path_factory.mktemp("capped"),
        nofile=NOFILE,
        http_max_connections=str(CAP),
        http_header_timeout="60",
        http_body_timeout=str(BODY_TIMEOUT),
    ) as server:
        yield server


def test_idle_sockets_past_the_cap_do_not_stop_a_token_request(capped: Server) -> None:
    idle_sockets_do_not_stop_token_requests(capped, idle=300, cap=CAP)


def test_when_every_connection_is_busy_a_new_one_is_answered_503(capped: Server) -> None:
    """Connections with a request under way are not closed for a newcomer; they end by
    their own deadline, and then the newcomer's successors are served."""
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    )
    busy = [connect(capped) for _ in range(CAP)]
    try:
        for sock in busy:
            sock.sendall(head)
        time.sleep(0.5)
        with connect(capped) as sock:
            _, sent = seconds_until_closed(sock)
        assert sent.startswith(b"HTTP/1.1 503 ")
        waited, _ = seconds_until_closed(busy[-1])
        assert waited < BODY_TIMEOUT + 2.5
        healthy(capped)
    finally:
        for sock in busy:
            sock.close()


def test_the_default_cap_fits_under_the_open_file_limit(tmp_path: Path) -> None:
    """The default cap (1000) is lowered to what 256 descriptors allow: 300 idle sockets."""
    with serve(tmp_path / "default", nofile=NOFILE, http_header_timeout="60") as server:
        idle_sockets_do_not_stop_token_requests(server, idle=300, cap=NOFILE)


def test_websocket_upgrades_do_not_use_up_the_cap(capped: Server) -> None:
    """tokensmith has no websocket route: an upgrade is refused, and its connection is
    not counted once it has gone."""
    upgrade = (
        b"GET /oauth/token HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(CAP + 10):
        with connect(capped) as sock:
            sock.sendall(upgrade)
            seconds_until_closed(sock, limit=5)
    healthy(capped)
