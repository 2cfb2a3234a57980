"""Mutual TLS (RFC 8705) behind a TLS-terminating proxy, in process: the certificate comes
in ``X-Client-Cert`` from the proxy (the harness's peer, a trusted proxy here);
``tls_client_auth`` and ``self_signed_tls_client_auth`` at the token, introspection,
revocation and PAR endpoints; certificate-bound access and refresh tokens; the metadata.
The attacks: a header sent straight by a client, a malformed header, someone else's
certificate."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.certs import Cert, make_ca, make_client_cert
from tests.conftest import Harness, make_settings, running_app
from tests.partner import REDIRECT, make_partner, pkce_pair
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client

PROXY = "203.0.113.7"  # the harness's peer address
CA = make_ca()
CERT = make_client_cert(CA, "bank-client", dns=("client.bank.example",), ips=("192.0.2.10",))
OTHER = make_client_cert(CA, "other-client", dns=("other.bank.example",))
SELF = make_client_cert(None, "self-signed-client")
DN = "CN=bank-client,O=Example Bank,C=GE"


@pytest.fixture
async def h(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", trusted_proxies=(PROXY,))
    async with running_app(settings, clock) as harness:
        yield harness


def cert_header(cert: Cert | None) -> dict[str, str]:
    return {} if cert is None else {"X-Client-Cert": cert.escaped}


async def pki_client(
    h: Harness, subject: tuple[str, str] = ("subject_dn", DN), **spec: Any
) -> Client:
    client, _ = await h.client(auth_method="tls_client_auth", tls_subject=subject, **spec)
    assert client.auth_methods == ("tls_client_auth",) and not client.secrets
    return client


async def token(
    h: Harness,
    client_id: str,
    cert: Cert | None,
    http: httpx.AsyncClient | None = None,
    **form: str,
) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": client_id} | form
    return await (http or h.http).post("/oauth/token", data=data, headers=cert_header(cert))


def refused(r: httpx.Response, words: str = "") -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client", r.text
    assert words in r.json().get("error_description", ""), r.text


def claims_of(access_token: str) -> dict[str, Any]:
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


@contextlib.asynccontextmanager
async def straight_from(h: Harness, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that reaches the server itself, not through the proxy."""
    transport = httpx.ASGITransport(h.asgi, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.test") as c:
        yield c


# -- tls_client_auth (§2.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "spelling"),
    [
        (("subject_dn", DN), "escaped"),
        (("subject_dn", "cn=bank-client, o=example bank, c=GE"), "pem_one_line"),
        (("san_dns", "client.bank.example"), "b64_der"),
        (("san_ip", "192.0.2.10"), "escaped"),
    ],
)
async def test_a_pki_client_authenticates_with_its_certificate(
    h: Harness, subject: tuple[str, str], spelling: str
) -> None:
    c = await pki_client(h, subject)
    data = {"grant_type": "client_credentials", "client_id": c.client_id}
    r = await h.http.post(
        "/oauth/token", data=data, headers={"X-Client-Cert": getattr(CERT, spelling)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(r.json()["access_token"])  # not bound: the client did not ask


async def test_attacks_on_tls_client_auth_are_invalid_client(h: Harness) -> None:
    c = await pki_client(h)
    by_dns = await pki_client(h, ("san_dns", "client.bank.example"))
    refused(await token(h, c.client_id, None), "TLS client certificate")
    refused(await token(h, c.client_id, OTHER), "tls_client_auth_subject_dn")
    refused(await token(h, by_dns.client_id, OTHER), "tls_client_auth_san_dns")
    refused(await token(h, c.client_id, SELF), "tls_client_auth_subject_dn")
    r = await h.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": c.client_id},
        headers={"X-Client-Cert": "-----BEGIN%20CERTIFICATE-----%0Agarbage"},
    )
    refused(r, "certificate")
    refused(await h.token(c.client_id, "a guessed secret"))


async def test_the_header_sent_by_the_client_itself_is_ignored(h: Harness) -> None:
    """Anyone can send ``X-Client-Cert``: from a peer that is not a trusted proxy it is
    treated as absent, even a well-formed certificate of the right client."""
    c = await pki_client(h)
    async with straight_from(h, "198.51.100.9") as direct:
        refused(await token(h, c.client_id, CERT, http=direct), "TLS client certificate")
        garbage = {"X-Client-Cert": "%%%not a cert"}
        data = {"grant_type": "client_credentials", "client_id": c.client_id}
        refused(await direct.post("/oauth/token", data=data, headers=garbage), "TLS client")


async def test_without_trusted_proxies_no_header_is_read(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with running_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'b.db'}"), clock) as h:
        c = await pki_client(h)
        refused(await token(h, c.client_id, CERT), "TLS client certificate")
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        assert "tls_client_auth" not in meta["token_endpoint_auth_methods_supported"]
        assert "tls_client_certificate_bound_access_tokens" not in meta


async def test_a_renamed_header_is_the_one_read(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'c.db'}",
        trusted_proxies=(PROXY,),
        client_cert_header="SSL-Client-Cert",
    )
    async with running_app(settings, clock) as h:
        c = await pki_client(h)
        refused(await token(h, c.client_id, CERT))
        data = {"grant_type": "client_credentials", "client_id": c.client_id}
        r = await h.http.post("/oauth/token", data=data, headers={"SSL-Client-Cert": CERT.escaped})
        assert r.status_code == 200, r.text


