"""DPoP, RFC 9449: checking a proof, binding tokens to its key, server-provided nonces.

A DPoP proof is a JWT the client signs with a key of its own and sends in the ``DPoP``
header; the public key is in the JWT's ``jwk`` header. :class:`DpopVerifier` checks a
proof exactly as RFC 9449 §4.3 lists, and answers the key's RFC 7638 thumbprint
(``jkt``), which the token endpoint binds the tokens it issues to (§5, §6): a JWT access
token carries ``cnf: {"jkt": ...}`` (§6.1), a stored one keeps it for introspection
(§6.2), and a public client's refresh tokens accept only proofs of that key (§5).

Each proof is accepted once: its ``jti`` is remembered, by every instance sharing the
:class:`~tokensmith.core.ports.ReplayCache`, for as long as its ``iat`` is acceptable
(§11.1). With ``require_nonce``, a proof must also carry a nonce the server handed out
(§8): :class:`DpopNonces` are stateless, an HMAC of a time slot under a key derived from
the server's secret key, so every instance sharing the key makes and accepts the same
ones. No HTTP and no SQL here; the web layer passes the header values, method and URI
(:class:`~tokensmith.core.requests.DpopRequest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokensmith.core.clock import Clock
from tokensmith.core.errors import InvalidDpopProof, InvalidGrant, UseDpopNonce
from tokensmith.core.jws import JwsKey, JwsKeys
from tokensmith.core.models import Client
from tokensmith.core.ports import ReplayCache
from tokensmith.core.requests import DpopRequest, TokenRequest
from tokensmith.core.uris import split_uri
from tokensmith.jwk import access_token_hash, b64url, jwk_thumbprint

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DPOP_TOKEN_TYPE",
    "SUPPORTED_ALGORITHMS",
    "DpopNonces",
    "DpopPolicy",
    "DpopProof",
    "DpopVerifier",
    "access_token_hash",
    "check_code_binding",
    "check_refresh_binding",
    "jkt_of",
    "jwk_thumbprint",
    "normalize_htu",
    "proof_key",
]

#: RFC 9449 §5.1: the ``token_type`` of a DPoP-bound access token.
DPOP_TOKEN_TYPE = "DPoP"
#: §4.2: the ``typ`` of every proof.
PROOF_TYPE = "dpop+jwt"
#: The asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) a proof may be signed
#: with, and the key type (and curve) each needs. Never ``none`` or an HMAC (§4.3).
_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
SUPPORTED_ALGORITHMS = tuple(_KEY_TYPES)
#: FAPI 2.0 Security Profile §5.4.1: PS256, ES256 and EdDSA (Ed25519).
DEFAULT_ALGORITHMS = ("ES256", "PS256", "EdDSA")
#: FAPI 2.0 §5.4.1: RSA keys of 2048 bits or more.
MIN_RSA_BITS = 2048
#: RFC 7638 §3.2: the members of a thumbprint, per key type, in lexicographic order.
#: Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: A proof longer than this is refused unread (an RSA-4096 proof is under 2,000).
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
#: Seconds of a nonce's time slot; a nonce of the slot before or after is accepted too.
NONCE_LIFETIME = 120
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: Keys made from JWKs, by JWK and algorithm; a client signs many proofs with one.
_KEY_CACHE_SIZE = 1024
_HTU_CACHE_SIZE = 64
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def jkt_of(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` of a JWT's claims (RFC 9449 §6.1), if it has one."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def normalize_htu(uri: str) -> str | None:
    """An HTTP URI as RFC 9449 §4.3 compares them: without query and fragment, after the
    syntax- and scheme-based normalization of RFC 3986 §6.2.2-6.2.3 (lowercase scheme and
    host, no default port, ``/`` for an empty path, percent-encodings in uppercase and
    unreserved characters decoded). ``None`` if it is not an absolute http(s) URI."""
    parts = split_uri(uri)
    if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PERCENT.sub(_percent, parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


@dataclass(frozen=True, slots=True)
class DpopPolicy:
    """What a proof must satisfy beyond its form (RFC 9449 §4.3, §11.1)."""

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    #: Seconds after its ``iat`` a proof is still accepted.
    max_age: int = 60
    #: Seconds a proof's ``iat`` may be ahead of the server's clock.
    leeway: int = 5
    #: §8: proofs must carry a nonce of :class:`DpopNonces`.
    require_nonce: bool = False

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in _KEY_TYPES]
        if unknown or not self.algorithms:
            raise ValueError(f"DPoP algorithms must be among {', '.join(SUPPORTED_ALGORITHMS)}")
        if self.max_age < 1 or self.leeway < 0:
            raise ValueError("max_age must be positive and leeway not negative")


class DpopNonces:
    """RFC 9449 §8 server-provided nonces without server state: the nonce of a time slot of
    ``lifetime`` seconds is an HMAC of the slot's number. A nonce of the current slot, the
    one before (so a nonce lives ``lifetime`` to twice that) or the one after (an instance
    whose clock is a little ahead) is accepted."""

    __slots__ = ("_clock", "_key", "_lifetime", "_slot", "_value")

    def __init__(self, key: bytes, clock: Clock, lifetime: int = NONCE_LIFETIME) -> None:
        if lifetime < 1:
            raise ValueError("a nonce lifetime is at least one second")
        self._key = key
        self._clock = clock
        self._lifetime = lifetime
        self._slot = -1
        self._value = ""

    def __repr__(self) -> str:
        return f"DpopNonces(lifetime={self._lifetime})"

    @classmethod
    def from_secret(cls, secret: str, clock: Clock, lifetime: int = NONCE_LIFETIME) -> DpopNonces:
        """The key derived from a server secret key (HKDF-SHA256, RFC 5869)."""
        hkdf = HKDF(hashes.SHA256(), length=32, salt=None, info=b"tokensmith/dpop-nonce")
        return cls(hkdf.derive(secret.encode("utf-8")), clock, lifetime)

    def _of(self, slot: int) -> str:
        mac = hmac.new(self._key, slot.to_bytes(8, "big", signed=True), hashlib.sha256)
        return b64url(mac.digest()[:24])

    def current(self) -> str:
        """The nonce to hand out now (``DPoP-Nonce``)."""
        slot = int(self._clock.now() // self._lifetime)
        if slot != self._slot:
            self._slot, self._value = slot, self._of(slot)
        return self._value

    def accepts(self, nonce: object) -> bool:
        if not isinstance(nonce, str) or not nonce:
            return False
        slot = int(self._clock.now() // self._lifetime)
        return any(hmac.compare_digest(nonce, self._of(s)) for s in (slot, slot - 1, slot + 1))


@dataclass(frozen=True, slots=True)
class DpopProof:
    """A proof that passed every check: its key's thumbprint, ``jti`` and ``iat``."""

    jkt: str
    jti: str
    iat: float


