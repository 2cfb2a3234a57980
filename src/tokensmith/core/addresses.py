"""Which network addresses the server may fetch a client-chosen URL from (a ``jwks_uri``,
RFC 7591 §2), against server-side request forgery (OWASP SSRF prevention).

Only public unicast addresses are fetched: never unspecified, loopback, private
(RFC 1918, RFC 4193), shared (RFC 6598), link-local (RFC 3927, RFC 4291 — the cloud
metadata service at 169.254.169.254 among them), multicast, reserved or documentation
addresses, nor an IPv4 address hidden in an IPv6 one (IPv4-mapped, ``::ffff:a.b.c.d``,
RFC 4291 §2.5.5.2; NAT64, ``64:ff9b::/96``, RFC 6052). Loopback is allowed only to a
server that is itself on loopback (a development issuer such as ``http://127.0.0.1:8000``).

A host name is checked by what it resolves to, every address of it, at fetch time
(:mod:`tokensmith.web.jwks_fetch` then connects to the address it checked, so a second
resolution cannot swap it: DNS rebinding); at registration only literal addresses and
``localhost`` names are known to be refused.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = [
    "METADATA_ADDRESSES",
    "address_refusal",
    "host_refusal",
    "is_loopback_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance metadata services (AWS, GCP, Azure, OpenStack; AWS's IPv6 one).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK_NAMES = ("localhost",)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: IPv4-mapped or NAT64 (well-known prefix)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the server must not connect to ``ip``, or ``None`` if it may (a public
    unicast address; loopback too with ``allow_loopback``)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_refusal(inner, allow_loopback=allow_loopback)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_refusal(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why a URL's host is refused before any lookup: a literal address that
    :func:`address_refusal` refuses, a ``localhost`` name (loopback), a metadata name."""
    name = host.strip("[]").rstrip(".").lower()
    literal = _literal(name)
    if literal is not None:
        return address_refusal(literal, allow_loopback=allow_loopback)
    if name in _METADATA_NAMES:
        return "a cloud metadata name"
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return None if allow_loopback else "a loopback address"
    return None


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` (a server's issuer) is on a loopback host: the server runs for
    development, and may fetch from loopback too."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    literal = _literal(host)
    if literal is not None:
        return literal.is_loopback
    return host in _LOOPBACK_NAMES or host.endswith(".localhost")
