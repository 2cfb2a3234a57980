"""Client authentication (RFC 6749 §2.3; ``private_key_jwt``, RFC 7523 §2.2) with
throttling of failures."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from tokensmith.core.client_assertion import AssertionRefused, AssertionVerifier
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.errors import InvalidClient, OAuthError, RateLimited
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.limits import FailureLimiter, Keys, Limit
from tokensmith.core.models import Client
from tokensmith.core.mtls import MTLS_METHODS, certificate_refusal
from tokensmith.core.ports import ClientStore
from tokensmith.core.profile import FAPI2, ProfilePolicy, check_auth_method
from tokensmith.core.requests import ClientCredentials

__all__ = ["ClientAuthenticator", "FailureLimits"]

#: The methods that authenticate with a JWT assertion (RFC 7523 §2.2).
_ASSERTION_METHODS = frozenset({"private_key_jwt", "client_secret_jwt"})
#: Counter keys of this many existing clients are kept ready; beyond, they start over.
MAX_REMEMBERED_IDS = 10_000


@dataclass(frozen=True, slots=True)
class FailureLimits:
    """``per_client`` counts the failures of one client_id from one source address,
    ``per_address`` those of one address, whatever client_id it names."""

    per_client: Limit = field(default_factory=lambda: Limit(failures=10, window=60))
    per_address: Limit = field(default_factory=lambda: Limit(failures=30, window=60))


class ClientAuthenticator:
    """Verifies client credentials (RFC 6749 §2.3.1); limits failures (§10.10).

    Failures count per (client_id, source address) and per source address, never per
    client_id alone: whoever knows a client_id could otherwise lock that client out by
    sending wrong secrets. Generated secrets carry 256 random bits
    (:mod:`tokensmith.core.credentials`), so the guesses an attacker gets from many
    addresses change nothing; the limits keep one address from flooding the endpoint.

    A secret costs one SHA-256 to compare, so it is compared first and the limits decide
    the answer: a failure counted over the limit answers 429, not 401, and a right secret
    answers 429 if its counts reached a limit meanwhile (:mod:`tokensmith.core.limits`).
    Parallel attempts thus learn no more than the same attempts one by one, and parallel
    requests of a legitimate client never wait on each other.
    """

    def __init__(
        self,
        clients: ClientStore,
        clock: Clock,
        limiter: FailureLimiter,
        limits: FailureLimits,
        fingerprints: Fingerprints | None = None,
        assertions: AssertionVerifier | None = None,
        profiles: ProfilePolicy | None = None,
    ) -> None:
        self._clients = clients
        #: Which clients follow FAPI 2.0, whose authentication methods are restricted.
        self.profiles = profiles or ProfilePolicy()
        #: Verifies ``private_key_jwt`` assertions; ``None`` refuses them.
        self.assertions = assertions
        self._clock = clock
        self._limiter = limiter
        self._limits = limits
        self._fingerprints = fingerprints or Fingerprints.ephemeral()
        #: client_id -> its counter key, for clients that exist: the token path then hashes
        #: nothing more (a keyed hash costs as much as the rest of the authentication).
        self._id_keys: dict[str, str] = {}

    async def authenticate(self, creds: ClientCredentials | None, source: str) -> Client:
        """Return the authenticated client or raise ``InvalidClient`` / ``RateLimited``.

        A refusal names the client in ``client_id`` once it was found to exist."""
        basic = creds is not None and creds.method == "client_secret_basic"
        if creds is None or not creds.client_id:
            raise InvalidClient("client authentication is required", reason="no_credentials")
        keys = self._keys(creds.client_id, source)
        wait = await self._limiter.check(keys)  # throttled: refused before any lookup
        if wait is not None:
            raise RateLimited(wait)
        client = await self._clients.get_client(creds.client_id)
        described = "client authentication failed"
        if creds.method == "private_key_jwt":
            reason, described = await self._assertion_failure(client, creds)
        elif creds.method == "none" and client is not None and _uses_mtls(client):
            registered = self.assertions.keys if self.assertions is not None else None
            reason, described = await certificate_refusal(registered, client, creds.certificate)
        else:
            reason = self._failure(client, creds)
        found = client.client_id if client is not None else None
        if found is not None and found not in self._id_keys:
            self._remember(found)
        if reason is None:
            wait = await self._limiter.check(keys)
        else:
            wait = await self._limiter.fail(keys)
        if wait is not None:
            raise _about(RateLimited(wait), found)
        if reason is not None:
            failed = InvalidClient(described, reason=reason, basic=basic)
            raise _about(failed, found)
        assert client is not None
        if (client.profile or self.profiles.default) == FAPI2:
            _about_fapi2(client, creds.method)
        return client

    def _keys(self, client_id: str, source: str) -> Keys:
        """The client_id is hashed: the counters may live in Redis, and a client_id that is
        no client's may be a secret sent in the wrong field."""
        id_key = self._id_keys.get(client_id) or self._fingerprints.key(client_id)
        return (
            (f"client:{id_key}@{source}", self._limits.per_client),
            (f"addr:{source}", self._limits.per_address),
        )

    def _remember(self, client_id: str) -> None:
        if len(self._id_keys) >= MAX_REMEMBERED_IDS:
            self._id_keys.clear()
        self._id_keys[client_id] = self._fingerprints.key(client_id)

    async def _assertion_failure(
        self, client: Client | None, creds: ClientCredentials
    ) -> tuple[str | None, str]:
        return await _refusal(self.assertions, client, creds)

    def _failure(self, client: Client | None, creds: ClientCredentials) -> str | None:
        """Why authentication fails, or ``None``. Every branch hashes, to keep timing flat."""
        presented = hash_secret(creds.client_secret or "")
        if client is None:
            return "unknown_client"
        if not client.active:
            return "revoked_client"
        if creds.method not in client.auth_methods:
            return "auth_method_not_allowed"
        if client.public:
            return None
        now = self._clock.now()
        matched = False
        for secret in client.secrets:
            ok = hmac.compare_digest(presented, secret.secret_hash) and secret.valid_at(now)
            matched = matched or ok
        return None if matched else "bad_secret"


async def _refusal(
    verifier: AssertionVerifier | None, client: Client | None, creds: ClientCredentials
) -> tuple[str | None, str]:
    """Why a ``private_key_jwt`` assertion fails (RFC 7523 §3), and the description to
    answer: the check that failed, once the client is known to exist and may use it."""
    generic = "client authentication failed"
    if client is None:
        return "unknown_client", generic
    if not client.active:
        return "revoked_client", generic
    if not _ASSERTION_METHODS.intersection(client.auth_methods):
        return "auth_method_not_allowed", generic
    if verifier is None or creds.assertion is None:
        return "assertions_disabled", "client assertions are not accepted here"
    try:
        await verifier.verify(client, creds.assertion, creds.endpoint)
    except AssertionRefused as exc:
        return exc.reason, exc.description
    return None, generic


def _about_fapi2(client: Client, method: str) -> None:
    """FAPI 2.0 §5.3.2.1: the method must be one the profile allows, even when the
    credentials were right (the description then says which to use)."""
    try:
        check_auth_method(client, method)
    except OAuthError as exc:
        raise _about(exc, client.client_id) from None


def _uses_mtls(client: Client) -> bool:
    """RFC 8705 §2: the client authenticates with a TLS client certificate."""
    return any(m in MTLS_METHODS for m in client.auth_methods)


def _about(exc: OAuthError, client_id: str | None) -> OAuthError:
    exc.client_id = client_id
    return exc
