"""The core's administration services against the in-memory store: clients and developer
app keys (:mod:`tokensmith.core.client_admin`), merchants and users
(:mod:`tokensmith.core.directory`), token activity for the panel
(:class:`tokensmith.core.activity.Activity`) and secrets shown once
(:mod:`tokensmith.core.reveals`). The CLI and the panel call these, so a rule holds for
both."""

from __future__ import annotations

import pytest

from tests.partner import FAST_PASSWORDS, PASSWORD
from tokensmith.core.activity import Activity, ActivityRecorder
from tokensmith.core.admin import AdminError, ClientChanges, ClientSpec
from tokensmith.core.client_admin import ApiKeys, ClientAdmin, kind_of
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.directory import Merchants, Users
from tokensmith.core.models import Session, User
from tokensmith.core.panel_models import AuthFailure, TokenCount, hour_of
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.reveals import Reveals
from tokensmith.storage.memory import MemoryStore

RAND = SystemRandomness()
APP = ClientSpec(
    "Ledger Sync",
    grant_types=("authorization_code", "refresh_token"),
    merchant_id="m1",
    redirect_uris=("https://partner.example/cb",),
)


class Invalidations:
    """What a cache was told."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []

    def __call__(self, key: str | None = None) -> None:
        self.keys.append(key)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def told() -> Invalidations:
    return Invalidations()


@pytest.fixture
def recorder(clock: FrozenClock) -> ActivityRecorder:
    return ActivityRecorder(clock)


@pytest.fixture
def activity(store: MemoryStore, recorder: ActivityRecorder) -> Activity:
    return Activity(store, recorder)


@pytest.fixture
def admin(
    store: MemoryStore, clock: FrozenClock, activity: Activity, told: Invalidations
) -> ClientAdmin:
    return ClientAdmin(store, clock, RAND, max_ttl=86400, usage=activity, invalidate=told)


@pytest.fixture
async def merchants(store: MemoryStore, clock: FrozenClock) -> Merchants:
    found = Merchants(store, clock, RAND)
    for name in ("Acme", "Globex"):
        await found.create(name)
    return found


@pytest.fixture
def users(store: MemoryStore, clock: FrozenClock) -> Users:
    return Users(store, store, store, FAST_PASSWORDS, clock, RAND)


# -- clients --------------------------------------------------------------------------------


async def test_every_change_to_a_client_tells_the_cache(
    admin: ClientAdmin, told: Invalidations
) -> None:
    client, secret = await admin.create(ClientSpec("Shop backend", merchant_id="m1"))
    assert secret and kind_of(client) == "key"
    new = await admin.rotate_secret(client.client_id, 3600)
    assert new != secret
    await admin.update(client.evolve(name="Renamed"))
    assert await admin.revoke(client.client_id) is True
    assert told.keys == [client.client_id] * 4
    stored = await admin.get(client.client_id)
    assert stored is not None and stored.name == "Renamed" and not stored.active


async def test_a_failed_rotation_still_tells_the_cache(
    admin: ClientAdmin, told: Invalidations
) -> None:
    with pytest.raises(AdminError, match="no client"):
        await admin.rotate_secret("nope", 0)
    assert told.keys == ["nope"]


@pytest.mark.parametrize(
    ("merchant_id", "kind", "found"),
    [("m1", "app", True), ("m2", "app", False), ("m1", "key", False)],
    ids=["own-app", "other-merchant", "wrong-kind"],
)
async def test_a_client_is_found_only_within_its_merchant_and_kind(
    admin: ClientAdmin, merchant_id: str, kind: str, found: bool
) -> None:
    client, _ = await admin.create(APP)
    owned = await admin.owned(merchant_id, client.client_id, kind)  # type: ignore[arg-type]
    assert (owned is not None) is found


async def test_clients_in_use_carry_when_they_last_got_a_token(
    admin: ClientAdmin, store: MemoryStore, recorder: ActivityRecorder, clock: FrozenClock
) -> None:
    key, _ = await admin.create(ClientSpec("Stored", merchant_id="m1"))
    fresh, _ = await admin.create(ClientSpec("Pending", merchant_id="m1"))
    idle, _ = await admin.create(ClientSpec("Idle", merchant_id="m1"))
    await admin.create(APP)
    hour = hour_of(clock.now())
    await store.add_token_counts([TokenCount(key.client_id, hour, 1, 0, clock.now() - 60)])
    recorder.issued(fresh.client_id)
    used = {u.client.name: u.last_used for u in await admin.in_use("m1", "key")}
    assert used == {"Stored": clock.now() - 60, "Pending": clock.now(), "Idle": None}
    assert [u.client.name for u in await admin.in_use("m1", "app")] == ["Ledger Sync"]
    assert idle.client_id not in await store.last_used([idle.client_id])


async def test_a_change_is_stored_and_tells_the_cache(
    admin: ClientAdmin, told: Invalidations
) -> None:
    client, _ = await admin.create(APP)
    changes = ClientChanges(
        name=" Ledger ", scope="read write", access_token_ttl=60, token_format="opaque"
    )
    changed = await admin.change(client.client_id, changes)
    assert await admin.get(client.client_id) == changed
    assert (changed.name, changed.scopes) == ("Ledger", ("read", "write"))
    assert (changed.access_token_ttl, changed.token_format) == (60, "opaque")
    assert changed.redirect_uris == APP.redirect_uris and changed.secrets == client.secrets
    assert told.keys == [client.client_id] * 2


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (ClientChanges(), "nothing to change"),
        (ClientChanges(name=" "), "a name is required"),
        (ClientChanges(scope=" "), "at least one scope"),
        (ClientChanges(access_token_ttl=86401), "ttl must be between"),
        (ClientChanges(redirect_uris=()), "at least one redirect URI"),
        (ClientChanges(redirect_uris=("https://a.example/cb#x",)), "no fragment"),
        (ClientChanges(grant_types=("password",)), "grant types must be among"),
        (ClientChanges(grant_types=()), "grant types must be among"),
    ],
)
async def test_a_change_is_checked_as_a_new_client_is(
    admin: ClientAdmin, changes: ClientChanges, reason: str
) -> None:
    client, _ = await admin.create(APP)
    with pytest.raises(AdminError, match=reason):
        await admin.change(client.client_id, changes)
    assert await admin.get(client.client_id) == client


async def test_a_change_keeps_the_default_scopes_within_the_scopes(admin: ClientAdmin) -> None:
    client, _ = await admin.create(ClientSpec("Shop", scope="read write", default_scope="write"))
    with pytest.raises(AdminError, match="default scopes"):
        await admin.change(client.client_id, ClientChanges(scope="read"))


async def test_a_public_client_cannot_be_changed_to_client_credentials(admin: ClientAdmin) -> None:
    spec = ClientSpec(
        "Mobile",
        grant_types=("authorization_code",),
        public=True,
        redirect_uris=("https://m.example/cb",),
    )
    client, _ = await admin.create(spec)
    with pytest.raises(AdminError, match="public clients"):
        await admin.change(client.client_id, ClientChanges(grant_types=("client_credentials",)))


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown", "revoked"])
async def test_an_unknown_or_revoked_client_is_not_changed(
    admin: ClientAdmin, revoked: bool
) -> None:
    client, _ = await admin.create(ClientSpec("Shop"))
    if revoked:
        await admin.revoke(client.client_id)
    cid = client.client_id if revoked else "nope"
    with pytest.raises(AdminError, match="revoked" if revoked else "no client"):
        await admin.change(cid, ClientChanges(name="Other"))


async def test_deleting_a_client_removes_it_and_tells_the_cache(
    admin: ClientAdmin, store: MemoryStore, told: Invalidations
) -> None:
    client, _ = await admin.create(ClientSpec("Shop"))
    kept, _ = await admin.create(ClientSpec("Other"))
    told.keys.clear()
    assert await admin.delete(client.client_id) is True
    assert await admin.get(client.client_id) is None
    assert [c.client_id for c in await admin.listing()] == [kept.client_id]
    assert told.keys == [client.client_id]
    assert await admin.delete(client.client_id) is False
    assert await admin.delete("nope") is False


async def test_a_client_is_revoked_before_its_rows_go(
    store: MemoryStore, clock: FrozenClock, told: Invalidations
) -> None:
    """If removing the rows fails, the client stays refused (and the cache is told)."""

    class Failing(MemoryStore):
        async def delete_client(self, client_id: str) -> bool:
            raise RuntimeError("database went away")

    failing = Failing()
    admin = ClientAdmin(failing, clock, RAND, max_ttl=86400, invalidate=told)
    client, _ = await admin.create(ClientSpec("Shop"))
    with pytest.raises(RuntimeError):
        await admin.delete(client.client_id)
    stored = await admin.get(client.client_id)
    assert stored is not None and not stored.active
    assert told.keys[-1] == client.client_id


# -- developer app keys -----------------------------------------------------------------------


async def test_a_developer_app_key_is_found_within_its_merchant_and_revoked_once(
    store: MemoryStore, clock: FrozenClock, told: Invalidations
) -> None:
    keys = ApiKeys(store, clock, RAND, told)
    key, plain = await keys.create(" Mobile app ", "m1")
    assert key.name == "Mobile app" and plain not in key.key_hash
    assert await keys.owned("m1", key.key_id) == key
    assert await keys.owned("m2", key.key_id) is None
    assert [k.key_id for k in await keys.listing()] == [key.key_id]
    assert await keys.revoke(key.key_id) is True
    assert await keys.revoke(key.key_id) is False
    assert told.keys == [None, None]  # the whole cache: it is keyed by the key's hash


async def test_rotating_a_key_gives_a_new_value_and_refuses_the_old(
    store: MemoryStore, clock: FrozenClock, told: Invalidations
) -> None:
    keys = ApiKeys(store, clock, RAND, told)
    key, old = await keys.create("Mobile app", "m1")
    new = await keys.rotate(key.key_id)
    assert new != old and len(new) >= 43
    assert await store.find_api_key(hash_secret(old)) is None
    found = await store.find_api_key(hash_secret(new))
    assert found is not None and found.key_id == key.key_id and new not in found.key_hash
    assert told.keys == [None]
    await keys.revoke(key.key_id)
    for key_id in (key.key_id, "nope"):
        with pytest.raises(AdminError, match="no live key"):
            await keys.rotate(key_id)
    assert await store.find_api_key(hash_secret(new)) is not None  # unchanged, revoked


# -- merchants and users ------------------------------------------------------------------------


async def test_merchants_are_found_by_id_or_name_and_disabled(merchants: Merchants) -> None:
    acme = await merchants.resolve("Acme")
    assert (
        await merchants.resolve(acme.merchant_id) == acme == await merchants.get(acme.merchant_id)
    )
    assert [m.name for m in await merchants.listing()] == ["Acme", "Globex"]
    assert (await merchants.disable("Acme")).disabled_at is not None
    with pytest.raises(AdminError, match="no merchant"):
        await merchants.resolve("Initech")
    with pytest.raises(AdminError, match="exists"):
        await merchants.create("Globex")


async def _team(users: Users, merchants: Merchants) -> tuple[User, User, User]:
    acme, globex = [await merchants.resolve(n) for n in ("Acme", "Globex")]
    ann = await users.create(
        email="ann@acme.test", password=PASSWORD, role="admin", merchant=acme.merchant_id
    )
    bob = await users.create(email="bob@acme.test", password=PASSWORD, merchant="Acme")
    eve = await users.create(
        email="eve@globex.test", password=PASSWORD, role="admin", merchant=globex.merchant_id
    )
    return ann, bob, eve


async def test_an_admin_may_disable_their_merchants_users_but_not_themself(
    users: Users, merchants: Merchants
) -> None:
    ann, bob, eve = await _team(users, merchants)
    acme = ann.merchant_id
    assert acme is not None
    assert await users.member(acme, bob.user_id) == bob
    assert await users.member(acme, eve.user_id) is None
    assert await users.disableable(acme, bob.user_id, ann) == bob
    assert await users.disableable(acme, ann.user_id, ann) is None
    assert await users.disableable(acme, eve.user_id, ann) is None
    assert [u.email for u in await users.listing(acme)] == [ann.email, bob.email]


async def test_disabling_a_user_ends_their_sessions(
    users: Users, merchants: Merchants, store: MemoryStore
) -> None:
    _, bob, _ = await _team(users, merchants)
    await store.add_session(Session("s" * 64, bob.user_id, 1.0, 1.0, 9e9))
    disabled = await users.disable(bob.email)
    assert not disabled.active and store.sessions == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "short"}, "at least"),
        ({"role": "member", "merchant": None}, "needs --merchant"),
        ({"role": "operator", "merchant": "Acme"}, "operators belong to no merchant"),
        ({"email": "not-an-address"}, "not an e-mail address"),
        ({"email": "ann@acme.test"}, "exists"),
        ({"merchant": "Initech"}, "no merchant"),
    ],
    ids=["weak-password", "member-without-merchant", "operator-with-merchant", "bad-email",
         "taken-email", "unknown-merchant"],
)  # fmt: skip
async def test_a_user_the_rules_refuse_is_not_created(
    users: Users, merchants: Merchants, fields: dict[str, str | None], message: str
) -> None:
    await _team(users, merchants)
    base: dict[str, str | None] = {
        "email": "new@acme.test",
        "password": PASSWORD,
        "role": "member",
        "merchant": "Acme",
    }
    with pytest.raises(AdminError, match=message):
        await users.create(**(base | fields))  # type: ignore[arg-type]


# -- activity ----------------------------------------------------------------------------------


async def test_activity_adds_what_is_not_written_yet_to_the_stored_counts(
    activity: Activity, store: MemoryStore, recorder: ActivityRecorder, clock: FrozenClock
) -> None:
    hour = hour_of(clock.now())
    await store.add_token_counts([TokenCount("k1", hour, 2, 1), TokenCount("k2", hour, 5)])
    recorder.issued("k1")
    recorder.issued("k3")
    counts = {c.client_id: (c.issued, c.refused) for c in await activity.counts(["k1", "k3"], hour)}
    assert counts == {"k1": (3, 1), "k3": (1, 0)}
    assert await activity.counts(["k1"], hour + 3600) == []


async def test_failures_are_the_merchants_and_unattributed_ones_are_for_operators(
    activity: Activity, store: MemoryStore
) -> None:
    await store.add_auth_failures(
        [
            AuthFailure(1.0, "k1", "203.0.113.1", "bad_secret", "oauth", "m1"),
            AuthFailure(2.0, "k2", "203.0.113.1", "bad_secret", "oauth", "m1"),
            AuthFailure(3.0, "k9", "203.0.113.1", "bad_secret", "oauth", "m2"),
            AuthFailure(4.0, "~guess", "203.0.113.1", "unknown_client", "oauth", None),
        ]
    )
    assert [f.at for f in await activity.failures("m1")] == [2.0, 1.0]
    assert [f.at for f in await activity.failures("m1", "k1")] == [1.0]
    operator = User("op", "op@ts.test", "$argon2id$x", "operator", None, 1.0)
    admin = User("u1", "ann@acme.test", "$argon2id$x", "admin", "m1", 1.0)
    assert [f.at for f in await activity.unattributed(operator) or []] == [4.0]
    assert await activity.unattributed(admin) is None


# -- secrets shown once -----------------------------------------------------------------------


async def test_a_secret_is_shown_once_to_its_session_only(
    store: MemoryStore, clock: FrozenClock
) -> None:
    reveals = Reveals(store, clock, RAND, ttl=600)
    key = b"k" * 32
    rid = await reveals.add(key, "s1", b'{"secret": "x"}')
    stored = next(iter(store.panel.reveals.values()))
    assert b"secret" not in stored.sealed and stored.expires_at == clock.now() + 600
    assert await reveals.take(key, rid, "s2") is None  # another browser
    assert await reveals.take(key, rid, "s1") == b'{"secret": "x"}'
    assert await reveals.take(key, rid, "s1") is None  # already shown


@pytest.mark.parametrize(("key", "wait"), [(b"z" * 32, 0), (b"k" * 32, 600)], ids=["key", "ttl"])
async def test_a_secret_does_not_open_with_another_key_nor_after_its_time(
    store: MemoryStore, clock: FrozenClock, key: bytes, wait: int
) -> None:
    reveals = Reveals(store, clock, RAND, ttl=600)
    rid = await reveals.add(b"k" * 32, "s1", b"body")
    clock.advance(wait)
    assert await reveals.take(key, rid, "s1") is None
