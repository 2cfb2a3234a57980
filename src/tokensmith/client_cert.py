"""Client certificates forwarded by a TLS-terminating proxy (RFC 8705), as the server and
the resource guard read them. A leaf module: it imports nothing of tokensmith, so every
package may use it (``tests/test_layers.py``).

A proxy that terminated mutual TLS passes the client's certificate on in a header. Three
spellings are accepted, each holding exactly one certificate:

* URL-encoded PEM, as nginx's ``$ssl_client_escaped_cert`` gives it (``-----BEGIN%20...``);
* PEM with its line breaks replaced by spaces or tabs (Apache, HAProxy, Envoy setups);
* the base64 (or base64url) of the DER encoding, without PEM armour (Traefik).

:func:`parse_certificate_header` answers a :class:`ClientCertificate` or raises
:class:`BadCertificate` (never another exception, whatever the header holds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cryptography import x509

__all__ = [
    "DEFAULT_HEADER",
    "MAX_HEADER_LENGTH",
    "BadCertificate",
    "ClientCertificate",
    "certificate_from_headers",
    "cnf_x5t",
    "parse_certificate_header",
    "x5t_s256",
]

#: The header a proxy puts the client certificate in, unless configured otherwise.
DEFAULT_HEADER = "X-Client-Cert"
#: A header longer than this is refused unread (a 4096-bit RSA certificate, escaped, has
#: about 3,000 characters).
MAX_HEADER_LENGTH = 16 * 1024
_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"
_SPACE = re.compile(r"\s+")
#: An attribute type and its ``=`` at the start of an RDN (after an unescaped ``,``/``+``).
_ATTRIBUTE_TYPE = re.compile(r"(^|(?<!\\)[,+])\s*([A-Za-z][A-Za-z0-9-]*)\s*=")
_BASE64 = re.compile(r"[A-Za-z0-9+/_=-]+")


class BadCertificate(ValueError):
    """The header holds no single well-formed X.509 certificate; the message says why."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def x5t_s256(der: bytes) -> str:
    """RFC 8705 §3.1: the base64url SHA-256 of the certificate's DER encoding, the value of
    a bound token's ``cnf`` member ``x5t#S256``."""
    return _b64url(hashlib.sha256(der).digest())