@dataclass(frozen=True, slots=True)
class _Jws:
    """A compact JWS (RFC 7515 §7.1) split and decoded, its signature not yet checked."""

    header: dict[str, Any]
    signing_input: bytes
    payload: bytes
    signature: bytes


def _segment(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _one_proof(values: Sequence[str]) -> _Jws:
    """§4.3 (1)-(2), (4): exactly one ``DPoP`` header, holding one well-formed JWS whose
    ``typ`` is ``dpop+jwt`` and that asks for no extension (RFC 7515 §4.1.11 ``crit``)."""
    if len(values) != 1:
        raise InvalidDpopProof("send exactly one DPoP header")
    value = values[0].strip()
    if not value or len(value) > MAX_PROOF_LENGTH or value.count(".") != 2:
        raise InvalidDpopProof("the DPoP header is not one JWT")
    head, body, signature = value.split(".")
    try:
        header = orjson.loads(_segment(head))
        jws = _Jws(header, f"{head}.{body}".encode("ascii"), _segment(body), _segment(signature))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidDpopProof("the DPoP proof is not a well-formed JWT") from None
    if not isinstance(header, dict):
        raise InvalidDpopProof("the DPoP proof is not a well-formed JWT")
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDpopProof(f"the DPoP proof's typ must be {PROOF_TYPE}")
    if "crit" in header:
        raise InvalidDpopProof("the DPoP proof asks for an extension this server lacks (crit)")
    return jws


def _public_jwk(header: Mapping[str, Any], alg: str) -> dict[str, Any]:
    """§4.3 (7): ``jwk`` is a public key, of the type ``alg`` signs with."""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDpopProof("the DPoP proof has no jwk header")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDpopProof("the DPoP proof's jwk holds a private key")
    kty, curves = _KEY_TYPES[alg]
    crv = jwk.get("crv")
    if jwk.get("kty") != kty or (
        curves is not None and (not isinstance(crv, str) or crv not in curves)
    ):
        raise InvalidDpopProof(f"the DPoP proof's jwk is not a key for {alg}")
    return jwk


def _verified_claims(jws: _Jws, key: JwsKey) -> dict[str, Any]:
    """§4.3 (6): the signature verifies with the ``jwk``; the claims are a JSON object."""
    if not key.verify(jws.signing_input, jws.signature):
        raise InvalidDpopProof("the DPoP proof's signature does not verify")
    try:
        claims = orjson.loads(jws.payload)
    except orjson.JSONDecodeError:
        claims = None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("the DPoP proof's claims are not a JSON object")
    return claims


def _check_request(claims: Mapping[str, Any], req: DpopRequest, expected_htu: str | None) -> str:
    """§4.3 (3), (8), (9): ``jti``, ``htm`` naming the method and ``htu`` naming the URI;
    returns the ``jti``."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDpopProof("the DPoP proof needs a jti")
    if claims.get("htm") != req.method:
        raise InvalidDpopProof(f"the DPoP proof's htm must be {req.method}")
    htu = claims.get("htu")
    if expected_htu is None or not isinstance(htu, str):
        raise InvalidDpopProof(f"the DPoP proof's htu must be {req.uri}")
    if htu != req.uri and normalize_htu(htu) != expected_htu:
        raise InvalidDpopProof(f"the DPoP proof's htu must be {req.uri}")
    return jti


def _check_ath(claims: Mapping[str, Any], access_token: str) -> None:
    """§4.3 (12): with an access token, ``ath`` is its hash."""
    ath = claims.get("ath")
    if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
        raise InvalidDpopProof("the DPoP proof's ath is not the access token's hash")


def _replay_key(jkt: str, jti: str) -> str:
    """The replay cache's key of a proof: its ``jti`` under its key (62 characters)."""
    digest = hashlib.sha256(f"{jkt}.{jti}".encode("utf-8", "surrogatepass")).hexdigest()
    return "dpop:" + digest[:57]


class DpopVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) and remembers their ``jti`` (§11.1)."""

    def __init__(
        self,
        policy: DpopPolicy,
        clock: Clock,
        replay: ReplayCache,
        nonces: DpopNonces | None = None,
    ) -> None:
        if policy.require_nonce and nonces is None:
            raise ValueError("require_nonce needs DpopNonces")
        self.policy = policy
        self._clock = clock
        self._replay = replay
        self._nonces = nonces
        #: The proofs' keys, made once per JWK and algorithm.
        self._keys = JwsKeys(_KEY_CACHE_SIZE)
        self._htus: dict[str, str | None] = {}

    @property
    def nonce(self) -> str | None:
        """The nonce to send in ``DPoP-Nonce`` when nonces are required, else ``None``."""
        if self._nonces is None or not self.policy.require_nonce:
            return None
        return self._nonces.current()

    async def aclose(self) -> None:
        """Close the replay cache (at shutdown)."""
        await self._replay.aclose()

    async def verify(self, req: DpopRequest, access_token: str | None = None) -> DpopProof:
        """Every check of §4.3, then the ``jti`` is remembered: a proof is accepted once.
        Raises :class:`InvalidDpopProof`, or :class:`UseDpopNonce` for a valid proof
        without a good nonce (§8)."""
        jws = _one_proof(req.proofs)
        alg = self._algorithm(jws.header)
        jkt, key = self._key(_public_jwk(jws.header, alg), alg)
        claims = _verified_claims(jws, key)
        jti = _check_request(claims, req, self._expected_htu(req.uri))
        iat = self._check_time(claims)
        if access_token is not None:
            _check_ath(claims, access_token)
        self._check_nonce(claims)
        expires_at = math.floor(iat) + self.policy.max_age + 1
        if not await self._replay.first_use(_replay_key(jkt, jti), expires_at):
            raise InvalidDpopProof("the DPoP proof was used before", reason="dpop_replay")
        return DpopProof(jkt, jti, iat)

    def _algorithm(self, header: Mapping[str, Any]) -> str:
        """§4.3 (5): an asymmetric algorithm this server accepts (never ``none``)."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.policy.algorithms:
            allowed = ", ".join(self.policy.algorithms)
            raise InvalidDpopProof(f"the DPoP proof's alg must be one of {allowed}")
        return alg

    def _key(self, jwk: dict[str, Any], alg: str) -> tuple[str, JwsKey]:
        """The RFC 7638 thumbprint of ``jwk`` and its verification key, both made once per
        key and algorithm (:class:`~tokensmith.core.jws.JwsKeys`)."""
        try:
            key = self._keys.get(jwk, alg)
            jkt = key.thumbprint()
        except ValueError:
            raise InvalidDpopProof("the DPoP proof's jwk is not a valid key") from None
        if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            raise InvalidDpopProof(f"the DPoP proof's RSA key is under {MIN_RSA_BITS} bits")
        return jkt, key

    def _expected_htu(self, uri: str) -> str | None:
        if uri in self._htus:
            return self._htus[uri]
        normal = normalize_htu(uri)
        if len(self._htus) < _HTU_CACHE_SIZE:
            self._htus[uri] = normal
        return normal

    def _check_time(self, claims: Mapping[str, Any]) -> float:
        """§4.3 (11), §11.1: ``iat`` within ``max_age`` before now, ``leeway`` after."""
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidDpopProof("the DPoP proof needs an iat")
        now = self._clock.now()
        if iat < now - self.policy.max_age:
            raise InvalidDpopProof("the DPoP proof is too old (iat)", reason="dpop_stale")
        if iat > now + self.policy.leeway:
            raise InvalidDpopProof("the DPoP proof's iat is in the future", reason="dpop_stale")
        return float(iat)

    def _check_nonce(self, claims: Mapping[str, Any]) -> None:
        """§4.3 (10), §8: when nonces are required, one this server handed out lately."""
        if self._nonces is None or not self.policy.require_nonce:
            return
        if not self._nonces.accepts(claims.get("nonce")):
            raise UseDpopNonce(self._nonces.current())


