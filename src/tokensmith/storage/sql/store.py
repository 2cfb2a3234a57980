"""SQLAlchemy Core implementation of :class:`tokensmith.core.ports.Store`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    AuthorizationCode,
    Client,
    ClientSecret,
    Consent,
    Merchant,
    RefreshGrant,
    RefreshTokenRecord,
    Session,
    SigningKeyRecord,
    TokenFamily,
    User,
)
from tokensmith.storage.sql.batch import BatchWrite, GroupCommit, in_transaction
from tokensmith.storage.sql.panel import PanelSqlMixin
from tokensmith.storage.sql.rotation import (
    ReplayRefused,
    Rotation,
    replay,
    rotate,
    rotate_in_one_statement,
)
from tokensmith.storage.sql.sqlite_writer import SqliteWriter, sqlite_writer
from tokensmith.storage.sql.tables import (
    access_tokens,
    api_keys,
    authorization_codes,
    client_secrets,
    clients,
    consents,
    merchants,
    refresh_tokens,
    row_of,
    sessions,
    signing_keys,
    token_families,
    users,
)

__all__ = ["SqlStore"]

T = TypeVar("T")
R = TypeVar("R")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def _client_row(c: Client) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "merchant_id": c.merchant_id,
        "scopes": " ".join(c.scopes),
        "default_scopes": None if c.default_scopes is None else " ".join(c.default_scopes),
        "grant_types": " ".join(c.grant_types),
        "token_format": c.token_format,
        "access_token_ttl": c.access_token_ttl,
        "redirect_uris": json.dumps(list(c.redirect_uris)),
        "form_uri": c.form_uri,
        "auth_methods": " ".join(c.auth_methods),
        "created_at": c.created_at,
        "revoked_at": c.revoked_at,
        "require_dpop": c.require_dpop,
    }


def _client(row: Row[Any], secrets: tuple[ClientSecret, ...]) -> Client:
    m = row._mapping
    return Client(
        client_id=m["client_id"],
        name=m["name"],
        merchant_id=m["merchant_id"],
        scopes=_split(m["scopes"]),
        default_scopes=None if m["default_scopes"] is None else _split(m["default_scopes"]),
        grant_types=_split(m["grant_types"]),
        token_format=m["token_format"],
        access_token_ttl=m["access_token_ttl"],
        redirect_uris=tuple(json.loads(m["redirect_uris"] or "[]")),
        form_uri=m["form_uri"],
        auth_methods=_split(m["auth_methods"]),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        secrets=secrets,
        require_dpop=bool(m["require_dpop"]),
    )


def _secret(row: Row[Any]) -> ClientSecret:
    m = row._mapping
    return ClientSecret(m["secret_hash"], m["created_at"], m["expires_at"])


def _token(row: Row[Any]) -> AccessTokenRecord:
    return AccessTokenRecord(**row._mapping)


class _Abort(Exception):
    """Rolls back a transaction whose conditional UPDATE matched no row."""


def _one(result: Any) -> None:
    """A conditional UPDATE must have matched exactly one row, else the transaction aborts."""
    if result.rowcount != 1:
        raise _Abort


class SqlStore(PanelSqlMixin):
    """Every storage protocol over one :class:`AsyncEngine`.

    PostgreSQL rotates refresh tokens in one statement
    (:func:`~tokensmith.storage.sql.rotation.rotate_in_one_statement`);
    ``portable_rotation`` makes it use the statements every database runs
    (:func:`~tokensmith.storage.sql.rotation.rotate`) instead, so that the storage contract
    holds both forms of the rule to the same outcomes."""

    def __init__(self, engine: AsyncEngine, *, portable_rotation: bool = False) -> None:
        self.engine = engine
        self.portable_rotation = portable_rotation
        #: Reads run without a transaction: no BEGIN and no ROLLBACK round trips.
        self._read = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._revocations = 0
        #: SQLite has one writer; on PostgreSQL two transactions in flight keep the
        #: connection busy while the next batch gathers (more measured no faster).
        lanes = 1 if engine.dialect.name == "sqlite" else 2
        #: A SQLite file's writes run whole on a thread of their own, one worker at a time.
        self._writer = writer = sqlite_writer(engine)
        token_writes = _on_engine(engine, _insert_access_tokens)
        rotations = _on_engine(engine, rotate)
        if writer is not None:
            token_writes = _thread_token_writes(writer)
            rotations = _on_writer(writer, rotate)
        elif engine.dialect.name != "sqlite" and not portable_rotation:
            # PostgreSQL rotates a batch in one statement, its own transaction (autocommit).
            rotations = in_transaction(self._read.connect, rotate_in_one_statement)
        self._token_writes: GroupCommit[AccessTokenRecord, None] = GroupCommit(
            token_writes, lanes=lanes
        )
        self._rotations: GroupCommit[Rotation, bool] = GroupCommit(rotations, lanes=lanes)
        self._grant_reads: GroupCommit[str, RefreshGrant | None] = GroupCommit(
            in_transaction(self._read.connect, _find_grants), lanes=4
        )

    @property
    def revocation_generation(self) -> int:
        return self._revocations

    async def revoked_since(self, since: float, now: float) -> list[tuple[str, float, float]]:
        t = access_tokens.c
        query = select(t.jti, t.revoked_at, t.expires_at).where(
            t.revoked_at.is_not(None), t.expires_at > now
        )
        if since != float("-inf"):
            query = query.where(t.revoked_at >= since)
        async with self._read.connect() as conn:
            return [(r.jti, r.revoked_at, r.expires_at) for r in await conn.execute(query)]

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self._read.connect() as conn:
            await conn.execute(select(1))

    # -- clients -------------------------------------------------------------------------
    async def get_client(self, client_id: str) -> Client | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(select(clients).where(clients.c.client_id == client_id))
            ).first()
            if row is None:
                return None
            secrets = await conn.execute(
                select(client_secrets)
                .where(client_secrets.c.client_id == client_id)
                .order_by(client_secrets.c.id)
            )
            return _client(row, tuple(_secret(s) for s in secrets))

    async def add_client(self, client: Client) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(clients).values(**_client_row(client)))
            for s in client.secrets:
                await conn.execute(
                    insert(client_secrets).values(
                        client_id=client.client_id,
                        secret_hash=s.secret_hash,
                        created_at=s.created_at,
                        expires_at=s.expires_at,
                    )
                )

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        query = select(clients).order_by(clients.c.created_at, clients.c.client_id)
        if merchant_id is not None:
            query = query.where(clients.c.merchant_id == merchant_id)
        async with self._read.connect() as conn:
            rows = (await conn.execute(query)).all()
            secrets: dict[str, list[ClientSecret]] = {}
            for s in await conn.execute(select(client_secrets).order_by(client_secrets.c.id)):
                secrets.setdefault(s.client_id, []).append(_secret(s))
        return [_client(r, tuple(secrets.get(r.client_id, ()))) for r in rows]

    async def update_client(self, client: Client) -> None:
        values = _client_row(client)
        del values["client_id"], values["created_at"]
        async with self.engine.begin() as conn:
            await conn.execute(
                update(clients).where(clients.c.client_id == client.client_id).values(**values)
            )

    async def revoke_client(self, client_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id, clients.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return result.rowcount > 0

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(clients.c.client_id).where(clients.c.client_id == client_id)
                )
            ).first()
            if exists is None:
                return False
            await conn.execute(
                delete(client_secrets).where(
                    client_secrets.c.client_id == client_id,
                    client_secrets.c.expires_at <= new.created_at,
                )
            )
            await conn.execute(
                update(client_secrets)
                .where(
                    client_secrets.c.client_id == client_id,
                    or_(
                        client_secrets.c.expires_at.is_(None),
                        client_secrets.c.expires_at > old_expires_at,
                    ),
                )
                .values(expires_at=old_expires_at)
            )
            await conn.execute(
                insert(client_secrets).values(
                    client_id=client_id,
                    secret_hash=new.secret_hash,
                    created_at=new.created_at,
                    expires_at=new.expires_at,
                )
            )
            return True

    # -- access tokens -------------------------------------------------------------------
    async def add_access_token(self, record: AccessTokenRecord) -> None:
        """Stored by group commit (:mod:`tokensmith.storage.sql.batch`): returns once the
        row is committed."""
        await self._token_writes.submit(record)

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(
                    select(access_tokens).where(access_tokens.c.token_hash == token_hash)
                )
            ).first()
        return None if row is None else _token(row)

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(select(access_tokens).where(access_tokens.c.jti == jti))
            ).first()
        return None if row is None else _token(row)

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        try:
            await self._revoke_access_token(record, at)
        finally:
            self._revocations += 1

    async def _revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(access_tokens)
                .where(access_tokens.c.jti == record.jti, access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                values = _token_values(record) | {"revoked_at": at}
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(access_tokens).values(**values))
                except IntegrityError:
                    pass  # revoked concurrently: the outcome is the same

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        async with self.engine.begin() as conn:
            ids = (
                select(access_tokens.c.jti).where(access_tokens.c.expires_at < before).limit(batch)
            )
            result = await conn.execute(
                delete(access_tokens).where(access_tokens.c.jti.in_(ids.scalar_subquery()))
            )
            return int(result.rowcount)

    # -- signing keys --------------------------------------------------------------------
    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        async with self._read.connect() as conn:
            rows = await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))
            return [SigningKeyRecord(**r._mapping) for r in rows]

    async def add_first_signing_key(self, key: SigningKeyRecord) -> bool:
        """One statement, ``INSERT ... WHERE NOT EXISTS``, serialized by a transaction-level
        advisory lock on PostgreSQL and by the database write lock on SQLite."""
        values = {c.name: getattr(key, c.name) for c in signing_keys.columns}
        source = select(*(literal(v, c.type).label(c.name) for c, v in _pairs(values))).where(
            ~exists().where(signing_keys.c.retired_at.is_(None))
        )
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEY_LOCK})
            result = await conn.execute(insert(signing_keys).from_select(list(values), source))
            return bool(result.rowcount)

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        async with self.engine.begin() as conn:
            if retire_others_at is not None:
                await conn.execute(
                    update(signing_keys)
                    .where(
                        or_(
                            signing_keys.c.retired_at.is_(None),
                            signing_keys.c.retired_at > retire_others_at,
                        )
                    )
                    .values(retired_at=retire_others_at)
                )
            await conn.execute(
                insert(signing_keys).values(
                    kid=key.kid,
                    alg=key.alg,
                    private_key_encrypted=key.private_key_encrypted,
                    public_jwk=key.public_jwk,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                    publish_until=key.publish_until,
                )
            )

    async def set_publish_until(self, kid: str, until: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(signing_keys).where(signing_keys.c.kid == kid).values(publish_until=until)
            )

    # -- API keys (tbc dialect) ----------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    key_id=key.key_id,
                    name=key.name,
                    key_hash=key.key_hash,
                    merchant_id=key.merchant_id,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).first()
        return None if row is None else ApiKey(**row._mapping)

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if merchant_id is not None:
            query = query.where(api_keys.c.merchant_id == merchant_id)
        async with self._read.connect() as conn:
            return [ApiKey(**r._mapping) for r in await conn.execute(query)]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(and_(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)))
                .values(revoked_at=at)
            )
            return result.rowcount > 0

    # -- merchants -----------------------------------------------------------------------
    async def add_merchant(self, merchant: Merchant) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(merchants).values(
                    merchant_id=merchant.merchant_id,
                    name=merchant.name,
                    created_at=merchant.created_at,
                    disabled_at=merchant.disabled_at,
                )
            )

    async def get_merchant(self, merchant_id: str) -> Merchant | None:
        return await self._merchant(merchants.c.merchant_id == merchant_id)

    async def find_merchant_by_name(self, name: str) -> Merchant | None:
        return await self._merchant(merchants.c.name == name)

    async def _merchant(self, where: Any) -> Merchant | None:
        async with self._read.connect() as conn:
            row = (await conn.execute(select(merchants).where(where))).first()
        return None if row is None else Merchant(**row._mapping)

    async def list_merchants(self) -> list[Merchant]:
        async with self._read.connect() as conn:
            rows = await conn.execute(select(merchants).order_by(merchants.c.created_at))
            return [Merchant(**r._mapping) for r in rows]

    async def disable_merchant(self, merchant_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(merchants)
                .where(merchants.c.merchant_id == merchant_id, merchants.c.disabled_at.is_(None))
                .values(disabled_at=at)
            )
            return result.rowcount > 0

    # -- users -----------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(users).values(**row_of(user)))
        except IntegrityError as exc:
            raise KeyError(user.email) from exc

    async def get_user(self, user_id: str) -> User | None:
        return await self._user(users.c.user_id == user_id)

    async def find_user_by_email(self, email: str) -> User | None:
        return await self._user(users.c.email == email)

    async def _user(self, where: Any) -> User | None:
        async with self._read.connect() as conn:
            row = (await conn.execute(select(users).where(where))).first()
        return None if row is None else User(**row._mapping)

    async def list_users(self, merchant_id: str | None = None) -> list[User]:
        query = select(users).order_by(users.c.created_at, users.c.email)
        if merchant_id is not None:
            query = query.where(users.c.merchant_id == merchant_id)
        async with self._read.connect() as conn:
            return [User(**r._mapping) for r in await conn.execute(query)]

    async def disable_user(self, user_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.user_id == user_id, users.c.disabled_at.is_(None))
                .values(disabled_at=at)
            )
            return result.rowcount > 0

    async def update_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.user_id == user_id, users.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )
            return result.rowcount > 0

    # -- authorization codes ---------------------------------------------------------------
    async def add_code(self, code: AuthorizationCode) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(authorization_codes).values(**row_of(code)))

    async def find_code(self, code_hash: str) -> AuthorizationCode | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(
                    select(authorization_codes).where(authorization_codes.c.code_hash == code_hash)
                )
            ).first()
        return None if row is None else AuthorizationCode(**row._mapping)

    async def redeem_code(
        self,
        code_hash: str,
        at: float,
        family: TokenFamily,
        first: RefreshTokenRecord | None,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        codes = authorization_codes.c
        try:
            async with self.engine.begin() as conn:
                _one(
                    await conn.execute(
                        update(authorization_codes)
                        .where(codes.code_hash == code_hash, codes.used_at.is_(None))
                        .values(used_at=at)
                    )
                )
                await conn.execute(insert(token_families).values(**row_of(family)))
                if first is not None:
                    await conn.execute(insert(refresh_tokens).values(**row_of(first)))
                if access is not None:
                    await conn.execute(insert(access_tokens).values(**_token_values(access)))
        except _Abort:
            return False
        return True

    async def purge_codes(self, before: float, batch: int) -> int:
        codes = authorization_codes.c
        async with self.engine.begin() as conn:
            ids = select(codes.code_hash).where(codes.expires_at < before).limit(batch)
            result = await conn.execute(
                delete(authorization_codes).where(codes.code_hash.in_(ids.scalar_subquery()))
            )
            return int(result.rowcount)

    # -- refresh tokens --------------------------------------------------------------------
    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
                )
            ).first()
        return None if row is None else RefreshTokenRecord(**row._mapping)

    async def find_refresh_grant(self, token_hash: str) -> RefreshGrant | None:
        """Concurrent lookups share one query (:class:`GroupCommit` on the AUTOCOMMIT
        engine)."""
        return await self._grant_reads.submit(token_hash)

    async def get_family(self, family_id: str) -> TokenFamily | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(
                    select(token_families).where(token_families.c.family_id == family_id)
                )
            ).first()
        return None if row is None else TokenFamily(**row._mapping)

    async def rotate_refresh_token(
        self,
        old_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """Committed by group commit with the other rotations in flight
        (:mod:`tokensmith.storage.sql.rotation`)."""
        return await self._rotations.submit(Rotation(old_hash, new, at, access))

    async def replay_refresh_token(
        self,
        old_hash: str,
        successor_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """:func:`~tokensmith.storage.sql.rotation.replay` on the SQLite writer's thread, or
        in a transaction of the engine."""
        r = Rotation(old_hash, new, at, access)
        try:
            if self._writer is not None:
                won = await self._writer.run(lambda conn: replay(conn, r, successor_hash))
            else:
                async with self.engine.begin() as conn:
                    won = await conn.run_sync(replay, r, successor_hash)
        except ReplayRefused:
            return False
        if won:
            self._revocations += 1  # the successor's access token
        return won

    async def revoke_family(self, family_id: str, at: float) -> bool:
        try:
            return await self._revoke_family(family_id, at)
        finally:
            self._revocations += 1

    async def _revoke_family(self, family_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(token_families)
                .where(
                    token_families.c.family_id == family_id,
                    token_families.c.revoked_at.is_(None),
                )
                .values(revoked_at=at)
            )
            await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.family_id == family_id,
                    refresh_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=at)
            )
            await conn.execute(
                update(access_tokens)
                .where(access_tokens.c.family_id == family_id, access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return result.rowcount > 0

    async def revoke_families(self, user_id: str, client_id: str, at: float) -> int:
        fam = token_families.c
        async with self._read.connect() as conn:
            ids = (
                await conn.execute(
                    select(fam.family_id).where(fam.user_id == user_id, fam.client_id == client_id)
                )
            ).scalars()
            family_ids = list(ids)
        return sum([await self.revoke_family(fid, at) for fid in family_ids])

    async def purge_families(self, before: float, batch: int) -> int:
        fam = token_families.c
        async with self.engine.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(fam.family_id)
                        .where(or_(fam.expires_at < before, fam.absolute_expires_at < before))
                        .limit(batch)
                    )
                ).scalars()
            )
            if not ids:
                return 0
            result = await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.family_id.in_(ids))
            )
            await conn.execute(delete(token_families).where(fam.family_id.in_(ids)))
            return int(result.rowcount)

    # -- consents --------------------------------------------------------------------------
    async def get_consent(self, user_id: str, client_id: str) -> Consent | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(
                    select(consents).where(
                        consents.c.user_id == user_id, consents.c.client_id == client_id
                    )
                )
            ).first()
        return None if row is None else Consent(**row._mapping)

    async def save_consent(self, consent: Consent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(consents).where(
                    consents.c.user_id == consent.user_id,
                    consents.c.client_id == consent.client_id,
                )
            )
            await conn.execute(insert(consents).values(**row_of(consent)))

    async def delete_consent(self, user_id: str, client_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(consents).where(
                    consents.c.user_id == user_id, consents.c.client_id == client_id
                )
            )
            return result.rowcount > 0

    async def list_consents(self, user_id: str) -> list[Consent]:
        query = (
            select(consents)
            .where(consents.c.user_id == user_id)
            .order_by(consents.c.granted_at, consents.c.client_id)
        )
        async with self._read.connect() as conn:
            return [Consent(**r._mapping) for r in await conn.execute(query)]

    # -- sessions --------------------------------------------------------------------------
    async def add_session(self, session: Session) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(sessions).values(**row_of(session)))

    async def get_session(self, session_hash: str) -> Session | None:
        async with self._read.connect() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.session_hash == session_hash))
            ).first()
        return None if row is None else Session(**row._mapping)

    async def touch_session(self, session_hash: str, at: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.session_hash == session_hash)
                .values(last_seen_at=at)
            )

    async def delete_session(self, session_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.session_hash == session_hash))

    async def delete_user_sessions(self, user_id: str) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            return int(result.rowcount)

    async def purge_sessions(self, idle_before: float, now: float, batch: int) -> int:
        s = sessions.c
        async with self.engine.begin() as conn:
            ids = (
                select(s.session_hash)
                .where(or_(s.last_seen_at < idle_before, s.expires_at < now))
                .limit(batch)
            )
            result = await conn.execute(
                delete(sessions).where(s.session_hash.in_(ids.scalar_subquery()))
            )
            return int(result.rowcount)


_KEY_LOCK = 0x6B657973  # "keys"


def _pairs(values: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(signing_keys.c[name], value) for name, value in values.items()]


def _insert_access_tokens(conn: Connection, records: Sequence[AccessTokenRecord]) -> list[None]:
    conn.execute(insert(access_tokens), [_token_values(r) for r in records])
    return [None] * len(records)


def _thread_token_writes(writer: SqliteWriter) -> BatchWrite[AccessTokenRecord, None]:
    async def write(records: Sequence[AccessTokenRecord]) -> list[None]:
        await writer.insert_many(access_tokens, [_token_values(r) for r in records])
        return [None] * len(records)

    return write


#: A batch of writes on an open synchronous connection; one result per write.
SyncBatch = Callable[[Connection, Sequence[T]], Sequence[R]]


def _on_writer(writer: SqliteWriter, fn: SyncBatch[T, R]) -> BatchWrite[T, R]:
    """Batches of ``fn``, each a transaction run whole on the SQLite writer's thread."""

    async def write(items: Sequence[T]) -> Sequence[R]:
        return await writer.run(lambda conn: fn(conn, items))

    return write


