"""Property-based tests of the forwarded client certificate (RFC 8705): any header value,
a real certificate bent in random ways, several headers; the parser answers a certificate
or :class:`BadCertificate` and nothing else, and every endpoint that authenticates clients
answers below 500, a refusal as 401 ``invalid_client``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.certs import make_ca, make_client_cert
from tests.conftest import Harness, make_settings, running_app
from tokensmith.client_cert import BadCertificate, ClientCertificate, parse_certificate_header
from tokensmith.core.clock import FrozenClock

CA = make_ca()
CERT = make_client_cert(CA, "bank-client", dns=("client.bank.example",))
SPELLINGS = [CERT.escaped, CERT.pem, CERT.pem_one_line, CERT.b64_der]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@st.composite
def bent(draw: st.DrawFn) -> str:
    """A real certificate in one of its spellings, cut, spliced, or with characters
    replaced; or text of any kind."""
    kind = draw(st.sampled_from(["cut", "splice", "replace", "escape", "text", "der"]))
    value = draw(st.sampled_from(SPELLINGS))
    if kind == "cut":
        return value[: draw(st.integers(0, len(value)))]
    if kind == "splice":
        at = draw(st.integers(0, len(value)))
        return value[:at] + draw(st.text(max_size=20)) + value[at:]
    if kind == "replace":
        chars = list(value)
        for _ in range(draw(st.integers(1, 5))):
            chars[draw(st.integers(0, len(chars) - 1))] = draw(st.characters(codec="latin-1"))
        return "".join(chars)
    if kind == "escape":
        return quote(draw(st.binary(max_size=200)).decode("latin-1"), safe="")
    if kind == "der":
        der = bytearray(CERT.der)
        der[draw(st.integers(0, len(der) - 1))] ^= draw(st.integers(1, 255))
        return base64.b64encode(bytes(der)).decode()
    return draw(st.text(max_size=300))


@FUZZ
@given(value=bent())
def test_the_parser_answers_a_certificate_or_bad_certificate(value: str) -> None:
    try:
        cert = parse_certificate_header(value)
    except BadCertificate:
        return
    assert isinstance(cert, ClientCertificate)
    cert.subject_matches("CN=bank-client")  # nothing the matching reads raises either
    for kind in ("dns", "uri", "ip", "email"):
        cert.san_values(kind)


@pytest.fixture
async def app(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[tuple[Harness, str]]:
    settings_ = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'fuzz.db'}",
        trusted_proxies=("203.0.113.7",),
        failures_per_client=1_000_000,
        failures_per_address=1_000_000,
    )
    async with running_app(settings_, clock) as h:
        client, _ = await h.client(
            auth_method="tls_client_auth",
            tls_subject=("san_dns", "client.bank.example"),
            scope="read introspection",
            cert_bound_tokens=True,
        )
        yield h, client.client_id


@FUZZ
@given(data=st.data())
async def test_random_certificate_headers_never_break_an_endpoint(
    app: tuple[Harness, str], data: Any
) -> None:
    h, client_id = app
    path = data.draw(st.sampled_from(["/oauth/token", "/oauth/introspect", "/oauth/revoke"]))
    values = data.draw(st.lists(bent() | st.sampled_from(SPELLINGS), min_size=0, max_size=2))
    raw = [
        (
            b"x-client-cert",
            v.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b""),
        )
        for v in values
    ]
    form = f"grant_type=client_credentials&client_id={client_id}&token=abc".encode()
    headers = [(b"content-type", b"application/x-www-form-urlencoded"), *raw]
    request = h.http.build_request("POST", path, content=form, headers=headers)
    r = await h.http.send(request)
    assert r.status_code < 500, (values, r.text)
    if r.status_code >= 400:
        assert r.json()["error"] in ("invalid_client", "invalid_request"), r.text
    if r.status_code == 200 and path == "/oauth/token":
        assert values and r.json()["token_type"] == "Bearer"
