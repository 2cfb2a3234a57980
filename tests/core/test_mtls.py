"""RFC 8705 in the core: reading a forwarded certificate, matching it to a client's
registration (§2.1.2, §2.2), and the checks that refuse what does not match."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.certs import make_ca, make_client_cert
from tokensmith.client_cert import (
    BadCertificate,
    ClientCertificate,
    certificate_from_headers,
    cnf_x5t,
    parse_certificate_header,
    x5t_s256,
)
from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.models import Client
from tokensmith.core.mtls import (
    bound_thumbprint,
    certificate_refusal,
    check_refresh_certificate,
    check_tls_subject,
)

CA = make_ca()
CERT = make_client_cert(
    CA,
    "bank-client",
    dns=("client.bank.example",),
    uris=("https://bank.example/client",),
    ips=("192.0.2.10", "2001:db8::1"),
    emails=("ops@Bank.example",),
)
OTHER = make_client_cert(CA, "other-client", dns=("other.example",))
DN = "CN=bank-client,O=Example Bank,C=GE"


def parsed(cert: Any = CERT) -> ClientCertificate:
    return ClientCertificate.from_der(cert.der)


@pytest.mark.parametrize(
    "spelling",
    ["escaped", "pem", "pem_one_line", "b64_der"],
    ids=["nginx escaped PEM", "PEM", "PEM on one line", "base64 DER"],
)
def test_every_proxy_spelling_reads_as_the_same_certificate(spelling: str) -> None:
    cert = parse_certificate_header(getattr(CERT, spelling))
    assert cert.der == CERT.der
    assert cert.thumbprint == CERT.thumbprint


def test_base64url_der_is_read_too() -> None:
    value = base64.urlsafe_b64encode(CERT.der).decode().rstrip("=")
    assert parse_certificate_header(value).der == CERT.der


def test_the_thumbprint_is_base64url_sha256_of_the_der() -> None:
    import hashlib

    digest = hashlib.sha256(CERT.der).digest()
    assert x5t_s256(CERT.der) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(CERT.thumbprint) == 43


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a certificate",
        "%ZZ",
        "%ff%fe",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nMIIB",
        "MIIB" * 10,
        "@@@@",
        "x" * 20000,
        base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),
        base64.b64encode(
            CERT.der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x03", 1)
        ).decode(),
        CERT.pem + OTHER.pem,
        "junk" + CERT.pem,
    ],
    ids=[
        "empty",
        "text",
        "bad escape",
        "escape not utf-8",
        "PEM of junk",
        "PEM without END",
        "base64 of junk",
        "not base64",
        "too long",
        "DER of no certificate",
        "unknown X.509 version",
        "two certificates",
        "text around the PEM",
    ],
)
def test_a_malformed_header_is_bad_certificate(value: str) -> None:
    with pytest.raises(BadCertificate):
        parse_certificate_header(value)


def test_headers_empty_means_none_several_mean_bad() -> None:
    name = b"x-client-cert"
    assert certificate_from_headers([], name) is None
    assert certificate_from_headers([(name, b"")], name) is None
    assert certificate_from_headers([(name, CERT.escaped.encode())], name) is not None
    with pytest.raises(BadCertificate):
        certificate_from_headers([(name, CERT.escaped.encode())] * 2, name)
    with pytest.raises(BadCertificate):
        certificate_from_headers([(name, "é".encode())], name)


@pytest.mark.parametrize(
    ("kind", "value", "matches"),
    [
        ("subject_dn", DN, True),
        ("subject_dn", "cn=BANK-CLIENT, o=example  bank, c=ge", True),
        ("subject_dn", "CN=other-client,O=Example Bank,C=GE", False),
        ("subject_dn", "O=Example Bank,CN=bank-client,C=GE", False),
        ("subject_dn", "CN=bank-client,O=Example Bank", False),
        ("subject_dn", "not a DN", False),
        ("san_dns", "client.bank.example", True),
        ("san_dns", "CLIENT.bank.example.", True),
        ("san_dns", "other.example", False),
        ("san_dns", "*.bank.example", False),
        ("san_uri", "https://bank.example/client", True),
        ("san_uri", "https://bank.example/client/", False),
        ("san_ip", "192.0.2.10", True),
        ("san_ip", "2001:db8:0:0::1", True),
        ("san_ip", "192.0.2.11", False),
        ("san_ip", "not an ip", False),
        ("san_email", "ops@bank.example", True),
        ("san_email", "OPS@bank.example", False),
        ("san_email", "other@bank.example", False),
    ],
)
async def test_tls_client_auth_compares_the_registered_subject(
    kind: str, value: str, matches: bool
) -> None:
    client = Client(
        "c1",
        "bank",
        ("read",),
        auth_methods=("tls_client_auth",),
        tls_auth_kind=kind,
        tls_auth_value=value,
    )
    reason, _ = await certificate_refusal(None, client, parsed())
    assert (reason is None) is matches, reason


async def test_a_certificate_without_sans_matches_no_san() -> None:
    bare = make_client_cert(CA, "bare")
    client = Client(
        "c1",
        "bank",
        ("read",),
        auth_methods=("tls_client_auth",),
        tls_auth_kind="san_dns",
        tls_auth_value="bare",
    )
    reason, description = await certificate_refusal(None, client, parsed(bare))
    assert reason == "certificate_mismatch" and "tls_client_auth_san_dns" in description


class _Keys:
    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self._keys = keys

    async def keys(self, client: Client, kid: str | None) -> list[dict[str, Any]]:
        return self._keys


@pytest.mark.parametrize("with_x5c", [True, False], ids=["x5c", "x5t#S256"])
async def test_self_signed_matches_a_certificate_of_its_jwks(with_x5c: bool) -> None:
    own = make_client_cert(None, "self")
    client = Client("c1", "self", ("read",), auth_methods=("self_signed_tls_client_auth",))
    keys: Any = _Keys([own.jwk(with_x5c)])
    assert (await certificate_refusal(keys, client, parsed(own)))[0] is None
    stranger = make_client_cert(None, "self")  # same subject, another key
    reason, _ = await certificate_refusal(keys, client, parsed(stranger))
    assert reason == "certificate_not_registered"


async def test_without_a_certificate_an_mtls_client_is_refused() -> None:
    client = Client("c1", "bank", ("read",), auth_methods=("tls_client_auth",))
    reason, description = await certificate_refusal(None, client, None)
    assert reason == "no_certificate" and "certificate" in description
    assert (await certificate_refusal(None, None, parsed()))[0] == "unknown_client"


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("subject_dn", DN, DN),
        ("san_ip", "2001:db8:0::1", "2001:db8::1"),
        ("san_dns", " client.bank.example ", "client.bank.example"),
    ],
)
def test_registered_subjects_are_checked(kind: str, value: str, stored: str) -> None:
    assert check_tls_subject(kind, value) == stored


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("subject_dn", "no equals sign"),
        ("san_ip", "300.1.1.1"),
        ("san_email", "x"),
        ("nope", "x"),
        ("san_dns", ""),
    ],
)
def test_bad_registered_subjects_are_refused(kind: str, value: str) -> None:
    with pytest.raises(ValueError):
        check_tls_subject(kind, value)


def test_a_binding_client_needs_a_certificate() -> None:
    binding = Client("c1", "bank", ("read",), cert_bound_tokens=True)
    assert bound_thumbprint(binding, parsed()) == CERT.thumbprint
    with pytest.raises(InvalidRequest):
        bound_thumbprint(binding, None)
    assert bound_thumbprint(binding.evolve(cert_bound_tokens=False), parsed()) is None


def test_a_bound_refresh_token_needs_the_same_certificate() -> None:
    check_refresh_certificate(None, None)
    check_refresh_certificate(CERT.thumbprint, CERT.thumbprint)
    for presented in (None, OTHER.thumbprint):
        with pytest.raises(InvalidGrant):
            check_refresh_certificate(CERT.thumbprint, presented)


def test_cnf_x5t_reads_claims() -> None:
    assert cnf_x5t({"cnf": {"x5t#S256": "abc"}}) == "abc"
    assert cnf_x5t({"cnf": {"jkt": "abc"}}) is None
    assert cnf_x5t({"cnf": "x"}) is None
    assert cnf_x5t({}) is None
