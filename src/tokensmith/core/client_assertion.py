"""``private_key_jwt`` client authentication: JWT assertions (RFC 7523 §2.2, §3; OIDC
Core §9).

A client registered with public keys (``jwks`` or ``jwks_uri``, RFC 7591 §2) authenticates
by sending ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
and a JWT it signed with its private key in ``client_assertion``. :class:`AssertionVerifier`
checks the assertion as RFC 7523 §3 lists: ``iss`` and ``sub`` are the client_id, ``aud``
names this server (its issuer, its token endpoint or the endpoint that received the
request), ``exp`` is set, not past, and close (the lifetime is bounded), ``nbf`` and ``iat``
are not ahead of the clock, and the ``jti`` is used once: it is remembered until ``exp`` in
the shared :class:`~tokensmith.core.ports.ReplayCache`, so no instance accepts it again.

Only asymmetric algorithms verify a ``private_key_jwt`` client's assertion (FAPI 2.0
§5.4.1: PS256, ES256, EdDSA by default), never ``none`` or an HMAC. A ``client_secret_jwt``
client (RFC 7523 §2.2, OIDC Core §9) signs with an HMAC keyed by its secret, which the
server keeps sealed (encrypted with its own secret key) besides the hash for that alone:
its assertions verify with HS256/384/512 (when ``hmac_algorithms`` enables them) and
nothing else, and every other check is the same.

Keys from a ``jwks_uri`` are fetched through the :class:`~tokensmith.core.ports.JwksFetcher`
port (the web layer's does HTTP) and kept ``cache_ttl`` seconds; an assertion naming a
``kid`` the cached set lacks makes one early refetch (at most one per ``refetch_interval``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tokensmith.core.addresses import host_refusal
from tokensmith.core.clock import Clock
from tokensmith.core.dpop import MIN_RSA_BITS, SUPPORTED_ALGORITHMS
from tokensmith.core.jws import JwsKeys
from tokensmith.core.models import Client
from tokensmith.core.ports import JwksFetcher, JwksUnavailable, ReplayCache
from tokensmith.core.uris import split_uri

__all__ = [
    "DEFAULT_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "JWT_BEARER",
    "MAX_JWKS_BYTES",
    "SUPPORTED_ALGORITHMS",
    "AssertionPolicy",
    "AssertionRefused",
    "AssertionVerifier",
    "ClientKeys",
    "assertion_client_id",
    "check_jwks_uri",
    "parse_jwks",
]

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT assertion.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: FAPI 2.0 Security Profile §5.4.1: PS256, ES256 and EdDSA.
DEFAULT_ALGORITHMS = ("ES256", "PS256", "EdDSA")
#: A JWK Set larger than this is refused, registered or fetched.
MAX_JWKS_BYTES = 64 * 1024
#: Keys a JWK Set may hold.
MAX_KEYS = 32
#: An assertion longer than this is refused unread.
MAX_ASSERTION_LENGTH = 8192
MAX_JTI_LENGTH = 256
_KTY_OF_ALG = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "EdDSA": "OKP",
}
_ALG_OF_KTY = {"EC": "ES256", "RSA": "PS256", "OKP": "EdDSA"}
#: ``client_secret_jwt``'s algorithms (RFC 7518 §3.2) and their hash.
HMAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_CURVES = {"EC": ("P-256", "P-384", "P-521"), "OKP": ("Ed25519", "Ed448")}
#: Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_KEY_CACHE_SIZE = 1024


class AssertionRefused(ValueError):
    """The assertion fails a check; ``description`` says which (answered as
    ``invalid_client``), ``reason`` labels it for metrics."""

    def __init__(self, description: str, reason: str = "bad_assertion") -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AssertionPolicy:
    """What an assertion must satisfy beyond its signature (RFC 7523 §3)."""

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    #: Seconds an assertion may live: ``exp - iat``, or ``exp - now`` without ``iat``.
    max_lifetime: int = 300
    #: Seconds of clock difference tolerated on ``exp``, ``nbf`` and ``iat``.
    leeway: int = 5
    #: Seconds a fetched JWK Set is kept.
    cache_ttl: int = 300
    #: Seconds between two early refetches of one ``jwks_uri`` (an unknown ``kid``).
    refetch_interval: int = 10
    #: HMAC algorithms of ``client_secret_jwt`` assertions; empty: not accepted.
    hmac_algorithms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in _KTY_OF_ALG]
        if unknown or not self.algorithms:
            raise ValueError(f"assertion algorithms must be among {', '.join(_KTY_OF_ALG)}")
        if any(a not in HMAC_ALGORITHMS for a in self.hmac_algorithms):
            raise ValueError(f"HMAC algorithms must be among {', '.join(HMAC_ALGORITHMS)}")
        if self.max_lifetime < 1 or self.leeway < 0 or self.cache_ttl < 0:
            raise ValueError("max_lifetime must be positive, leeway and cache_ttl not negative")


def _segment(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def assertion_client_id(assertion: str) -> str | None:
    """The client an assertion says it comes from (its ``sub``, RFC 7523 §3 B), read
    without verifying anything: which client's keys to verify it with, when the request
    has no ``client_id``. ``None`` if the assertion is unreadable."""
    if len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
        return None
    try:
        claims = _json_object(_segment(assertion.split(".")[1]))
    except ValueError:
        return None
    sub = claims.get("sub") if claims is not None else None
    return sub if isinstance(sub, str) and sub else None


# -- JWK Sets --------------------------------------------------------------------------------


def _check_key(jwk: Any) -> dict[str, Any]:
    """RFC 7517 §4: a public signing key of a supported type, loadable, RSA ≥ 2048 bits."""
    if not isinstance(jwk, dict):
        raise ValueError("every key of a JWK Set is a JSON object")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise ValueError("a JWK holds private key material: register public keys only")
    kty = jwk.get("kty")
    if kty not in _ALG_OF_KTY:
        raise ValueError(f"key type {kty!r} is not supported (EC, RSA or OKP)")
    if kty in _CURVES and jwk.get("crv") not in _CURVES[kty]:
        raise ValueError(f"curve {jwk.get('crv')!r} is not supported")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("a client's key must be for signatures (use: sig)")
    if "kid" in jwk and not isinstance(jwk["kid"], str):
        raise ValueError("a kid is a string")
    alg = jwk.get("alg", _ALG_OF_KTY[str(kty)])
    if _KTY_OF_ALG.get(alg) != kty:
        raise ValueError(f"alg {alg!r} does not fit key type {kty}")
    try:
        key = jwt.PyJWK(jwk, alg)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise ValueError("a JWK is not a valid key") from None
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA keys have at least {MIN_RSA_BITS} bits")
    return jwk


def parse_jwks(text: str | bytes) -> list[dict[str, Any]]:
    """A JWK Set (RFC 7517 §5) of public signing keys; :class:`ValueError` says what is
    wrong (too large, not a set, a private or unsupported key)."""
    if len(text) > MAX_JWKS_BYTES:
        raise ValueError(f"a JWK Set is at most {MAX_JWKS_BYTES} bytes")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("the JWK Set is not JSON") from None
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError('a JWK Set is a JSON object with a non-empty "keys" array')
    if len(keys) > MAX_KEYS:
        raise ValueError(f"a JWK Set holds at most {MAX_KEYS} keys")
    return [_check_key(k) for k in keys]


def check_jwks_uri(uri: str, *, allow_loopback: bool = False) -> str:
    """A ``jwks_uri`` the server may fetch: absolute https, no credentials, no fragment,
    and a host that is not a literal non-public address nor a metadata name
    (:func:`~tokensmith.core.addresses.host_refusal`). Loopback hosts, over http too (as
    RFC 8252 §8.3 allows redirect URIs), only with ``allow_loopback`` (a server on
    loopback itself). Returns the URI; :class:`ValueError` says what is wrong."""
    parts = split_uri(uri)
    if parts is None or not parts.hostname or parts.fragment:
        raise ValueError(f"jwks_uri {uri!r} is not an absolute URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a jwks_uri carries no credentials")
    scheme = parts.scheme.lower()
    loopback = parts.hostname in _LOOPBACK or parts.hostname.endswith(".localhost")
    if scheme != "https" and not (scheme == "http" and loopback and allow_loopback):
        raise ValueError(f"jwks_uri {uri!r} must use https (http only on loopback)")
    refusal = host_refusal(parts.hostname, allow_loopback=allow_loopback)
    if refusal is not None:
        raise ValueError(f"jwks_uri host {parts.hostname} is not a public address: {refusal}")
    return uri


@dataclass(slots=True)
class _Fetched:
    keys: list[dict[str, Any]]
    fetched_at: float


class ClientKeys:
    """A client's verification keys: its registered ``jwks``, or the set at its
    ``jwks_uri``, fetched and kept ``cache_ttl`` seconds."""

    def __init__(self, fetcher: JwksFetcher | None, clock: Clock, policy: AssertionPolicy) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._policy = policy
        self._inline: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._fetched: OrderedDict[str, _Fetched] = OrderedDict()
        #: uri -> when its last fetch failed, and why
        self._failed: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[_Fetched]] = {}

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()

    def forget(self, uri: str) -> None:
        """Drop the set fetched from ``uri`` and a remembered failure: the next assertion
        fetches it again (the client's keys were changed)."""
        self._fetched.pop(uri, None)
        self._failed.pop(uri, None)

    async def keys(self, client: Client, kid: str | None) -> list[dict[str, Any]]:
        """The keys that may have signed: the one with ``kid`` if named, else every key.
        Raises :class:`AssertionRefused` when there is none."""
        if client.jwks is not None:
            keys = self._registered(client.jwks)
            return _with_kid(keys, kid)
        if client.jwks_uri is None:
            raise AssertionRefused("this client has no registered keys", "no_client_keys")
        entry = await self._entry(client.jwks_uri, force=False)
        found = _with_kid(entry.keys, kid)
        if found or kid is None:
            return found
        if self._clock.now() - entry.fetched_at >= self._policy.refetch_interval:
            entry = await self._entry(client.jwks_uri, force=True)  # the client rotated keys
            found = _with_kid(entry.keys, kid)
        return found

    def _registered(self, text: str) -> list[dict[str, Any]]:
        keys = self._inline.get(text)
        if keys is None:
            try:
                keys = parse_jwks(text)
            except ValueError:
                raise AssertionRefused("the client's registered keys are unusable") from None
            self._inline[text] = keys
            if len(self._inline) > _KEY_CACHE_SIZE:
                self._inline.popitem(last=False)
        return keys

    async def _entry(self, uri: str, *, force: bool) -> _Fetched:
        """The kept set of ``uri``, or a fresh one. Requests that need a fetch while one is
        under way share it, and a failed fetch is not tried again for
        ``refetch_interval`` seconds: no one makes the server fetch a URL in a loop."""
        now = self._clock.now()
        entry = self._fetched.get(uri)
        if entry is not None and not force and now - entry.fetched_at < self._policy.cache_ttl:
            return entry
        failed = self._failed.get(uri)
        if failed is not None and now - failed[0] < self._policy.refetch_interval:
            raise AssertionRefused(failed[1], "jwks_unavailable")
        task = self._inflight.get(uri)
        if task is None:
            task = asyncio.ensure_future(self._fetch(uri))
            self._inflight[uri] = task
            task.add_done_callback(lambda done: self._landed(uri, done))
        return await asyncio.shield(task)

    def _landed(self, uri: str, task: asyncio.Future[_Fetched]) -> None:
        self._inflight.pop(uri, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone (cancelled requests)

    async def _fetch(self, uri: str) -> _Fetched:
        if self._fetcher is None:
            raise AssertionRefused("keys at a jwks_uri are not fetched here", "jwks_unavailable")
        try:
            keys = parse_jwks(await self._fetcher.fetch(uri))
        except (JwksUnavailable, ValueError) as exc:
            described = f"the client's jwks_uri could not be used: {exc}"
            _bounded_put(self._failed, uri, (self._clock.now(), described))
            raise AssertionRefused(described, "jwks_unavailable") from None
        self._failed.pop(uri, None)
        entry = _Fetched(keys, self._clock.now())
        _bounded_put(self._fetched, uri, entry)
        return entry


def _bounded_put(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    if len(cache) > _KEY_CACHE_SIZE:
        cache.popitem(last=False)


def _with_kid(keys: list[dict[str, Any]], kid: str | None) -> list[dict[str, Any]]:
    if kid is None:
        return keys
    return [k for k in keys if k.get("kid") == kid]


# -- the verifier ----------------------------------------------------------------------------


def _replay_key(client_id: str, jti: str) -> str:
    """The replay cache's key of an assertion: its ``jti`` under its client (63 chars)."""
    digest = hashlib.sha256(f"{client_id}.{jti}".encode("utf-8", "surrogatepass")).hexdigest()
    return "pkjwt:" + digest[:57]


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AssertionRefused(f"the client assertion's {name} is not a number")
    return float(value)


class AssertionVerifier:
    """Checks ``private_key_jwt`` assertions (RFC 7523 §3) and remembers their ``jti``."""

    def __init__(
        self,
        policy: AssertionPolicy,
        clock: Clock,
        replay: ReplayCache,
        keys: ClientKeys,
        audiences: Collection[str],
        unseal: Callable[[str], str | None] | None = None,
    ) -> None:
        """``unseal`` opens a ``client_secret_jwt`` client's sealed secret (``None`` when
        it cannot); without it such assertions are refused."""
        self.policy = policy
        self._unseal = unseal
        self._clock = clock
        self._replay = replay
        self._keys = keys
        #: The issuer and token endpoint URLs, accepted in ``aud`` at every endpoint.
        self._audiences = frozenset(audiences)
        #: Verification keys made from the clients' JWKs, once each.
        self._verifiers = JwsKeys(_KEY_CACHE_SIZE)

    @property
    def keys(self) -> ClientKeys:
        """The clients' registered keys (also what ``self_signed_tls_client_auth``
        compares certificates with, RFC 8705 §2.2)."""
        return self._keys

    async def aclose(self) -> None:
        """Close the key fetcher (the replay cache is the DPoP verifier's to close)."""
        await self._keys.aclose()

    def forget(self, uri: str) -> None:
        """Drop what is kept of the JWK Set at ``uri`` (a client's keys were changed)."""
        self._keys.forget(uri)

    async def verify(self, client: Client, assertion: str, endpoint: str | None) -> None:
        """Every check of RFC 7523 §3, the signature first; then the ``jti`` is remembered.
        Raises :class:`AssertionRefused`."""
        header, signing_input, payload, signature = _split(assertion)
        if "client_secret_jwt" in client.auth_methods:
            self._verify_hmac(client, header, signing_input, signature)
        else:
            await self._verify_signature(client, header, signing_input, signature)
        claims = _json_object(payload)
        if claims is None:
            raise AssertionRefused("the client assertion's claims are not a JSON object")
        self._check_parties(claims, client.client_id, endpoint)
        exp = self._check_time(claims)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise AssertionRefused("the client assertion needs a jti")
        expires_at = math.ceil(exp) + self.policy.leeway + 1
        if not await self._replay.first_use(_replay_key(client.client_id, jti), expires_at):
            raise AssertionRefused("the client assertion was used before", "assertion_replay")

    async def _verify_signature(
        self, client: Client, header: Mapping[str, Any], signing_input: bytes, signature: bytes
    ) -> None:
        """``private_key_jwt``: the signature verifies with one of the client's keys."""
        alg = self._algorithm(header)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AssertionRefused("the client assertion's kid is not a string")
        candidates = await self._keys.keys(client, kid)
        if not any(self._verifies(jwk, alg, signing_input, signature) for jwk in candidates):
            raise AssertionRefused(
                "the client assertion's signature does not verify with the client's keys",
                "bad_signature",
            )

    def _verify_hmac(
        self, client: Client, header: Mapping[str, Any], signing_input: bytes, signature: bytes
    ) -> None:
        """``client_secret_jwt`` (RFC 7523 §2.2, RFC 7518 §3.2): an HMAC keyed by one of
        the client's secrets valid now, opened from its sealed form; compared in constant
        time."""
        if not self.policy.hmac_algorithms or self._unseal is None:
            raise AssertionRefused(
                "client_secret_jwt is not accepted by this server", "client_secret_jwt"
            )
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.policy.hmac_algorithms:
            allowed = ", ".join(self.policy.hmac_algorithms)
            raise AssertionRefused(f"a client_secret_jwt assertion's alg must be one of {allowed}")
        digest = HMAC_ALGORITHMS[alg]
        now = self._clock.now()
        matched = False
        for secret in client.secrets:
            if secret.sealed is None or not secret.valid_at(now):
                continue
            opened = self._unseal(secret.sealed)
            if opened is None:
                continue
            expected = hmac.new(opened.encode("utf-8"), signing_input, digest).digest()
            matched = hmac.compare_digest(expected, signature) or matched
        if not matched:
            raise AssertionRefused(
                "the client assertion's signature does not verify with the client's secret",
                "bad_signature",
            )

    def _algorithm(self, header: Mapping[str, Any]) -> str:
        """Asymmetric only: never ``none``, never an HMAC (``client_secret_jwt``) for a
        client registered with keys."""
        alg = header.get("alg")
        if isinstance(alg, str) and alg.upper().startswith("HS"):
            raise AssertionRefused(
                "an HMAC-signed assertion (client_secret_jwt) is not accepted from this "
                "client: it authenticates with its keys (private_key_jwt)",
                "client_secret_jwt",
            )
        if not isinstance(alg, str) or alg not in self.policy.algorithms:
            allowed = ", ".join(self.policy.algorithms)
            raise AssertionRefused(f"the client assertion's alg must be one of {allowed}")
        return alg

    def _verifies(self, jwk: dict[str, Any], alg: str, signing_input: bytes, sig: bytes) -> bool:
        if jwk.get("kty") != _KTY_OF_ALG[alg] or jwk.get("alg", alg) != alg:
            return False
        try:
            key = self._verifiers.get(jwk, alg)
        except ValueError:
            return False
        return key.verify(signing_input, sig)

    def _check_parties(
        self, claims: Mapping[str, Any], client_id: str, endpoint: str | None
    ) -> None:
        """§3 A, B, C: ``iss`` and ``sub`` name the client; ``aud`` names this server."""
        if claims.get("iss") != client_id:
            raise AssertionRefused("the client assertion's iss must be the client_id")
        if claims.get("sub") != client_id:
            raise AssertionRefused("the client assertion's sub must be the client_id")
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        accepted = self._audiences | ({endpoint} if endpoint else set())
        if not any(isinstance(a, str) and a in accepted for a in named):
            raise AssertionRefused(
                "the client assertion's aud must be the issuer or the endpoint's URL"
            )

    def _check_time(self, claims: Mapping[str, Any]) -> float:
        """§3 D, E, F: ``exp`` set and not past, ``nbf`` and ``iat`` not ahead of the clock
        (``leeway`` either way), and the lifetime at most ``max_lifetime``."""
        now, leeway, longest = self._clock.now(), self.policy.leeway, self.policy.max_lifetime
        exp = _number(claims, "exp")
        if exp is None:
            raise AssertionRefused("the client assertion needs an exp")
        if exp <= now - leeway:
            raise AssertionRefused("the client assertion has expired", "assertion_expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise AssertionRefused("the client assertion is not valid yet (nbf)")
        iat = _number(claims, "iat")
        if iat is not None and iat > now + leeway:
            raise AssertionRefused("the client assertion's iat is in the future")
        start = iat if iat is not None else now
        if exp - start > longest + (0 if iat is not None else leeway):
            raise AssertionRefused(f"the client assertion may live at most {longest} seconds")
        return exp


def _split(assertion: str) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """A compact JWS (RFC 7515 §7.1): header, signing input, payload, signature; no
    extension asked (``crit``, RFC 7515 §4.1.11), not encrypted."""
    if not assertion or len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
        raise AssertionRefused("the client assertion is not a signed JWT")
    head, body, sig = assertion.split(".")
    try:
        header = _json_object(_segment(head))
        payload, signature = _segment(body), _segment(sig)
    except ValueError:
        raise AssertionRefused("the client assertion is not a well-formed JWT") from None
    if header is None:
        raise AssertionRefused("the client assertion is not a well-formed JWT")
    if "crit" in header:
        raise AssertionRefused("the client assertion asks for an extension (crit)")
    return header, f"{head}.{body}".encode("ascii"), payload, signature
