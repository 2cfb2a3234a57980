"""A ``jwks_uri`` cannot make the server reach inside its network (SSRF): literal
non-public addresses are refused at registration, and at fetch time every address a name
resolves to is checked and the connection goes to the checked address (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest

from tests.assertions import ClientKey
from tokensmith.core.addresses import address_refusal, host_refusal, is_loopback_url
from tokensmith.core.client_assertion import check_jwks_uri
from tokensmith.core.ports import JwksUnavailable
from tokensmith.web.jwks_fetch import GuardedBackend, HttpJwksFetcher

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("100.64.0.1", "not a public"),
    ("192.0.2.10", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b::a00:1", "private"),
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[a for a, _ in REFUSED])
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and why in refusal


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_to_a_server_on_loopback(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "0.0.0.0", "fe80::1"])
def test_a_server_on_loopback_still_refuses_the_rest(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


@pytest.mark.parametrize(
    "uri",
    [
        "https://10.0.0.8/jwks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:a9fe:a9fe]/jwks",
        "https://[fd00:ec2::254]/jwks",
        "https://127.0.0.1/jwks",
        "https://localhost/jwks",
        "https://api.localhost/jwks",
        "http://127.0.0.1:8080/jwks",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://0.0.0.0/jwks",
    ],
)
def test_registration_refuses_literal_inner_addresses(uri: str) -> None:
    with pytest.raises(ValueError, match=r"not a public address|https"):
        check_jwks_uri(uri)


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8080/jwks", "https://localhost/jwks", "http://[::1]:9/j"]
)
def test_a_server_on_loopback_may_register_loopback_uris(uri: str) -> None:
    assert check_jwks_uri(uri, allow_loopback=True) == uri


@pytest.mark.parametrize(
    ("issuer", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("https://auth.example.test", False),
        ("https://10.0.0.1", False),
    ],
)
def test_a_server_is_on_loopback_when_its_issuer_is(issuer: str, loopback: bool) -> None:
    assert is_loopback_url(issuer) is loopback


def test_names_are_left_to_the_fetch_except_localhost_and_metadata() -> None:
    assert host_refusal("rp.example") is None
    assert host_refusal("LOCALHOST.") is not None
    assert host_refusal("metadata.google.internal") is not None


# -- at fetch time ---------------------------------------------------------------------------


class FakeResolver:
    """Answers from a table, or each answer of a list in turn (a rebinding name)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise OSError("name does not resolve")
        if answer and isinstance(answer[0], list):
            return list(answer.pop(0))
        return list(answer)


class Inner(httpcore.AsyncNetworkBackend):
    """Records where the guarded backend connects; connects nowhere."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
        self.connected.append((host, port))
        raise httpcore.ConnectError("not in tests")


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    inner = Inner()
    resolver = FakeResolver({"rp.example": ["93.184.216.34", "2606:4700:4700::1111"]})
    backend = GuardedBackend(resolver, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rp.example", 443)
    assert inner.connected == [("93.184.216.34", 443)]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (["10.0.0.7"], "private"),
        (["93.184.216.34", "169.254.169.254"], "metadata"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["0x7f000001"], "not an address"),
        ([], "usable"),
    ],
    ids=["private", "one bad among good", "mapped loopback", "junk", "nothing"],
)
async def test_a_name_resolving_to_any_inner_address_is_refused_before_connecting(
    answer: list[str], why: str
) -> None:
    inner = Inner()
    backend = GuardedBackend(FakeResolver({"rp.example": answer}), inner=inner)
    with pytest.raises(JwksUnavailable, match=why):
        await backend.connect_tcp("rp.example", 443)
    assert inner.connected == []


async def test_dns_rebinding_cannot_swap_the_checked_address() -> None:
    """The name answers a public address, then an inner one: the connection is made to
    the address checked, never by name (which would resolve a second time)."""
    inner = Inner()
    rebinding = FakeResolver({"rp.example": [["93.184.216.34"], ["127.0.0.1"]]})
    backend = GuardedBackend(rebinding, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rp.example", 443)
    assert inner.connected == [("93.184.216.34", 443)] and rebinding.calls == ["rp.example"]
    with pytest.raises(JwksUnavailable, match="loopback"):
        await backend.connect_tcp("rp.example", 443)
    assert len(inner.connected) == 1


async def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    backend = GuardedBackend(FakeResolver({}), inner=Inner())
    with pytest.raises(JwksUnavailable, match="does not resolve"):
        await backend.connect_tcp("nowhere.example", 443)


async def test_the_fetcher_refuses_a_name_resolving_inside() -> None:
    fetcher = HttpJwksFetcher(resolver=FakeResolver({"rp.example": ["10.0.0.9"]}))
    with pytest.raises(JwksUnavailable, match="private address"):
        await fetcher.fetch("https://rp.example/jwks")
    await fetcher.aclose()


@pytest.fixture
async def loopback_jwks() -> AsyncIterator[int]:
    """A JWK Set served over plain HTTP on 127.0.0.1; yields the port."""
    body = ClientKey.generate("ES256", kid="k").jwks().encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_server_on_loopback_fetches_from_loopback(loopback_jwks: int) -> None:
    """Development keeps working: the guarded transport really connects, to the checked
    address."""
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    fetcher = HttpJwksFetcher(allow_loopback=True, resolver=resolver)
    body = await fetcher.fetch(f"http://localhost:{loopback_jwks}/jwks")
    assert b'"kid":"k"' in body.replace(b" ", b"") and resolver.calls == ["localhost"]
    await fetcher.aclose()
    refusing = HttpJwksFetcher(resolver=resolver)
    with pytest.raises(JwksUnavailable):
        await refusing.fetch(f"http://localhost:{loopback_jwks}/jwks")
