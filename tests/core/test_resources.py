"""Resource indicators (RFC 8707) in the core: identifiers, targets, the registry, and
audience-restricted tokens of the token service against the in-memory store."""

from __future__ import annotations

import dataclasses

import jwt
import pytest

from tests.core.conftest import POLICY_JWT, POLICY_OPAQUE, Core
from tests.core_flow import make_flow
from tokensmith.core import errors
from tokensmith.core.admin import AdminError
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Resource
from tokensmith.core.resources import (
    MAX_RESOURCES,
    ResourceAdmin,
    ResourceRegistry,
    Target,
    check_identifier,
    parse_resources,
)
from tokensmith.storage.memory import MemoryStore

PAYMENTS = Resource("https://payments.example/api", "Payments API", ("payments:read", "read"))
LEDGER = Resource("https://ledger.example/", "Ledger", ("write",), access_token_ttl=600)
URN = Resource("urn:example:reports", "Reports", ("read",), token_format="opaque")
BOTH = f"{PAYMENTS.identifier} {LEDGER.identifier}"


@pytest.mark.parametrize(
    "value",
    [
        "https://payments.example/api",
        "https://payments.example:8443/v1?tenant=a",  # a query: SHOULD NOT, but allowed
        "http://127.0.0.1:9000/",
        "urn:example:reports",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_an_absolute_uri_without_a_fragment_is_a_resource(value: str) -> None:
    assert check_identifier(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("/api", "absolute"),
        ("api.example", "absolute"),
        ("//payments.example/api", "absolute"),
        ("https://payments.example/api#frag", "fragment"),
        ("https://payments.example/api#", "fragment"),
        ("https:", "absolute"),
        ("https:///path-only", "absolute"),
        ("https://[::1/api", "absolute"),
        ("https://payments.example/a\x00b", "absolute"),
        ("1https://x.example/", "absolute"),
        ("", "absolute"),
    ],
    ids=[
        "relative-path",
        "bare-host",
        "network-path",
        "fragment",
        "empty-fragment",
        "scheme-only",
        "http-without-host",
        "bad-ipv6",
        "nul",
        "bad-scheme",
        "empty",
    ],
)
def test_anything_else_is_invalid_target(value: str, why: str) -> None:
    with pytest.raises(errors.InvalidTarget) as info:
        check_identifier(value)
    assert why in info.value.description


def test_resources_split_on_spaces_keep_order_and_drop_repeats() -> None:
    values = ["https://b.example/ https://a.example/", "https://b.example/", ""]
    assert parse_resources(values) == ("https://b.example/", "https://a.example/")
    with pytest.raises(errors.InvalidTarget):
        parse_resources([" ".join(f"https://r{i}.example/" for i in range(MAX_RESOURCES + 1))])


def test_one_resource_is_a_string_audience_several_a_list() -> None:
    assert Target((PAYMENTS,)).audience == PAYMENTS.identifier
    assert Target((PAYMENTS, LEDGER)).audience == [PAYMENTS.identifier, LEDGER.identifier]


def test_the_shortest_lifetime_and_the_most_private_format_win() -> None:
    assert Target((PAYMENTS,)).ttl is None and Target((PAYMENTS,)).token_format is None
    assert Target((PAYMENTS, LEDGER)).ttl == 600
    assert Target((LEDGER, URN)).token_format == "opaque"
    assert Target((Resource("urn:a", "a", ("x",), token_format="jwt"),)).token_format == "jwt"


@pytest.mark.parametrize(
    ("resources", "scopes", "explicit", "expected"),
    [
        ((PAYMENTS,), ("read", "write"), False, ("read",)),
        ((PAYMENTS, LEDGER), ("read", "write"), False, ("read", "write")),
        ((PAYMENTS,), ("read", "write"), True, errors.InvalidScope),
        ((LEDGER,), ("read",), False, errors.InvalidTarget),
        ((PAYMENTS, LEDGER), ("read",), False, errors.InvalidTarget),
    ],
    ids=[
        "defaults-dropped",
        "each-keeps-its-own",
        "explicit-scope-of-no-resource",
        "no-scope-of-the-resource",
        "one-resource-without-a-scope",
    ],
)
def test_scopes_are_narrowed_to_the_resources(
    resources: tuple[Resource, ...],
    scopes: tuple[str, ...],
    explicit: bool,
    expected: tuple[str, ...] | type[Exception],
) -> None:
    target = Target(resources)
    if isinstance(expected, tuple):
        assert target.narrow(scopes, explicit=explicit) == expected
    else:
        with pytest.raises(expected):
            target.narrow(scopes, explicit=explicit)


async def _registry(*resources: Resource) -> ResourceRegistry:
    store = MemoryStore()
    for r in resources:
        await store.add_resource(r)
    return ResourceRegistry(store)


@pytest.mark.parametrize(
    ("requested", "granted", "expected"),
    [
        (None, None, None),
        (PAYMENTS.identifier, None, (PAYMENTS.identifier,)),
        (
            None,
            f"{PAYMENTS.identifier} {LEDGER.identifier}",
            (PAYMENTS.identifier, LEDGER.identifier),
        ),
        (LEDGER.identifier, f"{PAYMENTS.identifier} {LEDGER.identifier}", (LEDGER.identifier,)),
        (URN.identifier, PAYMENTS.identifier, errors.InvalidTarget),
        ("https://unknown.example/", None, errors.InvalidTarget),
        ("relative/path", None, errors.InvalidTarget),
    ],
    ids=["none", "requested", "granted", "downscoped", "not-granted", "unknown", "relative"],
)
async def test_the_token_endpoint_names_resources_among_those_granted(
    requested: str | None, granted: str | None, expected: tuple[str, ...] | type[Exception] | None
) -> None:
    registry = await _registry(PAYMENTS, LEDGER, URN)
    if isinstance(expected, type):
        with pytest.raises(expected):
            await registry.for_token(requested, granted)
        return
    target = await registry.for_token(requested, granted)
    assert (target.identifiers if target else None) == expected


async def test_the_admin_registers_checks_and_removes(clock: FrozenClock) -> None:
    store = MemoryStore()
    admin = ResourceAdmin(store, clock, max_ttl=3600)
    made = await admin.add("https://payments.example/api", " Payments ", ["read write"], 600)
    assert made.scopes == ("read", "write") and made.name == "Payments"
    assert made.created_at == clock.now()
    for bad in (
        ("https://payments.example/api", "again", ["read"], None),
        ("/relative", "x", ["read"], None),
        ("https://x.example/#f", "x", ["read"], None),
        ("https://x.example/", " ", ["read"], None),
        ("https://x.example/", "x", [], None),
        ("https://x.example/", "x", ['re"ad'], None),
        ("https://x.example/", "x", ["read"], 0),
        ("https://x.example/", "x", ["read"], 3601),
    ):
        with pytest.raises(AdminError):
            await admin.add(*bad)  # type: ignore[arg-type]
    assert [r.identifier for r in await admin.listing()] == ["https://payments.example/api"]
    assert await admin.remove("https://payments.example/api") is True
    assert await admin.remove("https://payments.example/api") is False


# -- the token service ---------------------------------------------------------------------


async def _core_with(core: Core, *resources: Resource) -> None:
    for r in resources:
        await core.store.add_resource(r)
    core.service.resources = ResourceRegistry(core.store)


async def test_client_credentials_for_a_resource_is_audience_restricted(core: Core) -> None:
    await _core_with(core, PAYMENTS, LEDGER)
    client, secret = await core.client(scope="read write")
    req = core.request(client.client_id, secret, resource=LEDGER.identifier)
    _, issued = await core.service.token(req, POLICY_JWT)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["aud"] == LEDGER.identifier
    assert claims["scope"] == "write" and issued.expires_in == 600
    both = f"{PAYMENTS.identifier} {LEDGER.identifier}"
    _, issued = await core.service.token(
        core.request(client.client_id, secret, resource=both), POLICY_JWT
    )
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["aud"] == [PAYMENTS.identifier, LEDGER.identifier]
    assert claims["scope"] == "read write"


async def test_an_opaque_token_for_a_resource_is_introspected_with_its_audience(
    core: Core,
) -> None:
    await _core_with(core, URN)
    client, secret = await core.client(scope="read")
    req = core.request(client.client_id, secret, resource=URN.identifier)
    _, issued = await core.service.token(req, POLICY_JWT)  # the resource asks for opaque
    assert issued.access_token.count(".") == 0
    [record] = core.store.tokens.values()
    assert record.audience == URN.identifier
    body = await core.service.introspect(issued.access_token, client)
    assert body["active"] is True and body["aud"] == URN.identifier


async def test_without_resource_nothing_changes(core: Core) -> None:
    await _core_with(core, PAYMENTS)
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_OPAQUE)
    [record] = core.store.tokens.values()
    assert record.audience is None and issued.expires_in == 7200
    body = await core.service.introspect(issued.access_token, client)
    assert body["aud"] == "https://auth.example.test"