async def test_a_secret_client_gains_nothing_from_a_certificate(h: Harness) -> None:
    c, secret = await h.client()
    refused(await token(h, c.client_id, CERT))
    r = await h.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(c.client_id, secret),
        headers=cert_header(CERT),
    )
    assert r.status_code == 200 and "cnf" not in claims_of(r.json()["access_token"])


# -- self_signed_tls_client_auth (§2.2) -----------------------------------------------------


@pytest.mark.parametrize("with_x5c", [True, False], ids=["x5c", "x5t#S256"])
async def test_a_self_signed_client_authenticates_with_a_certificate_of_its_jwks(
    h: Harness, with_x5c: bool
) -> None:
    c, _ = await h.client(auth_method="self_signed_tls_client_auth", jwks=SELF.jwks(with_x5c))
    assert c.auth_methods == ("self_signed_tls_client_auth",)
    assert (await token(h, c.client_id, SELF)).status_code == 200
    stranger = make_client_cert(None, "self-signed-client")
    refused(await token(h, c.client_id, stranger), "not in the client's jwks")
    refused(await token(h, c.client_id, CERT), "not in the client's jwks")
    refused(await token(h, c.client_id, None), "TLS client certificate")


# -- every endpoint that authenticates clients ---------------------------------------------


async def test_introspection_revocation_and_par_take_the_certificate(h: Harness) -> None:
    c = await pki_client(h, scope="read introspection", cert_bound_tokens=True)
    issued = (await token(h, c.client_id, CERT)).json()["access_token"]
    form = {"token": issued, "client_id": c.client_id}
    r = await h.http.post("/oauth/introspect", data=form, headers=cert_header(CERT))
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    assert r.json()["cnf"] == {"x5t#S256": CERT.thumbprint}
    assert r.json()["token_type"] == "Bearer"
    refused(await h.http.post("/oauth/introspect", data=form, headers=cert_header(OTHER)))
    refused(await h.http.post("/oauth/revoke", data=form))
    r = await h.http.post("/oauth/revoke", data=form, headers=cert_header(CERT))
    assert r.status_code == 200, r.text
    r = await h.http.post("/oauth/introspect", data=form, headers=cert_header(CERT))
    assert r.json() == {"active": False}

    app = await pki_client(
        h, grant_types=("authorization_code",), redirect_uris=(REDIRECT,), name="partner"
    )
    _, challenge = pkce_pair()
    push = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    refused(await h.http.post("/oauth/par", data=push, headers=cert_header(OTHER)))
    r = await h.http.post("/oauth/par", data=push, headers=cert_header(CERT))
    assert r.status_code == 201, r.text


# -- certificate-bound access tokens (§3) ---------------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_a_binding_clients_tokens_carry_the_certificate_thumbprint(
    h: Harness, token_format: str
) -> None:
    c = await pki_client(
        h, cert_bound_tokens=True, token_format=token_format, scope="read introspection"
    )
    r = await token(h, c.client_id, CERT)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"  # RFC 8705 §3: still a Bearer token
    access = r.json()["access_token"]
    if token_format == "jwt":
        assert claims_of(access)["cnf"] == {"x5t#S256": CERT.thumbprint}
    form = {"token": access, "client_id": c.client_id}
    answer = (await h.http.post("/oauth/introspect", data=form, headers=cert_header(CERT))).json()
    assert answer["active"] is True and answer["cnf"] == {"x5t#S256": CERT.thumbprint}
    assert issued_by_type(h, token_format, "mtls") == 1


async def test_a_secret_client_binding_its_tokens_must_present_a_certificate(h: Harness) -> None:
    c, secret = await h.client(cert_bound_tokens=True)
    r = await h.token(c.client_id, secret)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert "certificate" in r.json()["error_description"]
    r = await h.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(c.client_id, secret),
        headers=cert_header(OTHER),
    )
    assert r.status_code == 200
    assert claims_of(r.json()["access_token"])["cnf"] == {"x5t#S256": OTHER.thumbprint}


