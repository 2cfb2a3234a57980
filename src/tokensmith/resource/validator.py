"""Access token validation for resource servers.

* JWT access tokens (RFC 9068) are verified locally: signature against the issuer's JWKS
  (RFC 7517, fetched once and cached as ``jwt.PyJWK`` objects, refetched when a token
  names an unknown ``kid``: at once unless the last fetch is under a second old, and for a
  ``kid`` a fetch already failed to find at most once per ``jwks_refetch_interval``), header
  ``typ`` ``at+jwt`` (RFC 9068 §4), ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` with a
  small leeway, and an algorithm allowlist (never ``none`` nor HMAC).
* Anything that is not a three-part JWS is treated as opaque and sent to the RFC 7662
  introspection endpoint; answers are cached, never beyond the token's ``exp``.  Only an
  access token passes: the answer's ``token_type`` (RFC 7662 §2.2) must be ``Bearer``
  (RFC 6750) or ``access_token`` (the RFC 7009 §2.1 hint's word), so a refresh token that
  the issuer reports active (``token_type`` ``refresh_token``) is refused like any other
  non-access token.
* With ``dpop="allowed"`` or ``"required"``, :meth:`TokenValidator.authenticate` also
  takes ``Authorization: DPoP`` (RFC 9449 §7): the proof is checked by a
  :class:`~tokensmith.resource.DPoPVerifier` and the token must be bound to its key
  (``cnf.jkt``). A DPoP-bound token presented as ``Bearer`` is refused in every mode,
  ``"off"`` included (§7.2): it is no bearer token.
* With ``mtls="allowed"`` or ``"required"`` (and ``trusted_proxies``), a token bound to a
  TLS client certificate (RFC 8705 §3, ``cnf`` ``x5t#S256``) passes
  :meth:`TokenValidator.authenticate` only with the certificate the TLS proxy forwarded
  in ``cert_header``; with ``"off"`` such a token is refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx
import jwt
import orjson

from .dpop import CheckedProof, DPoPMode, DPoPVerifier, check_mode, cnf_jkt
from .errors import (
    BearerError,
    ConsentNotActive,
    InvalidToken,
    MissingToken,
    Scheme,
    ValidationUnavailable,
)
from .mtls import DEFAULT_HEADER, CertificateBinding, ClientCertificate, MtlsMode

__all__ = [
    "DEFAULT_ALGORITHMS",
    "RFC9068_REQUIRED_CLAIMS",
    "AccessToken",
    "SyncTokenValidator",
    "TokenValidator",
]

logger = logging.getLogger("tokensmith.resource")

DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "EdDSA")
#: RFC 9068 §2.2 required claims.
RFC9068_REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
_AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Introspection ``token_type`` values (RFC 7662 §2.2) of an access token, lower case.
_ACCESS_TOKEN_TYPES = frozenset({"bearer", "access_token"})
_INACTIVE = "token is not active"
_NOT_ACCESS = "not an access token"
_ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})
#: The consume endpoint's path under the issuer (tokensmith's; no metadata names it).
CONSUME_PATH = "/oauth/consents/consume"


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A validated access token's claims.

    ``scopes`` is the set of scope tokens (RFC 6749 §3.3, from the ``scope`` claim of
    RFC 9068 §2.2.3 or introspection's ``scope``); ``claims`` holds everything.
    """

    sub: str | None
    client_id: str | None
    scopes: frozenset[str]
    exp: float | None
    claims: Mapping[str, Any] = field(repr=False)
    kind: Literal["jwt", "opaque"] = "jwt"

    @property
    def scope(self) -> str:
        """Space-delimited scope string."""
        return " ".join(sorted(self.scopes))

    def has_scopes(self, *required: str) -> bool:
        """True if every scope in ``required`` was granted."""
        return self.scopes.issuperset(required)


_URLSAFE = str.maketrans("-_", "+/")


def _b64decode(segment: str) -> bytes:
    """base64url decoding (RFC 7515 §2, no padding); ValueError on non-ASCII input."""
    return binascii.a2b_base64((segment + "=" * (-len(segment) % 4)).translate(_URLSAFE))


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _Parsed:
    __slots__ = ("alg", "kid", "payload", "signature", "signing_input")

    def __init__(
        self, alg: str, kid: str | None, signing_input: bytes, payload: str, signature: bytes
    ) -> None:
        self.alg = alg
        self.kid = kid
        self.signing_input = signing_input
        self.payload = payload
        self.signature = signature


