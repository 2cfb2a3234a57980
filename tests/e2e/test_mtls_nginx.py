"""Mutual TLS (RFC 8705) as deployed: a real nginx terminates TLS on loopback, asks for a
client certificate from the test CA (``ssl_verify_client optional``) and forwards it in
``X-Client-Cert`` (``$ssl_client_escaped_cert``) to a real ``tokensmith serve`` that
trusts it as a proxy, and to an API guarded by ``tokensmith.resource`` with
``mtls="required"``. The client is ``tokensmith.client`` with ``cert=``.

Skipped when nginx is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.certs import Cert, make_ca, make_client_cert, make_server_cert
from tests.e2e.conftest import Server, free_port, running_server
from tokensmith.client import TokenClient, tls_verify
from tokensmith.resource import BearerAuthMiddleware, TokenValidator, require_scopes

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed"),
]

DN = "CN=bank-client,O=Example Bank,C=GE"
CLIENT_CA = make_ca("Client CA")
SERVER_CA = make_ca("Server CA")
CLIENT = make_client_cert(CLIENT_CA, "bank-client")
OTHER = make_client_cert(CLIENT_CA, "other-client")

NGINX_CONF = """
{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    ssl_client_certificate {dir}/client-ca.pem;
    ssl_verify_client optional;
    proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header Host $host:$server_port;
    location /api/ {{ proxy_pass http://127.0.0.1:{api_port}; }}
    location / {{ proxy_pass http://127.0.0.1:{ts_port}; }}
  }}
}}
"""


def _write(path: Path, cert: Cert) -> tuple[str, str]:
    path.with_suffix(".pem").write_text(cert.pem)
    path.with_suffix(".key").write_text(cert.key_pem)
    return str(path.with_suffix(".pem")), str(path.with_suffix(".key"))


@contextlib.contextmanager
def nginx(workdir: Path, ts_port: int, api_port: int) -> Iterator[str]:
    port = free_port()
    _write(workdir / "server", make_server_cert(SERVER_CA))
    (workdir / "client-ca.pem").write_text(CLIENT_CA.pem)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = NGINX_CONF.format(user=user, dir=workdir, port=port, ts_port=ts_port, api_port=api_port)
    (workdir / "nginx.conf").write_text(conf)
    assert NGINX is not None
    proc = subprocess.Popen(
        [NGINX, "-c", str(workdir / "nginx.conf"), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert proc.poll() is None, (workdir / "nginx-error.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@contextlib.contextmanager
def api(port: int, issuer: str, ca_file: str) -> Iterator[None]:
    """An API behind the same nginx: ``GET /api/payments`` needs a token bound to the
    certificate the client connected with."""
    http = httpx.AsyncClient(verify=tls_verify(None, ca_file))
    validator = TokenValidator(
        issuer,
        issuer,
        http_client=http,
        mtls="required",
        trusted_proxies=("127.0.0.1",),
        client_id=None,
    )

    @require_scopes("payments")
    async def payments(request: Request) -> JSONResponse:
        return JSONResponse({"client_id": request.state.access_token.client_id})

    app = Starlette(
        routes=[Route("/api/payments", payments)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, Path]]:
    workdir = tmp_path_factory.mktemp("mtls")
    ts_port, api_port = free_port(), free_port()
    db = f"sqlite:///{workdir / 'tokensmith.db'}"
    (workdir / "server-ca.pem").write_text(SERVER_CA.pem)
    # the issuer is the address clients use: nginx's, which is only known once it runs;
    # start nginx first (502 until tokensmith is up), then tokensmith with that issuer
    with nginx(workdir, ts_port, api_port) as edge:
        env = {"TOKENSMITH_TRUSTED_PROXIES": "127.0.0.1", "TOKENSMITH_ISSUER": edge}
        with (
            running_server(workdir, db, extra_env=env, port=ts_port) as server,
            api(api_port, edge, str(workdir / "server-ca.pem")),
        ):
            yield server, edge, workdir


def token_client(edge: str, workdir: Path, client_id: str, cert: Cert | None) -> TokenClient:
    files = _write(workdir / f"client-{cert.thumbprint[:8]}", cert) if cert else None
    return TokenClient(
        edge + "/oauth/token",
        client_id,
        "",
        auth_method="tls_client_auth",
        cert=files,
        verify=str(workdir / "server-ca.pem"),
        retry=None,
    )


def register(server: Server) -> str:
    data: dict[str, Any] = server.cli(
        "clients", "create", "--name", "bank", "--scope", "payments",
        "--auth-method", "tls_client_auth", "--tls-subject-dn", DN, "--cert-bound-tokens",
    )  # fmt: skip
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_methods"] == ["tls_client_auth"]
    assert data["tls_client_auth_subject_dn"] == DN
    assert data["tls_client_certificate_bound_access_tokens"] is True
    return str(data["client_id"])


def test_a_client_with_its_certificate_gets_a_bound_token_and_uses_it(deployment) -> None:
    server, edge, workdir = deployment
    client_id = register(server)
    with contextlib.closing(token_client(edge, workdir, client_id, CLIENT)) as tc:
        token = tc.get_token()
        assert token.token_type == "Bearer"
        claims = jwt.decode(token.access_token, options={"verify_signature": False})
        assert claims["cnf"] == {"x5t#S256": CLIENT.thumbprint}
        with httpx.Client(
            auth=tc, verify=tls_verify(_files(workdir, CLIENT), str(workdir / "server-ca.pem"))
        ) as http:
            r = http.get(edge + "/api/payments")
            assert r.status_code == 200, r.headers.get("www-authenticate")
            assert r.json() == {"client_id": client_id}
    # the same token from a client holding another certificate is refused by the API
    ca = str(workdir / "server-ca.pem")
    with httpx.Client(verify=tls_verify(_files(workdir, OTHER), ca)) as thief:
        r = thief.get(
            edge + "/api/payments", headers={"Authorization": f"Bearer {token.access_token}"}
        )
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    with httpx.Client(verify=tls_verify(None, ca)) as bare:
        r = bare.get(
            edge + "/api/payments", headers={"Authorization": f"Bearer {token.access_token}"}
        )
        assert r.status_code == 401


def _files(workdir: Path, cert: Cert) -> tuple[str, str]:
    return _write(workdir / f"client-{cert.thumbprint[:8]}", cert)


@pytest.mark.parametrize("cert", [None, OTHER], ids=["no certificate", "another certificate"])
def test_without_the_registered_certificate_the_client_is_refused(deployment, cert) -> None:
    server, edge, workdir = deployment
    client_id = register(server)
    ca = str(workdir / "server-ca.pem")
    verify = tls_verify(_files(workdir, cert) if cert else None, ca)
    with httpx.Client(verify=verify) as http:
        r = http.post(
            edge + "/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id}
        )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text


def test_the_metadata_behind_the_proxy_advertises_mtls(deployment) -> None:
    _, edge, workdir = deployment
    with httpx.Client(verify=tls_verify(None, str(workdir / "server-ca.pem"))) as http:
        meta = http.get(edge + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == edge
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert "tls_client_auth" in meta["token_endpoint_auth_methods_supported"]
