"""The set of signing keys every instance shares, reloaded from storage on an interval."""

from __future__ import annotations

import asyncio
from typing import Literal

from tokensmith.core.audit import SYSTEM, Audit, By
from tokensmith.core.clock import Clock
from tokensmith.core.jwt_codec import JwtCodec
from tokensmith.core.keys import KeySealer, generate_signing_key, load_key
from tokensmith.core.models import SigningKeyRecord
from tokensmith.core.ports import KeyStore
from tokensmith.core.randomness import Randomness

__all__ = ["KeyRing", "KeyStatus", "key_status", "signing_key"]


class KeyRing:
    """Holds the current :class:`JwtCodec`; sees keys rotated by other instances within
    ``reload_interval`` seconds."""

    def __init__(
        self,
        keys: KeyStore,
        sealer: KeySealer,
        clock: Clock,
        rand: Randomness,
        issuer: str,
        reload_interval: float = 5.0,
        audit: Audit | None = None,
    ) -> None:
        self._keys = keys
        self._sealer = sealer
        self._clock = clock
        self._rand = rand
        self._issuer = issuer
        self._interval = reload_interval
        self._audit = audit or Audit.null(clock, rand)
        self._codec: JwtCodec | None = None
        self._loaded_at = float("-inf")
        self._fingerprint: tuple[str, ...] = ()
        self._reloading: asyncio.Future[None] | None = None

    async def codec(self) -> JwtCodec:
        """The codec. Once older than the interval it is reloaded in the background while
        requests go on with the current one, so no request waits for the database."""
        if self._codec is None:
            await self.reload()
        elif self._clock.now() - self._loaded_at >= self._interval and self._reloading is None:
            self._reloading = asyncio.ensure_future(self.reload())
            self._reloading.add_done_callback(self._reloaded)
        assert self._codec is not None
        return self._codec

    async def aclose(self) -> None:
        """Wait for a background reload still reading the keys (at shutdown, before the
        store closes)."""
        if self._reloading is not None:
            await asyncio.gather(self._reloading, return_exceptions=True)

    def _reloaded(self, task: asyncio.Future[None]) -> None:
        self._reloading = None
        if not task.cancelled() and task.exception() is not None:
            self._loaded_at = self._clock.now()  # retry after another interval

    async def reload(self) -> None:
        """Read the keys; build a new codec only when they changed (it caches verifications)."""
        now = self._clock.now()
        records = await self._keys.list_signing_keys()
        signing = signing_key(records, now)
        if signing is None:
            raise LookupError("no signing key: run the server once or `tokensmith keys rotate`")
        live = [
            r
            for r in records
            if r.kid != signing.kid and (r.publish_until is None or r.publish_until > now)
        ]
        fingerprint = (signing.kid, *sorted(r.kid for r in live))
        if self._codec is None or fingerprint != self._fingerprint:
            published = [load_key(r, self._sealer) for r in live]
            self._codec = JwtCodec(load_key(signing, self._sealer), published, self._issuer)
            self._fingerprint = fingerprint
        self._loaded_at = now

    async def ensure(self, alg: str) -> None:
        """Create the first key if there is none that signs. Instances starting together on
        an empty database agree on one key: the store inserts only the first."""
        if signing_key(await self._keys.list_signing_keys(), self._clock.now()) is None:
            record = generate_signing_key(alg, self._sealer, self._rand, self._clock.now())
            await self._keys.add_first_signing_key(record)
        await self.reload()

    async def records(self) -> list[tuple[SigningKeyRecord, KeyStatus]]:
        """Every key with its status (:func:`key_status`), oldest first."""
        now = self._clock.now()
        records = sorted(await self._keys.list_signing_keys(), key=lambda r: r.created_at)
        current = signing_key(records, now)
        kid = None if current is None else current.kid
        return [(r, key_status(r, kid, now)) for r in records]

    async def retire(self, kid: str) -> SigningKeyRecord | None:
        """Stop publishing a key that signs no more (RFC 7517 §5: verifiers drop it from
        their key set; the tokens it signed stop verifying). ``None`` if there is no such
        key; ``ValueError`` for the key that signs or the next one."""
        for record, status in await self.records():
            if record.kid != kid:
                continue
            if status in ("signing", "next"):
                raise ValueError(f"key {kid} is {status}: rotate first, then retire it")
            if status == "published":
                await self._keys.set_publish_until(kid, self._clock.now())
                await self.reload()
            return record
        return None

    async def rotate(
        self, alg: str, publish_old_for: int, activate_after: float = 0.0, *, by: By = SYSTEM
    ) -> SigningKeyRecord:
        """A new key, published at once, that signs ``activate_after`` seconds from now;
        the current key signs until then.  Verifiers cache the key set (the JWKS answer
        allows 300 s), so a key published that long before it signs is known to all of
        them by its first token (RFC 7517 §5, RFC 8414 §2 ``jwks_uri``).  The keys it
        replaces stay published ``publish_old_for`` seconds after it takes over, as long
        as the tokens they signed can live."""
        now = self._clock.now()
        takes_over = now + activate_after
        record = generate_signing_key(alg, self._sealer, self._rand, now)
        await self._keys.add_signing_key(record, retire_others_at=takes_over)
        retired = []
        for old in await self._keys.list_signing_keys():
            if old.kid != record.kid and (old.publish_until is None or old.publish_until > now):
                await self._keys.set_publish_until(old.kid, takes_over + publish_old_for)
                retired.append(old.kid)
        await self.reload()
        await self._audit.by(
            by,
            "key.rotated",
            subject=record.kid,
            alg=alg,
            signs_from=takes_over,
            retires=" ".join(retired),
        )
        return record


def signing_key(records: list[SigningKeyRecord], now: float) -> SigningKeyRecord | None:
    """Of the keys not retired at ``now``, the one that retires first: a key signs until
    its retirement, when the next key, published meanwhile, takes over."""
    live = [r for r in records if r.retired_at is None or r.retired_at > now]
    return min(live, key=_retires, default=None)


def _retires(record: SigningKeyRecord) -> tuple[float, float]:
    retired = float("inf") if record.retired_at is None else record.retired_at
    return (retired, record.created_at)


KeyStatus = Literal["signing", "next", "published", "expired"]


def key_status(record: SigningKeyRecord, signing: str | None, now: float) -> KeyStatus:
    """``signing``; ``next``: published, signs when the signing key retires;
    ``published``: signs no more, verifies the tokens it signed; ``expired``."""
    if record.kid == signing:
        return "signing"
    if record.retired_at is None or record.retired_at > now:
        return "next"
    if record.publish_until is None or record.publish_until > now:
        return "published"
    return "expired"
