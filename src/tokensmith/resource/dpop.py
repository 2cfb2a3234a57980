"""DPoP proof verification for resource servers (RFC 9449 §4.3, §7).

A request with ``Authorization: DPoP <token>`` carries a ``DPoP`` header: a JWT typed
``dpop+jwt`` signed by the client's key, whose public part is in the JWT header (``jwk``).
:class:`DPoPVerifier` checks it against the request (RFC 9449 §4.3):

* exactly one ``DPoP`` header, one well-formed JWS with ``typ`` ``dpop+jwt``, an
  asymmetric ``alg`` from the allow-list that fits the key (never ``none`` nor HMAC), a
  public ``jwk`` with no private parts, no ``crit``, and a valid signature;
* ``jti``, ``htm``, ``htu``, ``iat`` and ``ath`` present; ``htm`` is the request method,
  ``htu`` the request URL without query and fragment (RFC 3986 §6 syntax-normalised),
  ``iat`` within ``max_age`` seconds back (``leeway`` forward), ``ath`` the base64url
  SHA-256 of the access token;
* the server's nonce when a :class:`NonceSource` is configured (RFC 9449 §9);
* after the token itself validated: the token's ``cnf.jkt`` (RFC 9449 §6.1, from its
  JWT claims or its introspection answer) equals the RFC 7638 thumbprint of the proof's
  key (§7.1), and the proof's ``jti`` has not been seen in its window (§11.1).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import jwt
import orjson

from tokensmith.jwk import (
    ASYMMETRIC_ALGORITHMS,
    THUMBPRINT_MEMBERS,
    access_token_hash,
    b64url,
    jwk_thumbprint,
)

from .errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "CheckedProof",
    "DPoPMode",
    "DPoPVerifier",
    "HmacNonceSource",
    "MemoryReplayCache",
    "NonceSource",
    "ReplayCache",
    "access_token_hash",
    "check_mode",
    "cnf_jkt",
    "jwk_thumbprint",
    "normalize_htu",
]

#: ``off``: Bearer only, as before; ``allowed``: Bearer and DPoP; ``required``: DPoP only.
DPoPMode = Literal["off", "allowed", "required"]
_MODES: tuple[str, ...] = ("off", "allowed", "required")

#: Proof algorithms accepted by default (RFC 9449 §4.3 step 5: asymmetric only).
DEFAULT_DPOP_ALGORITHMS: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
_SUPPORTED = frozenset(DEFAULT_DPOP_ALGORITHMS)
#: JWK members that only a private (or symmetric) key has (RFC 7518 §6, RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_EC_ALG_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_MIN_RSA_BITS = 2048
_MAX_PROOF = 8 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_URLSAFE = str.maketrans("-_", "+/")


def _b64decode(segment: str) -> bytes:
    """base64url without padding (RFC 7515 §2); ValueError / binascii.Error if bad."""
    if "=" in segment:
        raise ValueError("padded base64url")
    return binascii.a2b_base64((segment + "=" * (-len(segment) % 4)).translate(_URLSAFE))


def cnf_jkt(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` (RFC 9449 §6.1 for JWTs, §6.2 for introspection) of a token's
    claims, or None if the token is not DPoP-bound."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, Mapping):
        return None
    jkt = cnf.get("jkt")
    return jkt if isinstance(jkt, str) and jkt else None


def _normalize_percent(path: str) -> str:
    """RFC 3986 §6.2.2: upper-case percent-encodings, decode unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, path)


def normalize_htu(url: str) -> str:
    """``url`` without query and fragment, syntax-normalised (RFC 3986 §6.2.2, §6.2.3):
    scheme and host in lower case, default port dropped, empty path as ``/``, percent-
    encodings normalised.  How both sides of the ``htu`` comparison (RFC 9449 §4.3 step
    9) are put."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = _normalize_percent(parts.path) or "/"
    return urlunsplit((scheme, netloc, path, "", ""))


# -- pluggable state ----------------------------------------------------------------------


@runtime_checkable
class ReplayCache(Protocol):
    """Remembers the proofs already used (RFC 9449 §11.1).  Shared by every worker of an
    API (e.g. backed by Redis ``SET NX PX``) for replay protection across them."""

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); False if it is already
        recorded and not expired.  Must be atomic."""
        ...