# -- certificate-bound refresh tokens of public clients (§4) --------------------------------


async def _public_tokens(h: Harness, cert: Cert | None) -> tuple[Any, httpx.Response]:
    p = await make_partner(h, public=True, cert_bound_tokens=True)
    verifier, challenge = pkce_pair()
    code = await p.code(code_challenge=challenge, code_challenge_method="S256")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": p.app.client_id,
    }
    return p, await h.http.post("/oauth/token", data=form, headers=cert_header(cert))


async def _refresh(h: Harness, p: Any, rt: str, cert: Cert | None) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": p.app.client_id}
    return await h.http.post("/oauth/token", data=form, headers=cert_header(cert))


async def test_a_public_clients_refresh_token_is_bound_to_its_certificate(h: Harness) -> None:
    p, first = await _public_tokens(h, CERT)
    assert first.status_code == 200, first.text
    body = first.json()
    assert claims_of(body["access_token"])["cnf"] == {"x5t#S256": CERT.thumbprint}
    rt = body["refresh_token"]
    stolen = await _refresh(h, p, rt, OTHER)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    bare = await _refresh(h, p, rt, None)
    assert bare.status_code == 400, bare.text
    ok = await _refresh(h, p, rt, CERT)  # the refusals spent nothing
    assert ok.status_code == 200, ok.text
    assert claims_of(ok.json()["access_token"])["cnf"] == {"x5t#S256": CERT.thumbprint}
    answer = await p.http.post(
        "/oauth/introspect",
        data={"token": ok.json()["refresh_token"], "client_id": p.app.client_id},
    )
    assert answer.status_code in (200, 401)  # a public client may not introspect; no leak


# -- metadata (RFC 8414, RFC 8705 §3.3) ------------------------------------------------------


async def test_the_metadata_advertises_mtls(h: Harness) -> None:
    meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    for name in ("token", "introspection", "revocation"):
        methods = meta[f"{name}_endpoint_auth_methods_supported"]
        assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(methods), name
    assert "mtls_endpoint_aliases" not in meta


def test_the_escaped_header_is_what_nginx_sends() -> None:
    assert CERT.escaped.startswith("-----BEGIN%20CERTIFICATE-----%0A")
    assert base64.b64decode(CERT.b64_der) == CERT.der


async def test_dpop_and_a_certificate_bind_one_token_to_both(h: Harness) -> None:
    """RFC 9449 and RFC 8705 together: ``cnf`` holds the key's ``jkt`` and the certificate's
    ``x5t#S256``; the token type is ``DPoP``, at the token endpoint and at introspection."""
    from tests.dpop import DpopKey

    key = DpopKey.generate("ES256")
    c = await pki_client(h, cert_bound_tokens=True, scope="read introspection")
    proof = key.proof("https://auth.example.test/oauth/token", iat=h.clock.now())
    data = {"grant_type": "client_credentials", "client_id": c.client_id}
    r = await h.http.post("/oauth/token", data=data, headers=cert_header(CERT) | {"DPoP": proof})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    both = {"jkt": key.jkt, "x5t#S256": CERT.thumbprint}
    assert claims_of(r.json()["access_token"])["cnf"] == both
    form = {"token": r.json()["access_token"], "client_id": c.client_id}
    answer = (await h.http.post("/oauth/introspect", data=form, headers=cert_header(CERT))).json()
    assert answer["token_type"] == "DPoP" and answer["cnf"] == both
    assert issued_by_type(h, "jwt", "dpop+mtls") == 1


def issued_by_type(h: Harness, token_format: str, binding: str) -> float | None:
    """``tokensmith_tokens_issued_by_type_total`` of access tokens so bound."""
    h.ctx.observer.flush()
    labels = {"token_type": "access", "format": token_format, "binding": binding}
    return h.ctx.observer.registry.get_sample_value(
        "tokensmith_tokens_issued_by_type_total", labels
    )


async def test_a_public_client_without_binding_keeps_unbound_tokens(h: Harness) -> None:
    p = await make_partner(h, public=True)
    verifier, challenge = pkce_pair()
    code = await p.code(code_challenge=challenge, code_challenge_method="S256")
    form = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": p.app.client_id,
    }  # fmt: skip
    r = await h.http.post("/oauth/token", data=form, headers=cert_header(CERT))
    assert r.status_code == 200, r.text
    assert "cnf" not in claims_of(r.json()["access_token"])
    ok = await _refresh(h, p, r.json()["refresh_token"], OTHER)  # any certificate, or none
    assert ok.status_code == 200, ok.text
