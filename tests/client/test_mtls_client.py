"""The client library with a TLS client certificate (RFC 8705): ``cert=`` makes the
connection present it, and ``tls_client_auth`` sends the client_id alone. Against a real
uvicorn that requires a certificate from the test CA."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from tests.certs import Cert, make_ca, make_client_cert, make_server_cert

from tokensmith.client import AsyncTokenClient, TokenClient, tls_verify

CA = make_ca("Client CA")


async def token_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every POST with a token naming the form's client_id."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    form = dict(parse_qsl(body.decode()))
    import json

    answer = json.dumps(
        {
            "access_token": "at-" + form.get("client_id", "?"),
            "token_type": "Bearer",
            "expires_in": 60,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@contextlib.contextmanager
def mtls_server(tmp_path: Path) -> Iterator[str]:
    """uvicorn over TLS, requiring a client certificate issued by :data:`CA`."""
    server = make_server_cert(CA)
    (tmp_path / "server.pem").write_text(server.pem)
    (tmp_path / "server.key").write_text(server.key_pem)
    (tmp_path / "ca.pem").write_text(CA.pem)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        token_endpoint,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(tmp_path / "server.pem"),
        ssl_keyfile=str(tmp_path / "server.key"),
        ssl_ca_certs=str(tmp_path / "ca.pem"),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def client_files(tmp_path: Path, cert: Cert) -> tuple[str, str]:
    (tmp_path / "client.pem").write_text(cert.pem)
    (tmp_path / "client.key").write_text(cert.key_pem)
    return str(tmp_path / "client.pem"), str(tmp_path / "client.key")


def test_the_sync_client_presents_its_certificate(tmp_path: Path) -> None:
    files = client_files(tmp_path, make_client_cert(CA, "bank-client"))
    with mtls_server(tmp_path) as base:
        tc = TokenClient(
            base + "/oauth/token",
            "bank",
            "",
            auth_method="tls_client_auth",
            cert=files,
            verify=str(tmp_path / "ca.pem"),
        )
        with contextlib.closing(tc):
            assert tc.get_token().access_token == "at-bank"
        without = TokenClient(
            base + "/oauth/token",
            "bank",
            "",
            auth_method="tls_client_auth",
            verify=str(tmp_path / "ca.pem"),
            retry=None,
        )
        with contextlib.closing(without), pytest.raises(Exception):
            without.get_token()


async def test_the_async_client_presents_its_certificate(tmp_path: Path) -> None:
    cert = make_client_cert(CA, "bank-client")
    combined = tmp_path / "both.pem"
    combined.write_text(cert.pem + cert.key_pem)
    with mtls_server(tmp_path) as base:
        atc = AsyncTokenClient(
            base + "/oauth/token",
            "bank",
            "",
            auth_method="self_signed_tls_client_auth",
            cert=str(combined),
            verify=str(tmp_path / "ca.pem"),
        )
        try:
            assert (await atc.get_token()).access_token == "at-bank"
        finally:
            await atc.aclose()


def test_tls_verify_keeps_plain_verification_without_a_certificate(tmp_path: Path) -> None:
    assert tls_verify(None, True) is True
    assert tls_verify(None, False) is False
    (tmp_path / "ca.pem").write_text(CA.pem)
    assert isinstance(tls_verify(None, str(tmp_path / "ca.pem")), ssl.SSLContext)
    files = client_files(tmp_path, make_client_cert(CA))
    context = tls_verify(files, False)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_NONE


def test_tls_client_auth_sends_the_client_id_alone() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"access_token": "x", "token_type": "Bearer", "expires_in": 60}
        )

    http = httpx.Client(transport=httpx.MockTransport(answer))
    tc = TokenClient(
        "https://as.test/token", "bank", "", auth_method="tls_client_auth", http_client=http
    )
    tc.get_token()
    assert "authorization" not in seen[0].headers
    assert dict(parse_qsl(seen[0].content.decode())) == {
        "grant_type": "client_credentials",
        "client_id": "bank",
    }