async def test_a_server_without_a_registry_refuses_resource(core: Core) -> None:
    client, secret = await core.client()
    req = core.request(client.client_id, secret, resource=PAYMENTS.identifier)
    with pytest.raises(errors.InvalidTarget, match="not supported"):
        await core.service.token(req, POLICY_JWT)


async def test_a_refresh_narrows_to_one_granted_resource_and_no_other(
    clock: FrozenClock,
) -> None:
    flow = await make_flow(clock)
    for r in (PAYMENTS, LEDGER, URN):
        await flow.store.add_resource(r)
    flow.service.resources = ResourceRegistry(flow.store)
    code = await flow.code()
    stored = next(iter(flow.store.codes.values()))
    granted = f"{PAYMENTS.identifier} {LEDGER.identifier}"
    flow.store.codes[stored.code_hash] = dataclasses.replace(stored, resources=granted)
    issued = await flow.exchange(code)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["aud"] == [PAYMENTS.identifier, LEDGER.identifier]
    narrowed = await flow.refresh(issued.refresh_token, resource=PAYMENTS.identifier)
    claims = jwt.decode(narrowed.access_token, options={"verify_signature": False})
    assert claims["aud"] == PAYMENTS.identifier and claims["scope"] == "read"
    with pytest.raises(errors.InvalidTarget, match="not granted"):
        await flow.refresh(narrowed.refresh_token, resource=URN.identifier)
    # the refusal spent nothing: the refresh token still works, for every granted resource
    again = await flow.refresh(narrowed.refresh_token)
    claims = jwt.decode(again.access_token, options={"verify_signature": False})
    assert claims["aud"] == [PAYMENTS.identifier, LEDGER.identifier]
