"""Test certificates for mutual TLS (RFC 8705), made with ``cryptography``: a CA, client
certificates it issues with a subject DN and subject alternative names, self-signed ones,
and the spellings a proxy forwards them in."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tokensmith.client_cert import x5t_s256

_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _name(cn: str, org: str = "Example Bank", country: str = "GE") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Cert:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def thumbprint(self) -> str:
        return x5t_s256(self.der)

    @property
    def escaped(self) -> str:
        """As nginx's ``$ssl_client_escaped_cert`` forwards it."""
        return quote(self.pem, safe="")

    @property
    def b64_der(self) -> str:
        return base64.b64encode(self.der).decode("ascii")

    @property
    def pem_one_line(self) -> str:
        return self.pem.replace("\n", " ")

    def jwk(self, with_x5c: bool = True) -> dict[str, str | list[str]]:
        """The public key as a JWK, with the certificate in ``x5c``."""
        from jwt.algorithms import ECAlgorithm

        jwk: dict[str, str | list[str]] = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        if with_x5c:
            jwk["x5c"] = [self.b64_der]
        else:
            jwk["x5t#S256"] = self.thumbprint
        return jwk

    def jwks(self, with_x5c: bool = True) -> str:
        return json.dumps({"keys": [self.jwk(with_x5c)]})


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(days=1))
        .not_valid_after(_NOW + datetime.timedelta(days=3650))
    )


def make_ca(cn: str = "Test CA") -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Cert(cert, key)


def make_client_cert(
    ca: Cert | None,
    cn: str = "bank-client",
    *,
    dns: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    emails: tuple[str, ...] = (),
    org: str = "Example Bank",
) -> Cert:
    """A client certificate issued by ``ca``, or self-signed without one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn, org)
    issuer = ca.cert.subject if ca else subject
    builder = _builder(subject, issuer, key.public_key())
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.RFC822Name(e) for e in emails]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    return Cert(cert, key)


def make_server_cert(ca: Cert, host: str = "127.0.0.1") -> Cert:
    """A TLS server certificate for ``host`` (an IP address SAN), issued by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Cert(cert, key)