class MemoryReplayCache:
    """In-process :class:`ReplayCache`, thread-safe.  At ``max_entries`` the entries
    closest to expiry go first (they are the oldest proofs)."""

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryReplayCache(entries={len(self._seen)}, max_entries={self.max_entries})"

    def first_use(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            until = self._seen.get(key)
            if until is not None and until > now:
                return False
            self._seen[key] = expires_at
            self._seen.move_to_end(key)
            self._purge(now)
            return True

    def _purge(self, now: float) -> None:
        while self._seen:
            key, until = next(iter(self._seen.items()))
            if until > now and len(self._seen) <= self.max_entries:
                return
            del self._seen[key]


@runtime_checkable
class NonceSource(Protocol):
    """Issues and checks the resource server's DPoP nonces (RFC 9449 §9)."""

    def issue(self) -> str:
        """A nonce for the ``DPoP-Nonce`` header."""
        ...

    def valid(self, nonce: str) -> bool:
        """Whether a proof's ``nonce`` is one of ours and still fresh."""
        ...


class HmacNonceSource:
    """Stateless nonces: the issue time and an HMAC-SHA256 of it under ``secret``, valid
    for ``lifetime`` seconds.  Give every worker of an API the same ``secret`` (32 random
    bytes by default, so per process)."""

    def __init__(
        self,
        secret: bytes | None = None,
        *,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is not None and len(secret) < 16:
            raise ValueError("a nonce secret needs at least 16 bytes")
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime = lifetime
        self._clock = clock

    def __repr__(self) -> str:
        return f"HmacNonceSource(lifetime={self.lifetime!r})"

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, b"dpop-nonce\x1f" + stamp, hashlib.sha256).digest()[:16]

    def issue(self) -> str:
        stamp = int(self._clock()).to_bytes(8, "big")
        return b64url(stamp) + "." + b64url(self._mac(stamp))

    def valid(self, nonce: str) -> bool:
        stamp_b64, _, mac_b64 = nonce.partition(".")
        try:
            stamp, mac = _b64decode(stamp_b64), _b64decode(mac_b64)
        except (binascii.Error, ValueError):
            return False
        if len(stamp) != 8 or not hmac.compare_digest(mac, self._mac(stamp)):
            return False
        age = self._clock() - int.from_bytes(stamp, "big")
        return -5.0 <= age <= self.lifetime


# -- the verifier ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedProof:
    """A proof that passed every check that does not need the token's claims."""

    jkt: str
    jti: str
    iat: float
    claims: Mapping[str, Any]


def _parse_header(header_b64: str) -> dict[str, Any]:
    try:
        header = orjson.loads(_b64decode(header_b64))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidDPoPProof("malformed DPoP proof") from None
    if not isinstance(header, dict):
        raise InvalidDPoPProof("malformed DPoP proof")
    return header


def _fits(alg: str, jwk: Mapping[str, Any], key: Any) -> bool:
    """Whether ``alg`` may be used with ``jwk`` (RFC 7518 §3, RFC 8037 §3.1)."""
    kty = jwk.get("kty")
    if alg in _EC_ALG_CURVE:
        return kty == "EC" and jwk.get("crv") == _EC_ALG_CURVE[alg]
    if alg == "EdDSA":
        return kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448")
    size = getattr(key, "key_size", 0)
    return kty == "RSA" and isinstance(size, int) and size >= _MIN_RSA_BITS


def _public_key(alg: str, jwk: Any) -> tuple[jwt.PyJWK, str]:
    """The proof's ``jwk`` header as a verification key (RFC 9449 §4.3 steps 5-7), with
    its RFC 7638 thumbprint."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in THUMBPRINT_MEMBERS:
        raise InvalidDPoPProof("the DPoP proof has no usable public jwk")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDPoPProof("the DPoP proof's jwk holds a private key")
    try:
        jkt = jwk_thumbprint(jwk)
        key = jwt.PyJWK(jwk, algorithm=alg)
    except Exception:  # any malformed member: this is client input, never a 500
        raise InvalidDPoPProof("the DPoP proof has no usable public jwk") from None
    if not _fits(alg, jwk, key.key):
        raise InvalidDPoPProof("the DPoP proof's alg does not fit its key")
    return key, jkt


def _str_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidDPoPProof(f"the DPoP proof lacks {name}")
    return value


class DPoPVerifier:
    """Checks DPoP proofs for one API (RFC 9449 §4.3, §7.1).

    ``algorithms``: accepted proof algorithms (asymmetric only; advertised in the
    challenges' ``algs``).  ``max_age``: how old a proof's ``iat`` may be; ``leeway``: how
    far ahead of our clock.  ``replay_cache``: where used ``jti`` values are remembered
    (:class:`MemoryReplayCache` by default: per process).  ``nonces``: a
    :class:`NonceSource` to require server nonces (RFC 9449 §9; off by default).
    ``public_url``: the API's external base URL (``https://api.example.ge``, with a path
    prefix if any) when a proxy changes the scheme, host or port the app sees; ``htu`` is
    then checked against it plus the request path.
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_DPOP_ALGORITHMS,
        max_age: float = 60.0,
        leeway: float = 5.0,
        replay_cache: ReplayCache | None = None,
        nonces: NonceSource | None = None,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        algs = tuple(algorithms)
        bad = [a for a in algs if a not in _SUPPORTED]
        if bad or not algs:
            raise ValueError(f"unsupported DPoP algorithms {bad!r}: one of {sorted(_SUPPORTED)}")
        self.algorithms = algs
        self.max_age = max_age
        self.leeway = leeway
        self.replay_cache: ReplayCache = replay_cache or MemoryReplayCache(clock=clock)
        self.nonces = nonces
        self.public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"DPoPVerifier(algorithms={self.algorithms!r}, max_age={self.max_age!r}, "
            f"nonces={self.nonces!r}, public_url={self.public_url!r})"
        )

    def expected_htu(self, url: str, path: str | None = None) -> str:
        """The ``htu`` a proof must carry for a request to ``url`` (``path``: the raw
        request path, used with ``public_url``)."""
        if self.public_url is not None:
            raw = path if path is not None else urlsplit(url).path
            return normalize_htu(self.public_url + raw)
        return normalize_htu(url)

    # -- step 1: the proof alone ----------------------------------------------------------
    def check(
        self,
        proofs: Sequence[str],
        *,
        method: str,
        url: str,
        access_token: str,
        path: str | None = None,
    ) -> CheckedProof:
        """RFC 9449 §4.3 steps 1-12 for the ``DPoP`` header values ``proofs`` of a request
        (``method``, ``url``) presenting ``access_token``.  Raises
        :class:`InvalidDPoPProof`, or :class:`UseDPoPNonce` when a nonce is required and
        missing or stale.  Nothing is recorded: see :meth:`bind` and :meth:`remember`."""
        if len(proofs) != 1:
            raise InvalidDPoPProof("no DPoP proof" if not proofs else "more than one DPoP header")
        proof = proofs[0].strip()
        if len(proof) > _MAX_PROOF or proof.count(".") != 2:
            raise InvalidDPoPProof("malformed DPoP proof")
        header_b64, payload_b64, sig_b64 = proof.split(".")
        header = _parse_header(header_b64)
        alg = self._check_header(header)
        key, jkt = _public_key(alg, header.get("jwk"))
        try:
            signature = _b64decode(sig_b64)
            signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
            valid = key.Algorithm.verify(signing_input, key.key, signature)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            valid = False
        if not valid:
            raise InvalidDPoPProof("invalid DPoP proof signature")
        claims = self._claims(payload_b64)
        try:
            expected = self.expected_htu(url, path)
        except ValueError:  # a Host header no URL can carry
            raise InvalidDPoPProof("the DPoP proof's htu is not the request URL") from None
        iat = self._check_claims(claims, method, expected, access_token)
        return CheckedProof(jkt=jkt, jti=_str_claim(claims, "jti"), iat=iat, claims=claims)

    def _check_header(self, header: Mapping[str, Any]) -> str:
        """RFC 9449 §4.3 steps 4-5: ``typ`` and ``alg``; no ``crit`` we cannot honour."""
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
            raise InvalidDPoPProof("the DPoP proof's typ is not dpop+jwt")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidDPoPProof("DPoP proof algorithm not allowed")
        if "crit" in header:
            raise InvalidDPoPProof("unsupported critical header parameters")
        return alg

    @staticmethod
    def _claims(payload_b64: str) -> dict[str, Any]:
        try:
            claims = orjson.loads(_b64decode(payload_b64))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InvalidDPoPProof("malformed DPoP proof") from None
        if not isinstance(claims, dict):
            raise InvalidDPoPProof("malformed DPoP proof")
        return claims

    def _check_claims(
        self, claims: Mapping[str, Any], method: str, htu: str, access_token: str
    ) -> float:
        """RFC 9449 §4.3 steps 3, 8-12; returns ``iat``."""
        _str_claim(claims, "jti")
        if _str_claim(claims, "htm") != method.upper():
            raise InvalidDPoPProof("the DPoP proof's htm is not the request method")
        try:
            claimed = normalize_htu(_str_claim(claims, "htu"))
        except ValueError:
            claimed = None
        if claimed != htu:
            raise InvalidDPoPProof("the DPoP proof's htu is not the request URL")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise InvalidDPoPProof("the DPoP proof lacks iat")
        now = self._clock()
        if iat > now + self.leeway or iat < now - self.max_age - self.leeway:
            raise InvalidDPoPProof("the DPoP proof's iat is outside the accepted window")
        ath = _str_claim(claims, "ath")
        if not hmac.compare_digest(ath.encode(), access_token_hash(access_token).encode()):
            raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
        self._check_nonce(claims.get("nonce"))
        return float(iat)

    def _check_nonce(self, nonce: Any) -> None:
        """RFC 9449 §9: with a nonce source, a proof must carry one of its fresh nonces."""
        if self.nonces is None:
            return
        if not isinstance(nonce, str) or not self.nonces.valid(nonce):
            raise UseDPoPNonce(
                "a DPoP nonce is required" if nonce is None else "the DPoP nonce is stale",
                nonce=self.nonces.issue(),
            )

    # -- step 2: with the token's claims -------------------------------------------------
    def bind(self, proof: CheckedProof, claims: Mapping[str, Any]) -> None:
        """RFC 9449 §7.1: the token must be DPoP-bound (``cnf.jkt``) to the proof's key."""
        jkt = cnf_jkt(claims)
        if jkt is None:
            raise InvalidToken("the access token is not DPoP-bound")
        if not hmac.compare_digest(jkt.encode(), proof.jkt.encode()):
            raise InvalidDPoPProof("the DPoP proof's key is not the one the token is bound to")

    def remember(self, proof: CheckedProof) -> None:
        """RFC 9449 §11.1: a proof is used once.  Its ``jti`` is remembered (with its key)
        until its ``iat`` leaves the accepted window."""
        key = hashlib.sha256(f"{proof.jkt}\x1f{proof.jti}".encode()).hexdigest()
        until = proof.iat + self.max_age + 2 * self.leeway
        if not self.replay_cache.first_use(key, until):
            raise InvalidDPoPProof("the DPoP proof was already used")


def check_mode(mode: str) -> DPoPMode:
    """``mode`` if it is a :data:`DPoPMode`, else ValueError."""
    if mode not in _MODES:
        raise ValueError(f"dpop must be one of {_MODES}")
    return mode  # type: ignore[return-value]