def _on_engine(engine: AsyncEngine, fn: SyncBatch[T, R]) -> BatchWrite[T, R]:
    """Batches of ``fn``, each a transaction of the async engine (``run_sync``)."""

    async def on_connection(conn: AsyncConnection, items: Sequence[T]) -> Sequence[R]:
        return await conn.run_sync(fn, items)

    return in_transaction(engine.begin, on_connection)


_GRANT_QUERY = (
    select(refresh_tokens, token_families, merchants)
    .select_from(
        refresh_tokens.outerjoin(
            token_families, token_families.c.family_id == refresh_tokens.c.family_id
        ).outerjoin(merchants, merchants.c.merchant_id == token_families.c.merchant_id)
    )
    .where(refresh_tokens.c.token_hash.in_(bindparam("hashes", expanding=True)))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)


async def _find_grants(conn: AsyncConnection, hashes: Sequence[str]) -> list[RefreshGrant | None]:
    rows = await conn.execute(_GRANT_QUERY, {"hashes": sorted(set(hashes))})
    found = {g.token.token_hash: g for g in (_refresh_grant(r._mapping) for r in rows)}
    return [found.get(h) for h in hashes]


def _columns(m: Any, table: Any) -> dict[str, Any]:
    return {name: m[key] for name, key in _LABELS[table.name]}


_LABELS = {
    t.name: [(c.name, f"{t.name}_{c.name}") for c in t.columns]
    for t in (refresh_tokens, token_families, merchants)
}


def _refresh_grant(m: Any) -> RefreshGrant:
    family = _columns(m, token_families)
    merchant = _columns(m, merchants)
    return RefreshGrant(
        RefreshTokenRecord(**_columns(m, refresh_tokens)),
        None if family["family_id"] is None else TokenFamily(**family),
        None if merchant["merchant_id"] is None else Merchant(**merchant),
    )


def _token_values(r: AccessTokenRecord) -> dict[str, Any]:
    return {
        "jti": r.jti,
        "token_hash": r.token_hash,
        "client_id": r.client_id,
        "subject": r.subject,
        "scope": r.scope,
        "family_id": r.family_id,
        "issued_at": r.issued_at,
        "expires_at": r.expires_at,
        "revoked_at": r.revoked_at,
        "issuer_tag": r.issuer_tag,
        "jkt": r.jkt,
    }
