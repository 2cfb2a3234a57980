"""An in-memory store with the same semantics as the SQL one, for the core's tests."""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping
from typing import Any

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    AuthorizationCode,
    Client,
    ClientSecret,
    Consent,
    Grantor,
    InitialAccessToken,
    Merchant,
    RefreshGrant,
    RefreshTokenRecord,
    Session,
    SigningKeyRecord,
    TokenFamily,
    User,
    Withdrawal,
)
from tokensmith.storage.memory_audit import AuditMemoryMixin
from tokensmith.storage.memory_consents import ConsentResourcesMemoryMixin
from tokensmith.storage.memory_details import DetailsTypesMemoryMixin
from tokensmith.storage.memory_panel import PanelMemoryMixin
from tokensmith.storage.memory_pushed import PushedMemoryMixin
from tokensmith.storage.memory_resources import ResourcesMemoryMixin

__all__ = ["MemoryStore"]


class MemoryStore(
    PanelMemoryMixin,
    PushedMemoryMixin,
    DetailsTypesMemoryMixin,
    ResourcesMemoryMixin,
    AuditMemoryMixin,
    ConsentResourcesMemoryMixin,
):
    """Dict-backed; every call is atomic because nothing awaits in the middle."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, AccessTokenRecord] = {}
        self._revocations = 0
        self.keys: dict[str, SigningKeyRecord] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.merchants: dict[str, Merchant] = {}
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.families: dict[str, TokenFamily] = {}
        self.refresh_tokens: dict[str, RefreshTokenRecord] = {}
        self.consents: dict[tuple[str, str], Consent] = {}
        self.sessions: dict[str, Session] = {}
        self.initial_tokens: dict[str, InitialAccessToken] = {}

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    async def add_client(self, client: Client) -> None:
        if client.client_id in self.clients:
            raise KeyError(client.client_id)
        self.clients[client.client_id] = client

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        return [c for c in self.clients.values() if merchant_id in (None, c.merchant_id)]

    async def update_client(self, client: Client) -> None:
        old = self.clients[client.client_id]
        self.clients[client.client_id] = dataclasses.replace(client, secrets=old.secrets)

    async def revoke_client(self, client_id: str, at: float) -> bool:
        c = self.clients.get(client_id)
        if c is None or c.revoked_at is not None:
            return False
        self.clients[client_id] = dataclasses.replace(c, revoked_at=at)
        return True

    async def delete_client(self, client_id: str) -> bool:
        if self.clients.pop(client_id, None) is None:
            return False
        tables: tuple[MutableMapping[Any, Any], ...] = (
            self.tokens,
            self.codes,
            self.families,
            self.refresh_tokens,
            self.consents,
            self.pushed_requests,
        )
        for table in tables:  # in place: a memory twin shares these dicts
            for key in [k for k, v in table.items() if v.client_id == client_id]:
                del table[key]
        return True

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        c = self.clients.get(client_id)
        if c is None:
            return False
        kept = tuple(
            s
            if s.expires_at is not None and s.expires_at <= old_expires_at
            else dataclasses.replace(s, expires_at=old_expires_at)
            for s in c.secrets
            if s.expires_at is None or s.expires_at > new.created_at
        )
        self.clients[client_id] = dataclasses.replace(c, secrets=(*kept, new))
        return True

    async def add_access_token(self, record: AccessTokenRecord) -> None:
        self.tokens[record.jti] = record

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        return next((t for t in self.tokens.values() if t.token_hash == token_hash), None)

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None:
        return self.tokens.get(jti)

    @property
    def revocation_generation(self) -> int:
        return self._revocations

    async def revoked_since(self, since: float, now: float) -> list[tuple[str, float, float]]:
        return [
            (t.jti, t.revoked_at, t.expires_at)
            for t in self.tokens.values()
            if t.revoked_at is not None and t.revoked_at >= since and t.expires_at > now
        ]

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        current = self.tokens.get(record.jti, record)
        if current.revoked_at is None:
            self.tokens[record.jti] = dataclasses.replace(current, revoked_at=at)
            self._revocations += 1

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        old = [j for j, t in self.tokens.items() if t.expires_at < before][:batch]
        for jti in old:
            del self.tokens[jti]
        return len(old)

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        return sorted(self.keys.values(), key=lambda k: k.created_at)

    async def add_first_signing_key(self, key: SigningKeyRecord) -> bool:
        if any(k.retired_at is None for k in self.keys.values()):
            return False
        self.keys[key.kid] = key
        return True

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        if retire_others_at is not None:
            for kid, k in self.keys.items():
                if k.retired_at is None or k.retired_at > retire_others_at:
                    self.keys[kid] = dataclasses.replace(k, retired_at=retire_others_at)
        self.keys[key.kid] = key

    async def set_publish_until(self, kid: str, until: float) -> None:
        self.keys[kid] = dataclasses.replace(self.keys[kid], publish_until=until)

    async def add_initial_token(self, token: InitialAccessToken) -> None:
        if any(t.token_hash == token.token_hash for t in self.initial_tokens.values()):
            raise KeyError(token.token_id)
        self.initial_tokens[token.token_id] = token

    async def find_initial_token(self, token_hash: str) -> InitialAccessToken | None:
        return next((t for t in self.initial_tokens.values() if t.token_hash == token_hash), None)

    async def list_initial_tokens(self) -> list[InitialAccessToken]:
        return sorted(self.initial_tokens.values(), key=lambda t: (t.created_at, t.token_id))

    async def revoke_initial_token(self, token_id: str, at: float) -> bool:
        t = self.initial_tokens.get(token_id)
        if t is None or t.revoked_at is not None:
            return False
        self.initial_tokens[token_id] = dataclasses.replace(t, revoked_at=at)
        return True

    async def add_api_key(self, key: ApiKey) -> None:
        self.api_keys[key.key_id] = key

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        return next((k for k in self.api_keys.values() if k.key_hash == key_hash), None)

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        return [k for k in self.api_keys.values() if merchant_id in (None, k.merchant_id)]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        k = self.api_keys.get(key_id)
        if k is None or k.revoked_at is not None:
            return False
        self.api_keys[key_id] = dataclasses.replace(k, revoked_at=at)
        return True

    async def replace_api_key_hash(self, key_id: str, key_hash: str) -> bool:
        k = self.api_keys.get(key_id)
        if k is None or k.revoked_at is not None:
            return False
        self.api_keys[key_id] = dataclasses.replace(k, key_hash=key_hash)
        return True

    async def add_merchant(self, merchant: Merchant) -> None:
        if any(m.name == merchant.name for m in self.merchants.values()):
            raise KeyError(merchant.name)
        self.merchants[merchant.merchant_id] = merchant

    async def get_merchant(self, merchant_id: str) -> Merchant | None:
        return self.merchants.get(merchant_id)

    async def find_merchant_by_name(self, name: str) -> Merchant | None:
        return next((m for m in self.merchants.values() if m.name == name), None)

    async def list_merchants(self) -> list[Merchant]:
        return list(self.merchants.values())

    async def disable_merchant(self, merchant_id: str, at: float) -> bool:
        m = self.merchants.get(merchant_id)
        if m is None or m.disabled_at is not None:
            return False
        self.merchants[merchant_id] = dataclasses.replace(m, disabled_at=at)
        return True

    # -- users -----------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        if any(u.email == user.email for u in self.users.values()):
            raise KeyError(user.email)
        self.users[user.user_id] = user

    async def get_user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def find_user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def list_users(self, merchant_id: str | None = None) -> list[User]:
        found = [u for u in self.users.values() if merchant_id in (None, u.merchant_id)]
        return sorted(found, key=lambda u: (u.created_at, u.email))

    async def disable_user(self, user_id: str, at: float) -> bool:
        u = self.users.get(user_id)
        if u is None or u.disabled_at is not None:
            return False
        self.users[user_id] = dataclasses.replace(u, disabled_at=at)
        return True

    async def update_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        u = self.users.get(user_id)
        if u is None or u.password_hash != old_hash:
            return False
        self.users[user_id] = dataclasses.replace(u, password_hash=new_hash)
        return True

    # -- authorization codes ---------------------------------------------------------------
    async def add_code(self, code: AuthorizationCode) -> None:
        self.codes[code.code_hash] = code

    async def find_code(self, code_hash: str) -> AuthorizationCode | None:
        return self.codes.get(code_hash)

    async def redeem_code(
        self,
        code_hash: str,
        at: float,
        family: TokenFamily,
        first: RefreshTokenRecord | None,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        code = self.codes.get(code_hash)
        if code is None or code.used_at is not None:
            return False
        self.codes[code_hash] = dataclasses.replace(code, used_at=at)
        self.families[family.family_id] = family
        if first is not None:
            self.refresh_tokens[first.token_hash] = first
        self._keep(access)
        return True

    def _keep(self, access: AccessTokenRecord | None) -> None:
        if access is not None:
            self.tokens[access.jti] = access

    async def purge_codes(self, before: float, batch: int) -> int:
        old = [h for h, c in self.codes.items() if c.expires_at < before][:batch]
        for h in old:
            del self.codes[h]
        return len(old)

    # -- refresh tokens --------------------------------------------------------------------
    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        return self.refresh_tokens.get(token_hash)

    async def get_family(self, family_id: str) -> TokenFamily | None:
        return self.families.get(family_id)

    async def find_refresh_grant(self, token_hash: str) -> RefreshGrant | None:
        token = self.refresh_tokens.get(token_hash)
        if token is None:
            return None
        family = self.families.get(token.family_id)
        merchant = None if family is None else self.merchants.get(family.merchant_id)
        return RefreshGrant(token, family, merchant)

    def _usable(self, token_hash: str) -> RefreshTokenRecord | None:
        t = self.refresh_tokens.get(token_hash)
        if t is None or t.spent_at is not None or t.revoked_at is not None:
            return None
        fam = self.families.get(t.family_id)
        return t if fam is not None and fam.revoked_at is None else None

    def _store_new(self, new: RefreshTokenRecord) -> None:
        self.refresh_tokens[new.token_hash] = new
        fam = self.families[new.family_id]
        self.families[fam.family_id] = dataclasses.replace(fam, expires_at=new.expires_at)

    async def rotate_refresh_token(
        self,
        old_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        old = self._usable(old_hash)
        if old is None:
            return False
        self.refresh_tokens[old_hash] = dataclasses.replace(
            old, spent_at=at, spent_reason="rotated", replaced_by=new.token_hash
        )
        self._store_new(new)
        self._keep(access)
        return True

    async def replay_refresh_token(
        self,
        old_hash: str,
        successor_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        old = self.refresh_tokens.get(old_hash)
        successor = self._usable(successor_hash)
        if (
            old is None
            or successor is None
            or old.spent_reason != "rotated"
            or old.replaced_by != successor_hash
            or old.replayed_at is not None
            or old.revoked_at is not None
            or old.family_id != successor.family_id
        ):
            return False
        self.refresh_tokens[old_hash] = dataclasses.replace(old, replayed_at=at)
        self.refresh_tokens[successor_hash] = dataclasses.replace(
            successor, spent_at=at, spent_reason="superseded", replaced_by=new.token_hash
        )
        withdrawn = self.tokens.get(successor.access_jti or "")
        if withdrawn is not None and withdrawn.revoked_at is None:
            self.tokens[withdrawn.jti] = dataclasses.replace(withdrawn, revoked_at=at)
            self._revocations += 1
        self._store_new(new)
        self._keep(access)
        return True

    async def revoke_family(self, family_id: str, at: float) -> bool:
        return self._revoke_family(family_id, at)

    def _revoke_family(self, family_id: str, at: float) -> bool:
        fam = self.families.get(family_id)
        live = fam is not None and fam.revoked_at is None
        if fam is not None and live:
            self.families[family_id] = dataclasses.replace(fam, revoked_at=at)
        for h, t in list(self.refresh_tokens.items()):
            if t.family_id == family_id and t.revoked_at is None:
                self.refresh_tokens[h] = dataclasses.replace(t, revoked_at=at)
        for jti, a in list(self.tokens.items()):
            if a.family_id == family_id and a.revoked_at is None:
                self.tokens[jti] = dataclasses.replace(a, revoked_at=at)
                self._revocations += 1
        return live

    async def revoke_families(self, user_id: str, client_id: str, at: float) -> int:
        ids = [
            f.family_id
            for f in self.families.values()
            if f.user_id == user_id and f.client_id == client_id
        ]
        return sum([self._revoke_family(fid, at) for fid in ids])

    async def withdraw_authorization(
        self, grantor: Grantor, client_id: str, at: float
    ) -> Withdrawal:
        if grantor.user_id is not None:
            members = {grantor.user_id}
        else:
            members = {
                u.user_id for u in self.users.values() if u.merchant_id == grantor.merchant_id
            }
        forgotten = [k for k in self.consents if k[0] in members and k[1] == client_id]
        for k in forgotten:
            del self.consents[k]
        families = [
            f
            for f in self.families.values()
            if f.client_id == client_id
            and (f.user_id in members or f.merchant_id == grantor.merchant_id)
        ]
        live = sum(f.live_at(at) for f in families)
        for f in families:
            self._revoke_family(f.family_id, at)
        return Withdrawal(len(forgotten), live)

    async def purge_families(self, before: float, batch: int) -> int:
        ended = [
            fid
            for fid, f in self.families.items()
            if min(f.expires_at, f.absolute_expires_at) < before
        ][:batch]
        doomed = [h for h, t in self.refresh_tokens.items() if t.family_id in set(ended)]
        for h in doomed:
            del self.refresh_tokens[h]
        for fid in ended:
            del self.families[fid]
        return len(doomed)

    # -- consents --------------------------------------------------------------------------
    async def get_consent(self, user_id: str, client_id: str) -> Consent | None:
        return self.consents.get((user_id, client_id))

    async def save_consent(self, consent: Consent) -> None:
        self.consents[(consent.user_id, consent.client_id)] = consent

    async def delete_consent(self, user_id: str, client_id: str) -> bool:
        return self.consents.pop((user_id, client_id), None) is not None

    async def list_consents(self, user_id: str) -> list[Consent]:
        return sorted(
            (c for c in self.consents.values() if c.user_id == user_id),
            key=lambda c: (c.granted_at, c.client_id),
        )

    # -- sessions --------------------------------------------------------------------------
    async def add_session(self, session: Session) -> None:
        self.sessions[session.session_hash] = session

    async def get_session(self, session_hash: str) -> Session | None:
        return self.sessions.get(session_hash)

    async def touch_session(self, session_hash: str, at: float) -> None:
        s = self.sessions.get(session_hash)
        if s is not None:
            self.sessions[session_hash] = dataclasses.replace(s, last_seen_at=at)

    async def delete_session(self, session_hash: str) -> None:
        self.sessions.pop(session_hash, None)

    async def delete_user_sessions(self, user_id: str) -> int:
        doomed = [h for h, s in self.sessions.items() if s.user_id == user_id]
        for h in doomed:
            del self.sessions[h]
        return len(doomed)

    async def purge_sessions(self, idle_before: float, now: float, batch: int) -> int:
        doomed = [
            h
            for h, s in self.sessions.items()
            if s.last_seen_at < idle_before or s.expires_at < now
        ][:batch]
        for h in doomed:
            del self.sessions[h]
        return len(doomed)
