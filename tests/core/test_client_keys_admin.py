"""Changing a client's public keys after registration (``clients update --jwks`` and the
panel): checked as at registration, ``private_key_jwt`` added or removed, the client cache
told and the verifier's copy of a ``jwks_uri`` dropped, so new keys apply at once."""

from __future__ import annotations

import json

import pytest

from tests.assertions import TOKEN_URL, ClientKey
from tests.core.test_client_assertion import FakeFetcher, verifier
from tokensmith.core.admin import AdminError, ClientSpec
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.clock import FrozenClock
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore

KEY = ClientKey.generate("ES256", kid="k1")
NEW = ClientKey.generate("ES256", kid="k2")
URI = "https://bank.example/jwks.json"


class Told:
    def __init__(self) -> None:
        self.clients: list[str | None] = []
        self.uris: list[str | None] = []


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def admin(clock: FrozenClock, told: Told) -> ClientAdmin:
    return ClientAdmin(
        MemoryStore(),
        clock,
        SystemRandomness(),
        max_ttl=86400,
        invalidate=told.clients.append,
        forget_keys=told.uris.append,
    )


async def test_keys_registered_on_a_secret_client_add_private_key_jwt(
    admin: ClientAdmin, told: Told
) -> None:
    client, _ = await admin.create(ClientSpec("shop"))
    changed = await admin.set_keys(client.client_id, jwks=KEY.jwks())
    assert changed.auth_methods == ("client_secret_basic", "client_secret_post", "private_key_jwt")
    assert json.loads(changed.jwks or "") == {"keys": [KEY.public_jwk]}
    stored = await admin.get(client.client_id)
    assert stored == changed and stored.secrets == client.secrets  # the secret still works
    assert told.clients[-1] == client.client_id


async def test_keys_are_replaced_by_a_uri_and_both_uris_are_forgotten(
    admin: ClientAdmin, told: Told
) -> None:
    client, _ = await admin.create(ClientSpec("bank", jwks_uri=URI))
    other = "https://bank.example/v2/jwks.json"
    changed = await admin.set_keys(client.client_id, jwks_uri=other)
    assert changed.jwks_uri == other and changed.jwks is None
    assert changed.auth_methods == ("private_key_jwt",)
    assert sorted(told.uris) == sorted([URI, other])
    inline = await admin.set_keys(client.client_id, jwks=NEW.jwks())
    assert inline.jwks_uri is None and inline.jwks is not None
    assert told.uris[-1] == other


async def test_keys_only_replaces_the_secret_and_forgets_the_old_uri(
    admin: ClientAdmin, told: Told
) -> None:
    """The admin API's ``PUT /clients/{id}/keys``: the same checks and cache drops as the
    CLI and the panel, but the client's secret methods end."""
    client, _ = await admin.create(ClientSpec("bank", jwks_uri=URI))
    client = await admin.set_keys(client.client_id, jwks=KEY.jwks())
    assert "client_secret_basic" not in client.auth_methods
    secret_client, _ = await admin.create(ClientSpec("shop"))
    changed = await admin.set_keys(secret_client.client_id, jwks_uri=URI, keys_only=True)
    assert changed.auth_methods == ("private_key_jwt",)
    assert told.uris[-1] == URI and told.clients[-1] == secret_client.client_id
    with pytest.raises(AdminError, match="give jwks or jwks_uri"):
        await admin.set_keys(secret_client.client_id, keys_only=True)


async def test_clearing_keys_removes_private_key_jwt(admin: ClientAdmin) -> None:
    client, _ = await admin.create(ClientSpec("shop"))
    await admin.set_keys(client.client_id, jwks=KEY.jwks())
    cleared = await admin.set_keys(client.client_id)
    assert cleared.jwks is None and cleared.jwks_uri is None
    assert cleared.auth_methods == ("client_secret_basic", "client_secret_post")


@pytest.mark.parametrize(
    ("spec", "keys", "words"),
    [
        (ClientSpec("b", jwks=KEY.jwks()), {}, "only with its keys"),
        (ClientSpec("b"), {}, "no keys to clear"),
        (
            ClientSpec(
                "p",
                public=True,
                grant_types=("authorization_code",),
                redirect_uris=("https://a.example/cb",),
            ),
            {"jwks": KEY.jwks()},
            "public clients",
        ),
        (ClientSpec("b"), {"jwks": KEY.jwks(), "jwks_uri": URI}, "not both"),
        (ClientSpec("b"), {"jwks": json.dumps({"keys": [KEY.key.private_jwk()]})}, "private"),
        (ClientSpec("b"), {"jwks": "{not json"}, "not JSON"),
        (ClientSpec("b"), {"jwks_uri": "http://bank.example/jwks"}, "https"),
        (ClientSpec("b"), {"jwks_uri": "https://169.254.169.254/jwks"}, "metadata"),
    ],
    ids=[
        "clear keyed-only",
        "clear none",
        "public",
        "both",
        "private key",
        "not json",
        "http uri",
        "metadata address",
    ],
)
async def test_bad_key_changes_are_refused(
    admin: ClientAdmin, spec: ClientSpec, keys: dict[str, str], words: str
) -> None:
    client, _ = await admin.create(spec)
    with pytest.raises(AdminError, match=words):
        await admin.set_keys(client.client_id, **keys)
    assert await admin.get(client.client_id) == client


async def test_an_unknown_or_revoked_client_keeps_its_keys(admin: ClientAdmin) -> None:
    with pytest.raises(AdminError, match="no client"):
        await admin.set_keys("c_nobody", jwks=KEY.jwks())
    client, _ = await admin.create(ClientSpec("shop"))
    await admin.revoke(client.client_id)
    with pytest.raises(AdminError, match="revoked"):
        await admin.set_keys(client.client_id, jwks=KEY.jwks())


async def test_a_forgotten_jwks_uri_is_fetched_again_at_once(clock: FrozenClock) -> None:
    """Without ``forget`` the old set would serve ``cache_ttl`` seconds more."""
    fetcher = FakeFetcher(KEY.jwks())
    v = verifier(clock, fetcher)
    from tests.core.test_client_assertion import CID, client

    c = client(jwks=None, jwks_uri=URI)
    await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    fetcher.body = NEW.jwks()
    v.forget(URI)
    await v.verify(c, NEW.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 2