async def proof_key(verifier: DpopVerifier | None, req: TokenRequest, client: Client) -> str | None:
    """RFC 9449 §5: the key the tokens of this request are bound to, from its proof;
    ``None`` without one, unless the client must use DPoP (§5.2
    ``dpop_bound_access_tokens``)."""
    if req.dpop is None:
        if client.require_dpop:
            raise InvalidDpopProof("this client must send a DPoP proof", reason="dpop_required")
        return None
    if verifier is None:
        raise InvalidDpopProof("DPoP is not enabled on this server", reason="dpop_disabled")
    return (await verifier.verify(req.dpop)).jkt


def check_code_binding(bound: str | None, presented: str | None) -> None:
    """RFC 9449 §10: a code bound to a DPoP key (``dpop_jkt``, or the key of the proof
    sent with the push, §10.1) is exchanged only with a proof of that key; else
    ``invalid_grant``, and the code is not spent."""
    if bound is None:
        return
    if presented is None:
        raise InvalidGrant(
            "the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof of it",
            reason="dpop_key_missing",
        )
    if not hmac.compare_digest(bound, presented):
        raise InvalidGrant(
            "the DPoP proof is not signed with the key the authorization code is bound to",
            reason="dpop_key_mismatch",
        )


def check_refresh_binding(bound: str | None, presented: str | None) -> None:
    """RFC 9449 §5: a refresh token bound to a key (a public client's) is exchanged only
    with a proof of that key."""
    if bound is None:
        return
    if presented is None:
        raise InvalidGrant(
            "the refresh token is bound to a DPoP key: send a DPoP proof of it",
            reason="dpop_key_missing",
        )
    if not hmac.compare_digest(bound, presented):
        raise InvalidGrant(
            "the DPoP proof is not signed with the key the refresh token is bound to",
            reason="dpop_key_mismatch",
        )