def cnf_x5t(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.x5t#S256`` of a JWT's claims or an introspection answer (RFC 8705 §3.1,
    §3.2), if it has one."""
    cnf = claims.get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    return value if isinstance(value, str) else None


def _normalized(value: str) -> str:
    """An attribute value as RFC 4518 compares it, simplified: case folded, inner runs of
    space collapsed, leading and trailing space dropped."""
    return _SPACE.sub(" ", value).strip().casefold()


def name_key(name: x509.Name) -> tuple[frozenset[tuple[str, str]], ...]:
    """A distinguished name as RFC 4517 ``distinguishedNameMatch`` compares them: the same
    RDNs in the same order, each the same set of (attribute type, value), values compared
    case-insensitively with space normalised (RFC 8705 §2.1.2)."""
    return tuple(
        frozenset((a.oid.dotted_string, _normalized(str(a.value))) for a in rdn)
        for rdn in name.rdns
    )


def parse_dn(text: str) -> x509.Name:
    """An RFC 4514 string as a name, attribute types in any case and spaces around the
    separators allowed (as RFC 4514 §4 suggests accepting); :class:`ValueError` if it is
    not one."""
    canonical = _ATTRIBUTE_TYPE.sub(lambda m: m.group(1) + m.group(2).upper() + "=", text.strip())
    try:
        name = x509.Name.from_rfc4514_string(canonical)
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{text!r} is not an RFC 4514 distinguished name") from exc
    if not name.rdns:
        raise ValueError("the distinguished name is empty")
    return name


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A client's certificate: its DER encoding and what RFC 8705 compares of it."""

    der: bytes = field(repr=False)
    #: RFC 8705 §3.1 ``x5t#S256``.
    thumbprint: str

    @classmethod
    def from_der(cls, der: bytes) -> ClientCertificate:
        try:
            x509.load_der_x509_certificate(der)
        except (ValueError, TypeError, x509.InvalidVersion) as exc:
            raise BadCertificate("the client certificate is not a valid X.509 certificate") from exc
        return cls(der, x5t_s256(der))

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    def subject_matches(self, expected: str) -> bool:
        """RFC 8705 §2.1.2 ``tls_client_auth_subject_dn``: the subject is that DN."""
        try:
            wanted = parse_dn(expected)
            subject = self.certificate.subject
        except ValueError:
            return False
        return name_key(subject) == name_key(wanted)

    def san_values(self, kind: str) -> list[str]:
        """The subject alternative names of one kind (``dns``, ``uri``, ``ip``,
        ``email``), as text; none when the certificate has no such extension or a
        malformed one."""
        try:
            ext = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (x509.ExtensionNotFound, ValueError):
            return []
        san = ext.value
        if kind == "ip":
            return [str(v) for v in san.get_values_for_type(x509.IPAddress)]
        general: dict[str, type[x509.DNSName | x509.UniformResourceIdentifier | x509.RFC822Name]]
        general = {
            "dns": x509.DNSName,
            "uri": x509.UniformResourceIdentifier,
            "email": x509.RFC822Name,
        }
        return list(san.get_values_for_type(general[kind]))

    def san_matches(self, kind: str, expected: str) -> bool:
        """RFC 8705 §2.1.2: one SAN entry of ``kind`` is ``expected``: DNS names and
        e-mail domains compared without case, IP addresses as addresses (any spelling),
        URIs exactly. No wildcard is expanded."""
        values = self.san_values(kind)
        if kind == "ip":
            try:
                wanted = ipaddress.ip_address(expected.strip())
            except ValueError:
                return False
            return any(_ip(v) == wanted for v in values)
        if kind == "dns":
            return any(v.rstrip(".").lower() == expected.rstrip(".").lower() for v in values)
        if kind == "email":
            return any(_email_key(v) == _email_key(expected) for v in values)
        return expected in values

    def matches_any(self, certificates: Collection[bytes], thumbprints: Collection[str]) -> bool:
        """RFC 8705 §2.2: the certificate is one of these (DER), or has one of these
        ``x5t#S256`` thumbprints."""
        return self.der in certificates or self.thumbprint in thumbprints


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP SAN as an address; ``None`` for a network (a name constraint's form)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _email_key(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _der_of(text: str) -> bytes:
    """The DER of one certificate in PEM (line breaks possibly turned into spaces) or bare
    base64/base64url."""
    if _BEGIN in text:
        head, _, rest = text.partition(_BEGIN)
        body, end, tail = rest.partition(_END)
        if not end:
            raise BadCertificate("the client certificate's PEM has no END line")
        if _BEGIN in tail or head.strip() or tail.strip():
            raise BadCertificate("send exactly one certificate, the client's")
        text = body
    compact = _SPACE.sub("", text)
    if not compact or not _BASE64.fullmatch(compact):
        raise BadCertificate("the client certificate is not PEM or base64")
    padded = compact.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadCertificate("the client certificate is not valid base64") from exc


def parse_certificate_header(value: str) -> ClientCertificate:
    """The certificate a proxy forwarded in a header (see the module's docstring for the
    spellings); :class:`BadCertificate` for anything else."""
    if len(value) > MAX_HEADER_LENGTH:
        raise BadCertificate("the client certificate header is too long")
    text = value.strip()
    if "%" in text:
        try:
            text = unquote(text, errors="strict")
        except UnicodeDecodeError as exc:
            raise BadCertificate("the client certificate header is not URL-encoded PEM") from exc
    return ClientCertificate.from_der(_der_of(text))


def certificate_from_headers(
    headers: Sequence[tuple[bytes, bytes]], name: bytes
) -> ClientCertificate | None:
    """The certificate in the header ``name`` (lower case) of raw ASGI headers; ``None``
    when there is none, :class:`BadCertificate` for several or a malformed one. Only call
    it for a request that came from a trusted proxy: anyone can send the header."""
    values = [v for k, v in headers if k == name]
    if not values:
        return None
    if len(values) > 1:
        raise BadCertificate("more than one client certificate header")
    try:
        text = values[0].decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadCertificate("the client certificate header is not ASCII") from exc
    if not text.strip():
        return None  # nginx sends an empty value when the client sent no certificate
    return parse_certificate_header(text)