_MISS = object()
#: Seconds between two JWKS fetches for kids not looked for yet (or while no keys load).
_MIN_REFETCH = 1.0
#: Unknown kids remembered as missing from the latest fetch.
_MAX_MISSING = 1024


class _ValidatorCore:
    """State and pure logic shared by the async and sync validators."""

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        jwks_uri: str | None = None,
        introspection_endpoint: str | None = None,
        consume_endpoint: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 10.0,
        clock: Callable[[], float] = time.time,
        required_claims: Iterable[str] = RFC9068_REQUIRED_CLAIMS,
        jwks_refetch_interval: float = 30.0,
        jwks_max_age: float = 3600.0,
        introspection_cache_ttl: float = 60.0,
        introspection_cache_size: int = 10_000,
        verified_cache_size: int = 4096,
        realm: str | None = "api",
        discover: bool = True,
        require_token_type: bool = True,
        dpop: DPoPMode = "off",
        dpop_verifier: DPoPVerifier | None = None,
        mtls: MtlsMode = "off",
        cert_header: str = DEFAULT_HEADER,
        trusted_proxies: Collection[str] = (),
    ) -> None:
        algs = tuple(algorithms)
        bad = [
            a for a in algs if a not in DEFAULT_ALGORITHMS and not a.startswith(("ES", "RS", "PS"))
        ]
        if bad or not algs:
            raise ValueError(f"unsupported algorithms {bad!r}: asymmetric ones only")
        self.issuer = issuer
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not self.audiences:
            raise ValueError("an audience is required (RFC 9068 §4)")
        self.jwks_uri = jwks_uri
        self.introspection_endpoint = introspection_endpoint
        #: Where single-use consents are spent (:meth:`TokenValidator.consume`): no RFC
        #: 8414 metadata names it, so the tokensmith path under the issuer by default.
        self.consume_endpoint = consume_endpoint or issuer.rstrip("/") + CONSUME_PATH
        self.client_id = client_id
        self._client_secret = client_secret
        self.algorithms = frozenset(algs)
        self.leeway = leeway
        self.required_claims = tuple(required_claims)
        self.realm = realm
        #: Refuse introspection answers without ``token_type`` (they cannot tell an access
        #: token from a refresh token); False only for issuers that answer for access
        #: tokens alone.
        self.require_token_type = require_token_type
        #: RFC 9449: ``off`` (Bearer only), ``allowed`` (Bearer and DPoP) or ``required``.
        self.dpop: DPoPMode = check_mode(dpop)
        if dpop_verifier is not None and self.dpop == "off":
            raise ValueError("dpop_verifier needs dpop='allowed' or dpop='required'")
        self.dpop_verifier: DPoPVerifier | None = (
            None if self.dpop == "off" else dpop_verifier or DPoPVerifier(clock=clock)
        )
        #: RFC 8705 §3: certificate-bound tokens, the certificate from a trusted proxy.
        self.mtls = CertificateBinding(
            mtls, cert_header=cert_header, trusted_proxies=trusted_proxies
        )
        self._clock = clock
        self._refetch_interval = jwks_refetch_interval
        self._max_age = jwks_max_age
        self._intro_ttl = introspection_cache_ttl
        self._intro_size = introspection_cache_size
        # JWTs whose signature was verified, by exact token string.  A client reuses its
        # token for many requests; a hit re-checks only the time claims.  Cleared on
        # every JWKS reload so that a removed key stops validating.
        self._verified: dict[str, tuple[AccessToken, float, float]] = {}
        self._verified_size = verified_cache_size
        self._headers: dict[str, tuple[str, str | None]] = {}  # valid JOSE headers, parsed
        self._discover = discover and (jwks_uri is None or introspection_endpoint is None)
        self._discovered = False
        self._keys: dict[str, jwt.PyJWK] = {}
        self._anonymous: list[jwt.PyJWK] = []
        self._keys_loaded_at: float | None = None
        self._last_fetch: float = float("-inf")
        # kid -> the fetch (its start time) that did not have it, made after a token
        # naming it arrived.  Such a kid waits ``jwks_refetch_interval`` for another fetch;
        # a kid not looked for yet (the issuer just rotated) only ``_MIN_REFETCH``.
        self._missing: dict[str | None, float] = {}
        # token digest -> (the token, or why it is refused; until when the answer holds)
        self._intro_cache: OrderedDict[str, tuple[AccessToken | str, float]] = OrderedDict()
        self.jwks_fetches = 0
        self.introspections = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(issuer={self.issuer!r}, audience={sorted(self.audiences)!r}, "
            f"jwks_uri={self.jwks_uri!r}, introspection_endpoint={self.introspection_endpoint!r})"
        )

    # -- JWT -----------------------------------------------------------------------------
    def _parse(self, token: str) -> _Parsed:
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = self._headers.get(header_b64)
        if header is None:
            header = self._parse_header(header_b64)
            if len(self._headers) < 256:  # one issuer has few distinct headers
                self._headers[header_b64] = header
        try:
            signature = _b64decode(sig_b64)
            signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise InvalidToken("malformed token") from None
        return _Parsed(header[0], header[1], signing_input, payload_b64, signature)

    def _parse_header(self, header_b64: str) -> tuple[str, str | None]:
        """Check a JOSE header (RFC 7515 §4, RFC 9068 §4); returns (alg, kid)."""
        try:
            header = orjson.loads(_b64decode(header_b64))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InvalidToken("malformed token") from None
        if not isinstance(header, dict):
            raise InvalidToken("malformed token")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("signing algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _AT_JWT_TYPES:
            raise InvalidToken("not an access token (typ must be at+jwt)")
        if "crit" in header:
            raise InvalidToken("unsupported critical header parameters")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")
        return alg, kid

    def _key_for(self, parsed: _Parsed) -> jwt.PyJWK | None:
        if parsed.kid is not None:
            return self._keys.get(parsed.kid)
        candidates = [k for k in self._anonymous if k.algorithm_name == parsed.alg]
        if not candidates:
            candidates = [k for k in self._keys.values() if k.algorithm_name == parsed.alg]
        return candidates[0] if len(candidates) == 1 else None

    def _should_fetch(self, now: float, found: bool, kid: str | None = None) -> bool:
        since = now - self._last_fetch
        floor = min(self._refetch_interval, _MIN_REFETCH)
        if self._keys_loaded_at is None or now - self._keys_loaded_at >= self._max_age:
            return since >= floor
        if found:
            return False
        if since >= self._refetch_interval:
            return True
        # OpenID Connect Core §10.1.1: a signer may start using a new key at once and the
        # verifier refetches on an unfamiliar kid.  Refusing it for the whole interval
        # would turn away every new token after a rotation; a kid the latest fetch did not
        # have (junk, or a key not published yet) waits the whole interval.
        return since >= floor and self._missing.get(kid) != self._last_fetch

    def _note_missing(self, kid: str | None, seen_at: float) -> None:
        """``kid`` is unknown although the latest fetch began after its token arrived."""
        if self._last_fetch >= seen_at:
            if len(self._missing) >= _MAX_MISSING:
                self._missing.clear()
            self._missing[kid] = self._last_fetch

    def _verify(self, parsed: _Parsed, key: jwt.PyJWK) -> AccessToken:
        if key.algorithm_name != parsed.alg:
            raise InvalidToken("token algorithm does not match the key")
        if not key.Algorithm.verify(parsed.signing_input, key.key, parsed.signature):
            raise InvalidToken("invalid signature")
        try:
            claims = orjson.loads(_b64decode(parsed.payload))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InvalidToken("malformed token") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        return self._check_claims(claims)

    def _check_claims(self, claims: dict[str, Any]) -> AccessToken:
        for name in self.required_claims:
            if name not in claims:
                raise InvalidToken(f"missing claim {name}")
        now = self._clock()
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self.audiences for a in auds):
            raise InvalidToken("wrong audience")
        exp = _num(claims.get("exp"))
        if exp is None or now >= exp + self.leeway:
            raise InvalidToken("token expired")
        if "nbf" in claims:
            nbf = _num(claims["nbf"])
            if nbf is None or nbf > now + self.leeway:
                raise InvalidToken("token not yet valid")
        if "iat" in claims:
            iat = _num(claims["iat"])
            if iat is None or iat > now + self.leeway:
                raise InvalidToken("token issued in the future")
        return AccessToken(
            sub=_str(claims.get("sub")),
            client_id=_str(claims.get("client_id")),
            scopes=_scopes(claims),
            exp=exp,
            claims=claims,
            kind="jwt",
        )

    def _install_jwks(self, content: bytes) -> None:
        data = orjson.loads(content)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError("not a JWK Set")
        keys: dict[str, jwt.PyJWK] = {}
        anonymous: list[jwt.PyJWK] = []
        for jwk in data["keys"]:
            if not isinstance(jwk, dict) or jwk.get("kty") not in _ASYMMETRIC_KTY:
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
                logger.warning("skipping unusable JWK %r: %s", jwk.get("kid"), exc)
                continue
            if key.algorithm_name not in self.algorithms:
                continue
            kid = jwk.get("kid")
            if isinstance(kid, str):
                keys[kid] = key
            else:
                anonymous.append(key)
        self._keys, self._anonymous = keys, anonymous
        self._verified.clear()
        self._keys_loaded_at = self._clock()
        logger.info("loaded %d signing keys from %s", len(keys) + len(anonymous), self.jwks_uri)

    def _metadata_urls(self) -> list[str]:
        issuer = self.issuer.rstrip("/")
        parts = urlsplit(issuer)
        first = urlunsplit(
            parts._replace(path="/.well-known/oauth-authorization-server" + parts.path)
        )
        appended = issuer + "/.well-known/oauth-authorization-server"
        return [first] if first == appended else [first, appended]

    def _apply_metadata(self, content: bytes) -> None:
        data = orjson.loads(content)
        if not isinstance(data, dict) or str(data.get("issuer", "")).rstrip(
            "/"
        ) != self.issuer.rstrip("/"):
            raise ValueError("authorization server metadata issuer mismatch (RFC 8414 §3.3)")
        if self.jwks_uri is None and isinstance(data.get("jwks_uri"), str):
            self.jwks_uri = data["jwks_uri"]
        if self.introspection_endpoint is None and isinstance(
            data.get("introspection_endpoint"), str
        ):
            self.introspection_endpoint = data["introspection_endpoint"]
        self._discovered = True

    def _verified_hit(self, token: str) -> AccessToken | None:
        hit = self._verified.get(token)
        if hit is None:
            return None
        result, exp, nbf = hit
        now = self._clock()
        loaded = self._keys_loaded_at
        if loaded is None or now - loaded >= self._max_age:
            return None  # keys due for a reload: take the full path
        if now >= exp + self.leeway or nbf > now + self.leeway:
            self._verified.pop(token, None)
            return None  # full validation gives the precise error
        return result

    def _remember_verified(self, token: str, result: AccessToken) -> AccessToken:
        if self._verified_size <= 0 or result.exp is None:
            return result
        nbf = _num(result.claims.get("nbf"))
        self._verified[token] = (result, result.exp, nbf if nbf is not None else float("-inf"))
        if len(self._verified) > self._verified_size:
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del self._verified[next(iter(self._verified))]  # FIFO eviction
        return result

    # -- DPoP (RFC 9449) -----------------------------------------------------------------
    def _dpop_before(
        self,
        scheme: str,
        token: str,
        *,
        method: str,
        url: str,
        path: str | None,
        proofs: Sequence[str],
    ) -> CheckedProof | None:
        """The checks that need no token validation: the scheme is accepted, and for
        ``DPoP`` the proof (RFC 9449 §4.3) is sound; returns it."""
        if scheme == "bearer":
            if self.dpop == "required":
                raise InvalidToken("this API takes DPoP-bound tokens only (RFC 9449)")
            return None
        if scheme != "dpop" or self.dpop_verifier is None:
            raise MissingToken()  # a scheme this API does not take counts as no token
        return self.dpop_verifier.check(
            proofs, method=method, url=url, access_token=token, path=path
        )

    def _dpop_after(self, result: AccessToken, proof: CheckedProof | None) -> AccessToken:
        """RFC 9449 §7.1 binding and §11.1 replay for ``DPoP``; §7.2 for ``Bearer``."""
        if proof is not None:
            assert self.dpop_verifier is not None
            self.dpop_verifier.bind(proof, result.claims)
            self.dpop_verifier.remember(proof)
            return result
        return refuse_bound_bearer(result)

    def _render(self, exc: BearerError, scheme: str) -> BearerError:
        if self.dpop_verifier is None:
            return exc
        used: Scheme = "dpop" if scheme == "dpop" else "bearer"
        return exc.with_dpop(self.dpop, self.dpop_verifier.algorithms, used)

    # -- introspection -------------------------------------------------------------------
    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def _cached_introspection(self, digest: str) -> Any:
        hit = self._intro_cache.get(digest)
        if hit is None:
            return _MISS
        result, until = hit
        if self._clock() >= until:
            self._intro_cache.pop(digest, None)
            return _MISS
        self._intro_cache.move_to_end(digest)
        return result

    def _remember(self, digest: str, result: AccessToken | str) -> None:
        now = self._clock()
        until = now + self._intro_ttl
        if isinstance(result, AccessToken) and result.exp is not None:
            until = min(until, result.exp)
        self._intro_cache[digest] = (result, until)
        self._intro_cache.move_to_end(digest)
        while len(self._intro_cache) > self._intro_size:
            self._intro_cache.popitem(last=False)

    def _introspection_request(self, token: str) -> tuple[str, dict[str, str], dict[str, str]]:
        if not self.introspection_endpoint:
            raise InvalidToken("malformed token")  # opaque tokens are not accepted here
        headers = {"Accept": "application/json"}
        data = {"token": token, "token_type_hint": "access_token"}
        self._client_auth(headers, data)
        return self.introspection_endpoint, headers, data

    def _client_auth(self, headers: dict[str, str], data: dict[str, str]) -> None:
        """This API's own credentials: HTTP Basic (RFC 6749 §2.3.1), or its client_id."""
        if self.client_id and self._client_secret is not None:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.client_id:
            data["client_id"] = self.client_id

    # -- single-use consents ---------------------------------------------------------------
    def _consume_request(self, token: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """``POST token=...`` to the consume endpoint, authenticated as for introspection."""
        if not self.client_id:
            logger.error("consuming a consent needs this API's client_id (and secret)")
            raise ValidationUnavailable("consent cannot be checked")
        headers = {"Accept": "application/json"}
        data = {"token": token}
        self._client_auth(headers, data)
        return self.consume_endpoint, headers, data

    @staticmethod
    def _consume_result(status: int, content: bytes) -> dict[str, Any]:
        """The consent the server answered with, once spent; else the refusal.

        200: spent now, by this call. 409: spent before, revoked or expired: 403
        :class:`ConsentNotActive`. 400 ``invalid_token``: the server no longer takes the
        token (revoked since it was checked here). 400 ``invalid_request``: the token has
        no consent, or one that is not single-use: 403 too, the route needs one. Anything
        else (the API's credentials refused, a 5xx, a body that is not the consent): 503.
        """
        try:
            data = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            data = None
        if status == 200 and data is not None and data.get("status") == "consumed":
            return data
        if status == 409 and data is not None:
            state = data.get("status")
            raise ConsentNotActive.for_status(state if isinstance(state, str) else None)
        if status == 400 and data is not None:
            error = data.get("error")
            if error == "invalid_token":
                raise InvalidToken(_INACTIVE)
            if error == "invalid_request":
                raise ConsentNotActive("the token carries no single-use consent")
        logger.error("consent consume endpoint answered HTTP %d", status)
        raise ValidationUnavailable("consent cannot be checked")

    def _is_access_token(self, data: Mapping[str, Any]) -> bool:
        """Whether an active introspection answer is an access token's (RFC 7662 §2.2
        ``token_type``: ``Bearer`` per RFC 6750, or ``access_token``, RFC 7009 §2.1's word;
        a ``token_use`` member, where an issuer adds one, must say ``access_token``);
        with DPoP on, also ``DPoP`` (RFC 9449 §6.2)."""
        use = data.get("token_use")
        if use is not None and use != "access_token":
            return False
        kind = data.get("token_type")
        if kind is None:
            return not self.require_token_type
        if not isinstance(kind, str):
            return False
        # RFC 9449 §6.2: a DPoP-bound token introspects as "DPoP", where DPoP is on.
        return kind.lower() in _ACCESS_TOKEN_TYPES or (
            self.dpop != "off" and kind.lower() == "dpop"
        )

    def _introspection_result(self, status: int, content: bytes) -> AccessToken | str:
        """The token of an RFC 7662 answer, or why it is refused."""
        if status != 200:
            logger.error("introspection endpoint answered HTTP %d", status)
            raise ValidationUnavailable("token introspection failed")
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise ValidationUnavailable("token introspection failed") from None
        if not isinstance(data, dict):
            raise ValidationUnavailable("token introspection failed")
        if data.get("active") is not True:
            return _INACTIVE
        if not self._is_access_token(data):
            return _NOT_ACCESS
        if "iss" in data and data["iss"] != self.issuer:
            return _INACTIVE
        if "aud" in data:
            aud = data["aud"]
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(a in self.audiences for a in auds if isinstance(a, str)):
                return _INACTIVE
        exp = _num(data.get("exp"))
        if exp is not None and self._clock() >= exp + self.leeway:
            return _INACTIVE
        return AccessToken(
            sub=_str(data.get("sub")),
            client_id=_str(data.get("client_id")),
            scopes=_scopes(data),
            exp=exp,
            claims=data,
            kind="opaque",
        )

    def _check_opaque(self, result: AccessToken | str) -> AccessToken:
        if isinstance(result, str):
            raise InvalidToken(result)
        if result.exp is not None and self._clock() >= result.exp + self.leeway:
            raise InvalidToken("token expired")
        return result


def refuse_bound_bearer(result: AccessToken) -> AccessToken:
    """RFC 9449 §7.2, whatever the guard's DPoP mode: a DPoP-bound token presented as
    ``Bearer`` is refused; it is no bearer token."""
    if _dpop_bound(result.claims):
        raise InvalidToken("a DPoP-bound token must come with the DPoP scheme")
    return result


def _dpop_bound(claims: Mapping[str, Any]) -> bool:
    """Whether claims show a DPoP-bound token: ``cnf.jkt`` (RFC 9449 §6), or an
    introspection ``token_type`` of ``DPoP`` (§6.2)."""
    kind = claims.get("token_type")
    return cnf_jkt(claims) is not None or (isinstance(kind, str) and kind.lower() == "dpop")


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


class TokenValidator(_ValidatorCore):
    """Asynchronous validator: ``await validator.validate(token) -> AccessToken``.

    Raises :class:`~tokensmith.resource.InvalidToken` for a bad token and
    :class:`~tokensmith.resource.ValidationUnavailable` when keys or introspection cannot
    be reached.  Without ``jwks_uri`` / ``introspection_endpoint`` they are discovered
    from the issuer's RFC 8414 metadata on first use.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(issuer, audience, **kwargs)
        self._http = http_client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self._owns_http = http_client is None
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def validate(self, token: str) -> AccessToken:
        """Validate ``token`` (RFC 9068 JWT locally, else RFC 7662 introspection)."""
        hit = self._verified_hit(token)
        if hit is not None:
            return hit
        if not _is_jwt(token):
            return await self._introspect(token)
        parsed = self._parse(token)
        seen_at = self._clock()
        key = self._key_for(parsed)
        if key is None or self._should_fetch(seen_at, True):
            # Unknown kid (rate-limited refetch) or keys past their max age.
            lock = self._lock()
            if key is None and lock.locked():
                async with lock:  # a fetch is in flight: wait for it, then look again
                    pass
                key = self._key_for(parsed)
            # With a usable key in hand nobody waits for a refetch already running.
            if self._should_fetch(self._clock(), key is not None, parsed.kid) and not (
                key is not None and lock.locked()
            ):
                await self._refresh_keys(parsed.kid)
                key = self._key_for(parsed)
        if key is None:
            if self._keys_loaded_at is None:
                raise ValidationUnavailable("signing keys unavailable")
            self._note_missing(parsed.kid, seen_at)
            raise InvalidToken("unknown signing key")
        return self._remember_verified(token, self._verify(parsed, key))

    async def authenticate(
        self,
        scheme: str,
        token: str,
        *,
        method: str,
        url: str,
        dpop_proofs: Sequence[str] = (),
        path: str | None = None,
        certificate: ClientCertificate | None = None,
    ) -> AccessToken:
        """Validate a request's credentials: ``scheme`` ``bearer`` (RFC 6750 §2.1) or
        ``dpop`` (RFC 9449 §7.1, with the request's ``DPoP`` header values, ``method``
        and ``url``; ``path``: the raw request path, for ``DPoPVerifier.public_url``);
        ``certificate``: the TLS client certificate the proxy forwarded
        (``validator.mtls.certificate_of(header, peer)``), for RFC 8705 §3.
        Errors come rendered for this API's DPoP mode."""
        scheme = scheme.lower()
        try:
            proof = self._dpop_before(
                scheme, token, method=method, url=url, path=path, proofs=dpop_proofs
            )
            result = self._dpop_after(await self.validate(token), proof)
            self.mtls.check(result.claims, certificate)
            return result
        except BearerError as exc:
            self._render(exc, scheme)
            raise

    async def consume(self, token: str) -> dict[str, Any]:
        """Spend the single-use consent ``token`` was issued under (a payment): ``POST
        token=...`` to :attr:`consume_endpoint` with this API's credentials. Returns the
        consent (``consent_id``, ``status`` ``consumed``, ``authorization_details``,
        ``client_id``) the first time; raises :class:`ConsentNotActive` (403) once spent,
        revoked or expired, :class:`InvalidToken` for a token the server no longer takes,
        :class:`ValidationUnavailable` (503) when the server cannot say. Validate the
        token and check its details first: a consent spent is spent."""
        url, headers, data = self._consume_request(token)
        try:
            response = await self._http.post(url, headers=headers, data=data)
        except httpx.HTTPError as exc:
            logger.warning("consent consume failed: %s", type(exc).__name__)
            raise ValidationUnavailable("consent cannot be checked") from None
        return self._consume_result(response.status_code, response.content)

    async def _refresh_keys(self, kid: str | None = None) -> None:
        async with self._lock():
            if not self._should_fetch(self._clock(), False, kid):
                return  # someone else just fetched
            self._last_fetch = self._clock()
            try:
                if self._discover and not self._discovered:
                    await self._run_discovery()
                if not self.jwks_uri:
                    raise ValueError("no jwks_uri configured or discovered")
                self.jwks_fetches += 1
                response = await self._http.get(
                    self.jwks_uri, headers={"Accept": "application/json"}
                )
                response.raise_for_status()
                self._install_jwks(response.content)
            except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
                logger.warning("cannot load JWKS from %s: %s", self.jwks_uri, exc)
                if self._keys_loaded_at is None:
                    raise ValidationUnavailable("signing keys unavailable") from None

    async def _run_discovery(self) -> None:
        for url in self._metadata_urls():
            response = await self._http.get(url, headers={"Accept": "application/json"})
            if response.status_code == 404:
                continue
            response.raise_for_status()
            self._apply_metadata(response.content)
            return
        raise ValueError("authorization server metadata not found")

    async def _introspect(self, token: str) -> AccessToken:
        digest = self._hash(token)
        cached = self._cached_introspection(digest)
        if cached is not _MISS:
            return self._check_opaque(cached)
        if self.introspection_endpoint is None and self._discover and not self._discovered:
            async with self._lock():
                if not self._discovered:
                    try:
                        await self._run_discovery()
                    except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
                        logger.warning("discovery failed: %s", exc)
                        raise ValidationUnavailable("authorization server unavailable") from None
        url, headers, data = self._introspection_request(token)
        self.introspections += 1
        try:
            response = await self._http.post(url, headers=headers, data=data)
        except httpx.HTTPError as exc:
            logger.warning("introspection failed: %s", type(exc).__name__)
            raise ValidationUnavailable("token introspection failed") from None
        result = self._introspection_result(response.status_code, response.content)
        self._remember(digest, result)
        return self._check_opaque(result)


class SyncTokenValidator(_ValidatorCore):
    """Blocking twin of :class:`TokenValidator` (thread-safe), for WSGI apps and scripts."""

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        http_client: httpx.Client | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(issuer, audience, **kwargs)
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(5.0))
        self._owns_http = http_client is None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def validate(self, token: str) -> AccessToken:
        """Validate ``token``; see :meth:`TokenValidator.validate`."""
        hit = self._verified_hit(token)
        if hit is not None:
            return hit
        if not _is_jwt(token):
            return self._introspect(token)
        parsed = self._parse(token)
        seen_at = self._clock()
        key = self._key_for(parsed)
        if key is None or self._should_fetch(seen_at, True):
            # Unknown kid (rate-limited refetch) or keys past their max age.
            lock = self._lock
            if key is None and lock.locked():
                with lock:  # a fetch is in flight: wait for it, then look again
                    pass
                key = self._key_for(parsed)
            # With a usable key in hand nobody waits for a refetch already running.
            if self._should_fetch(self._clock(), key is not None, parsed.kid) and not (
                key is not None and lock.locked()
            ):
                self._refresh_keys(parsed.kid)
                key = self._key_for(parsed)
        if key is None:
            if self._keys_loaded_at is None:
                raise ValidationUnavailable("signing keys unavailable")
            self._note_missing(parsed.kid, seen_at)
            raise InvalidToken("unknown signing key")
        return self._remember_verified(token, self._verify(parsed, key))

    def authenticate(
        self,
        scheme: str,
        token: str,
        *,
        method: str,
        url: str,
        dpop_proofs: Sequence[str] = (),
        path: str | None = None,
        certificate: ClientCertificate | None = None,
    ) -> AccessToken:
        """Validate a request's credentials; see :meth:`TokenValidator.authenticate`."""
        scheme = scheme.lower()
        try:
            proof = self._dpop_before(
                scheme, token, method=method, url=url, path=path, proofs=dpop_proofs
            )
            result = self._dpop_after(self.validate(token), proof)
            self.mtls.check(result.claims, certificate)
            return result
        except BearerError as exc:
            self._render(exc, scheme)
            raise

    def consume(self, token: str) -> dict[str, Any]:
        """Spend the token's single-use consent; see :meth:`TokenValidator.consume`."""
        url, headers, data = self._consume_request(token)
        try:
            response = self._http.post(url, headers=headers, data=data)
        except httpx.HTTPError as exc:
            logger.warning("consent consume failed: %s", type(exc).__name__)
            raise ValidationUnavailable("consent cannot be checked") from None
        return self._consume_result(response.status_code, response.content)

    def _refresh_keys(self, kid: str | None = None) -> None:
        with self._lock:
            if not self._should_fetch(self._clock(), False, kid):
                return
            self._last_fetch = self._clock()
            try:
                if self._discover and not self._discovered:
                    self._run_discovery()
                if not self.jwks_uri:
                    raise ValueError("no jwks_uri configured or discovered")
                self.jwks_fetches += 1
                response = self._http.get(self.jwks_uri, headers={"Accept": "application/json"})
                response.raise_for_status()
                self._install_jwks(response.content)
            except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
                logger.warning("cannot load JWKS from %s: %s", self.jwks_uri, exc)
                if self._keys_loaded_at is None:
                    raise ValidationUnavailable("signing keys unavailable") from None

    def _run_discovery(self) -> None:
        for url in self._metadata_urls():
            response = self._http.get(url, headers={"Accept": "application/json"})
            if response.status_code == 404:
                continue
            response.raise_for_status()
            self._apply_metadata(response.content)
            return
        raise ValueError("authorization server metadata not found")

    def _introspect(self, token: str) -> AccessToken:
        digest = self._hash(token)
        with self._lock:
            cached = self._cached_introspection(digest)
        if cached is not _MISS:
            return self._check_opaque(cached)
        if self.introspection_endpoint is None and self._discover and not self._discovered:
            with self._lock:
                if not self._discovered:
                    try:
                        self._run_discovery()
                    except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
                        logger.warning("discovery failed: %s", exc)
                        raise ValidationUnavailable("authorization server unavailable") from None
        url, headers, data = self._introspection_request(token)
        self.introspections += 1
        try:
            response = self._http.post(url, headers=headers, data=data)
        except httpx.HTTPError as exc:
            logger.warning("introspection failed: %s", type(exc).__name__)
            raise ValidationUnavailable("token introspection failed") from None
        result = self._introspection_result(response.status_code, response.content)
        with self._lock:
            self._remember(digest, result)
        return self._check_opaque(result)
