"""Sans-I/O core shared by :class:`TokenClient` and :class:`AsyncTokenClient`.

Everything here is pure: building token requests for each grant and dialect, turning
responses into tokens or typed errors, retry decisions and the renewal schedule.  The
sync and async clients only add the I/O and the locking.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import httpx
import orjson

from .assertion import JWT_BEARER, ClientSecretJwt, PrivateKeyJwt
from .cache import FileTokenCache, cache_key
from .consents import CONSENTS_SCOPE, Consent
from .dpop import DPoPKey, PrivateKey
from .errors import (
    RateLimited,
    ServerError,
    TokenError,
    UseDPoPNonce,
    error_from_response,
    parse_retry_after,
)
from .pkce import PKCE, build_authorization_url
from .stores import RefreshTokenStore
from .token import DEFAULT_LIFETIME, Token, default_margin, join_scope, parse_token_response

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_TIMEOUT",
    "AuthMethod",
    "Dialect",
    "GrantKind",
    "RetryPolicy",
    "TokenError",
]

logger = logging.getLogger("tokensmith.client")

AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
]
Dialect = Literal["oauth", "tpay", "tbc"]
GrantKind = Literal["client_credentials", "refresh_token", "authorization_code"]

_AUTH_METHODS: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post")
#: RFC 8705 §2: the client authenticates with its TLS client certificate and sends its
#: client_id alone; chosen only when asked for.
_MTLS_METHODS: tuple[AuthMethod, ...] = ("tls_client_auth", "self_signed_tls_client_auth")
#: A client certificate as httpx took it: a file holding certificate and key, or
#: (certificate file, key file), or (certificate file, key file, key password).
ClientCert = str | tuple[str, str] | tuple[str, str, str]


def tls_verify(
    cert: ClientCert | None, verify: bool | str | ssl.SSLContext
) -> bool | ssl.SSLContext:
    """What httpx's ``verify=`` takes for a connection presenting ``cert`` (mutual TLS,
    RFC 8705): an SSL context that trusts ``verify`` (``True``: the system's CAs; a path:
    that CA file) and holds the client certificate; ``verify`` itself without ``cert``
    (a CA file as a context: httpx takes no path any more)."""
    if cert is None and not isinstance(verify, str):
        return verify
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif cert is not None:
        context.load_cert_chain(*cert)
    return context


_ALL_AUTH_METHODS: tuple[AuthMethod, ...] = (
    *_AUTH_METHODS,
    "private_key_jwt",
    "client_secret_jwt",
    *_MTLS_METHODS,
)
#: What ``private_key=`` accepts: a signer, a ``cryptography`` key, PEM or a private JWK.
PrivateKeyInput = PrivateKeyJwt | PrivateKey | str | bytes | Mapping[str, Any]
#: RFC 9110 §5.6.2 token, and the ``auth-param`` value that follows ``=`` (§11.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PARAM_VALUE = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: Servers whose latest DPoP nonce is remembered (RFC 9449 §8.2, §9).
_MAX_NONCES = 256

#: Default timeouts of the HTTP clients the token clients create for themselves.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How token requests are retried.

    Connection errors and 5xx responses are retried with capped exponential backoff and
    "equal jitter" (half fixed, half random); a 429 waits for ``Retry-After``
    (RFC 9110 §10.2.3) when it is at most ``max_retry_after``, otherwise
    :class:`~tokensmith.client.RateLimited` is raised at once.  ``max_attempts`` counts
    the first try.  A refresh (RFC 6749 §6) is tried at most twice (the same refresh
    token once more, inside the server's grace window); an authorization code
    (RFC 6749 §4.1.3) is only re-sent when the first request provably never left.
    """

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay after the ``attempt``-th failure (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class _Secret:
    """A string that never shows itself in ``repr``/``str``."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class _Entry:
    """The cached token with its renewal time."""

    __slots__ = ("forced", "refresh_at", "token")

    def __init__(self, token: Token, refresh_at: float, forced: bool = False) -> None:
        self.token = token
        self.refresh_at = refresh_at
        self.forced = forced


@dataclass(frozen=True, slots=True)
class _Prepared:
    kind: GrantKind
    url: str
    headers: dict[str, str]
    data: dict[str, str]
    scope: str | None


def basic_credentials(client_id: str, client_secret: str) -> str:
    """``Authorization`` value for client_secret_basic (RFC 6749 §2.3.1): both parts are
    ``application/x-www-form-urlencoded``-encoded before base64."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """The challenges of one ``WWW-Authenticate`` value (RFC 9110 §11.6.1), as
    ``(scheme in lower case, {param name in lower case: value})``.  Lenient: what cannot
    be read is skipped."""
    out: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        found = _TOKEN.match(value, i)
        if found is None:
            i += 1
            continue
        name, i = found.group(), found.end()
        j = i
        while j < n and value[j] in " \t":
            j += 1
        if out and j < n and value[j] == "=" and not value.startswith("==", j):
            raw = _PARAM_VALUE.match(value, j + 1)
            assert raw is not None  # the pattern matches the empty string
            text = raw.group(1)
            if text.startswith('"'):
                text = re.sub(r"\\(.)", r"\1", text[1:-1])
            out[-1][1][name.lower()] = text
            i = raw.end()
        else:
            out.append((name.lower(), {}))
    return out


def _challenge_error(values: Iterable[str], error: str, schemes: tuple[str, ...]) -> bool:
    return any(
        scheme in schemes and params.get("error") == error
        for value in values
        for scheme, params in parse_challenges(value)
    )


def challenge_says_invalid_token(value: str) -> bool:
    """True if one ``WWW-Authenticate`` value has a ``Bearer`` (RFC 6750 §3.1) or ``DPoP``
    (RFC 9449 §7.1) challenge with ``error="invalid_token"``."""
    return _challenge_error([value], "invalid_token", ("bearer", "dpop"))


def is_invalid_token_challenge(response: httpx.Response) -> bool:
    """True for a 401 whose ``WWW-Authenticate`` says ``Bearer error="invalid_token"``
    (RFC 6750 §3.1) or ``DPoP error="invalid_token"`` (RFC 9449 §7.1)."""
    if response.status_code != 401:
        return False
    return _challenge_error(
        response.headers.get_list("www-authenticate"), "invalid_token", ("bearer", "dpop")
    )


def is_use_dpop_nonce_challenge(status: int, headers: Mapping[str, str]) -> bool:
    """True for a resource's 401 with ``WWW-Authenticate: DPoP error="use_dpop_nonce"``
    and a ``DPoP-Nonce`` header (RFC 9449 §9)."""
    if status != 401 or not headers.get("dpop-nonce"):
        return False
    challenge = headers.get("www-authenticate", "")
    return _challenge_error([challenge], "use_dpop_nonce", ("dpop",))


def origin_of(url: str | httpx.URL) -> str:
    """``scheme://host:port`` of ``url``: the server a DPoP nonce belongs to."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{parsed.host}:{port}"


def is_replayable(request: httpx.Request) -> bool:
    """Whether ``request`` can be sent a second time (its body is in memory)."""
    return isinstance(request.stream, httpx.ByteStream)


def metadata_urls(issuer: str) -> list[str]:
    """Candidate metadata URLs for ``issuer``: RFC 8414 §3.1 (well-known inserted between
    host and path), then the well-known appended to the issuer."""
    issuer = issuer.rstrip("/")
    parts = urlsplit(issuer)
    urls = [urlunsplit(parts._replace(path="/.well-known/oauth-authorization-server" + parts.path))]
    appended = issuer + "/.well-known/oauth-authorization-server"
    if appended not in urls:
        urls.append(appended)
    return urls


def choose_from_metadata(
    metadata: Any, issuer: str, auth_method: AuthMethod | None
) -> tuple[str, AuthMethod]:
    """Pick ``token_endpoint`` and the client authentication method from RFC 8414 §2
    metadata.  The ``issuer`` must match (RFC 8414 §3.3).  Without an explicit
    ``auth_method`` client_secret_basic is preferred; an absent
    ``token_endpoint_auth_methods_supported`` means client_secret_basic (RFC 8414 §2)."""
    if not isinstance(metadata, Mapping):
        raise TokenError("authorization server metadata is not a JSON object", error="discovery")
    got_issuer = metadata.get("issuer")
    if not isinstance(got_issuer, str) or got_issuer.rstrip("/") != issuer.rstrip("/"):
        raise TokenError(
            "authorization server metadata issuer does not match (RFC 8414 §3.3)",
            error="discovery",
        )
    endpoint = metadata.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise TokenError("authorization server metadata has no token_endpoint", error="discovery")
    supported_raw = metadata.get("token_endpoint_auth_methods_supported")
    supported = (
        [m for m in supported_raw if isinstance(m, str)]
        if isinstance(supported_raw, list)
        else ["client_secret_basic"]
    )
    if auth_method is not None:
        if auth_method not in supported:
            logger.warning("%s is not advertised by %s; using it anyway", auth_method, issuer)
        return endpoint, auth_method
    for method in _AUTH_METHODS:
        if method in supported:
            return endpoint, method
    raise TokenError(
        f"no supported client authentication method among {supported[:5]!r}",
        error="discovery",
    )


def _signer(
    method: AuthMethod,
    client_secret: str | None,
    private_key: PrivateKeyInput | None,
    key_id: str | None,
    signing_alg: str | None,
    audience: str | None,
) -> PrivateKeyJwt | ClientSecretJwt | None:
    """What signs the client's assertions (RFC 7523 §2.2), or ``None`` when it sends its
    secret (RFC 6749 §2.3.1)."""
    if method == "private_key_jwt":
        if private_key is None:
            raise ValueError("private_key_jwt needs a private_key")
        if isinstance(private_key, PrivateKeyJwt):
            if key_id or signing_alg or audience:
                raise ValueError("give key_id, signing_alg and the audience to PrivateKeyJwt")
            return private_key
        return PrivateKeyJwt(private_key, key_id=key_id, alg=signing_alg, audience=audience)
    if private_key is not None:
        raise ValueError(f"a private_key is for private_key_jwt, not {method}")
    if client_secret is None or (method == "client_secret_jwt" and not client_secret):
        raise ValueError(f"{method} needs a client_secret")
    if method == "client_secret_jwt":
        return ClientSecretJwt(client_secret, alg=signing_alg or "HS256", audience=audience)
    return None


class _ClientBase:
    """Configuration and pure logic common to both clients."""

    _dialect: Dialect

    def _setup(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        scope: str | Iterable[str] | None,
        *,
        auth_method: AuthMethod | None,
        refresh_margin: float | None,
        clock: Callable[[], float],
        retry: RetryPolicy | None,
        cache: FileTokenCache | None,
        refresh_store: RefreshTokenStore | None,
        authorization_endpoint: str | None,
        extra_params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        dialect: Dialect,
        apikey: str | None,
        metadata: Mapping[str, Any] | None,
        rng: random.Random | None,
        default_lifetime: float,
        forced_renew_interval: float,
        dpop: bool | DPoPKey = False,
        private_key: PrivateKeyInput | None = None,
        key_id: str | None = None,
        signing_alg: str | None = None,
        assertion_audience: str | None = None,
        consents_endpoint: str | None = None,
    ) -> None:
        if auth_method is None:
            auth_method = "private_key_jwt" if private_key is not None else "client_secret_basic"
        if auth_method not in _ALL_AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {_ALL_AUTH_METHODS}")
        self._signer = _signer(
            auth_method, client_secret, private_key, key_id, signing_alg, assertion_audience
        )
        if self._signer is not None and dialect != "oauth":
            raise ValueError(f"{auth_method} needs the oauth dialect")
        if dialect not in ("oauth", "tpay", "tbc"):
            raise ValueError("dialect must be 'oauth', 'tpay' or 'tbc'")
        if dialect == "tbc" and not apikey:
            raise ValueError("the tbc dialect needs an apikey")
        if refresh_margin is not None and refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = _Secret(client_secret or "")
        self._apikey = _Secret(apikey) if apikey else None
        self.scope = join_scope(scope)
        self.auth_method: AuthMethod = auth_method
        self._dialect = dialect
        self._margin = refresh_margin
        self._clock = clock
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.refresh_store = refresh_store
        self.authorization_endpoint = authorization_endpoint
        self.metadata: Mapping[str, Any] = dict(metadata or {})
        self._extra_params = dict(extra_params or {})
        self._headers = dict(headers or {})
        self._rng = rng or random.Random()
        self._default_lifetime = default_lifetime
        self._forced_renew_interval = forced_renew_interval
        self._entry: _Entry | None = None
        #: The DPoP key (RFC 9449) when tokens are DPoP-bound, else None.
        self.dpop_key: DPoPKey | None = DPoPKey.generate() if dpop is True else dpop or None
        if self.dpop_key is not None and dialect != "oauth":
            raise ValueError("DPoP needs the oauth dialect")
        self._nonces: dict[str, str] = {}
        bound = ("dpop", self.dpop_key.thumbprint) if self.dpop_key else ()
        self._cache_key = cache_key(dialect, token_url, client_id, self.scope, *bound)
        self._consents_endpoint = consents_endpoint
        #: The client's own token for its consents (scope ``consents``), apart from the
        #: token ``get_token()`` gives (which may be a user's).
        self._consents_entry: _Entry | None = None

    # -- presentation ---------------------------------------------------------------
    def __repr__(self) -> str:
        dpop = f", dpop={self.dpop_key!r}" if self.dpop_key else ""
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"scope={self.scope!r}, auth_method={self.auth_method!r}, dialect={self._dialect!r}"
            f"{dpop})"
        )

    @property
    def dialect(self) -> Dialect:
        """``oauth`` (RFC 6749), ``tpay`` or ``tbc``."""
        return self._dialect

    def _secrets(self, *more: str | None) -> list[str | None]:
        out: list[str | None] = [self._secret.value or None, *more]
        if self._apikey is not None:
            out.append(self._apikey.value)
        for entry in (self._entry, self._consents_entry):
            if entry is not None:
                out.extend((entry.token.access_token, entry.token.refresh_token))
        return out

    # -- renewal schedule -------------------------------------------------------------
    def _refresh_at(self, token: Token) -> float:
        lifetime = token.lifetime
        margin = default_margin(lifetime) if self._margin is None else self._margin
        margin = min(margin, lifetime / 2)
        return token.expires_at - margin

    def _fresh(self, token: Token, now: float) -> bool:
        return now < self._refresh_at(token)

    def _install(self, token: Token, *, forced: bool = False) -> Token:
        self._entry = _Entry(token, self._refresh_at(token), forced)
        return token

    def _cached_valid(self, now: float, rejected: Token | None) -> Token | None:
        """The cached token if it can still be used while someone else renews."""
        entry = self._entry
        if entry is None or now >= entry.token.expires_at:
            return None
        if rejected is not None and entry.token.access_token == rejected.access_token:
            return None
        return entry.token

    def _settled(
        self, now: float, rejected: Token | None, *, explicit: bool = False
    ) -> Token | None:
        """Under the renewal lock: a token that makes a new request unnecessary."""
        entry = self._entry
        if entry is None:
            return None
        if rejected is None:
            return entry.token if now < entry.refresh_at else None
        if entry.token.access_token != rejected.access_token:
            # Someone replaced the token while we waited for the lock.
            return entry.token if now < entry.token.expires_at else None
        if (
            not explicit
            and entry.forced
            and now - entry.token.issued_at < self._forced_renew_interval
        ):
            # This token came from a forced renewal moments ago and is refused again:
            # the API's problem is not our token.  Give the 401 to the caller.
            return entry.token
        return None

    def _fits(self, token: Token) -> bool:
        """Whether this client can present ``token``: a DPoP-bound one only with the key
        it is bound to (RFC 9449 §6), never as a bearer token (§7.2)."""
        if token.dpop_jkt is None:
            return True
        return self.dpop_key is not None and token.dpop_jkt == self.dpop_key.thumbprint

    def _usable_shared(self, shared: Token, rejected: Token | None, current: _Entry | None) -> bool:
        """Whether a token found in the cross-process cache can be adopted."""
        if not self._fits(shared) or not self._fresh(shared, self._clock()):
            return False
        if rejected is not None and shared.access_token == rejected.access_token:
            return False
        return current is None or shared.access_token != current.token.access_token

    def _soft_fail(self, current: _Entry | None, exc: TokenError) -> Token | None:
        """On a transient failure while the current token is still valid, keep using it
        and try again a little later."""
        if not isinstance(exc, ServerError | RateLimited) or current is None:
            return None
        now = self._clock()
        left = current.token.expires_at - now
        if left <= 0:
            return None
        pause = min(exc.retry_after or 5.0, left / 2)
        entry = _Entry(current.token, now + pause, current.forced)
        self._entry = entry
        logger.warning(
            "token renewal failed (%s); keeping the current token for %.0f more seconds",
            exc.error,
            left,
        )
        return current.token

    def _save_refresh(self, token: Token, previous: str | None) -> None:
        """Hand a new (rotated) refresh token to the store; raises if the store fails,
        so that the new access token is never used with its refresh token lost."""
        if token.refresh_token and token.refresh_token != previous:
            if self.refresh_store is None:
                return
            self.refresh_store.save(token.refresh_token)

    # -- DPoP (RFC 9449) ---------------------------------------------------------------
    def _proof(
        self, method: str, url: str | httpx.URL, access_token: str | None = None
    ) -> tuple[str, str | None]:
        """A fresh DPoP proof for one request with the server's latest nonce, if any;
        and that nonce."""
        assert self.dpop_key is not None
        nonce = self._nonces.get(origin_of(url))
        proof = self.dpop_key.proof(
            method, url, iat=self._clock(), access_token=access_token, nonce=nonce
        )
        return proof, nonce

    def _note_nonce(self, url: str | httpx.URL, headers: Mapping[str, str]) -> bool:
        """Remember a ``DPoP-Nonce`` the server sent (RFC 9449 §8.2, §9); True if new."""
        nonce = headers.get("dpop-nonce")
        if self.dpop_key is None or not nonce or len(nonce) > 1024:
            return False
        origin = origin_of(url)
        if self._nonces.get(origin) == nonce:
            return False
        if origin not in self._nonces and len(self._nonces) >= _MAX_NONCES:
            self._nonces.pop(next(iter(self._nonces)), None)  # the oldest server's
        self._nonces[origin] = nonce
        return True

    def _token_data(self, prepared: _Prepared) -> dict[str, str]:
        """The token request's form, with a new client assertion (RFC 7523 §2.2) for each
        request when the client authenticates with a JWT: each ``jti`` is used once."""
        if self._signer is None or "client_id" not in prepared.data:
            return prepared.data
        assertion = self._signer.assertion(self.client_id, prepared.url, self._clock())
        return {
            **prepared.data,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        }

    def _token_headers(self, prepared: _Prepared) -> dict[str, str]:
        """The token request's headers, with a fresh DPoP proof (RFC 9449 §5) when on."""
        if self.dpop_key is None:
            return prepared.headers
        return {**prepared.headers, "DPoP": self._proof("POST", prepared.url)[0]}

    def _nonce_retry(self, outcome: TokenError, response: httpx.Response, retried: bool) -> bool:
        """After ``use_dpop_nonce`` with a new ``DPoP-Nonce`` (RFC 9449 §8): retry once."""
        return (
            isinstance(outcome, UseDPoPNonce)
            and not retried
            and self.dpop_key is not None
            and bool(response.headers.get("dpop-nonce"))
        )

    def _authorize(self, request: httpx.Request, token: Token) -> str | None:
        """Put ``token`` on a resource request: ``Authorization: Bearer`` (RFC 6750 §2.1),
        or ``Authorization: DPoP`` with a fresh proof carrying ``ath`` (RFC 9449 §7.1).
        Returns the DPoP nonce the proof carries."""
        request.headers["Authorization"] = token.authorization
        if not token.is_dpop:
            request.headers.pop("DPoP", None)
            return None
        proof, nonce = self._proof(request.method, request.url, token.access_token)
        request.headers["DPoP"] = proof
        return nonce

    def _resource_nonce_retry(
        self, token: Token, response: httpx.Response, used: str | None
    ) -> bool:
        """Remember a resource's ``DPoP-Nonce``; True after ``use_dpop_nonce`` (RFC 9449
        §9) with a nonce other than the one the proof carried: send once more with it."""
        if not token.is_dpop:
            return False
        self._note_nonce(response.request.url, response.headers)
        return (
            is_use_dpop_nonce_challenge(response.status_code, response.headers)
            and response.headers.get("dpop-nonce") != used
        )

    # -- requests ---------------------------------------------------------------------
    def _client_auth(self, headers: dict[str, str], data: dict[str, str]) -> None:
        if self._signer is not None:
            # RFC 7521 §4.2: client_id may accompany the assertion; the assertion itself
            # is made per request (:meth:`_token_data`).
            data["client_id"] = self.client_id
        elif self.auth_method == "client_secret_basic":
            headers["Authorization"] = basic_credentials(self.client_id, self._secret.value)
        elif self.auth_method in _MTLS_METHODS:
            data["client_id"] = self.client_id  # RFC 8705 §2: the certificate authenticates
        else:
            data["client_id"] = self.client_id
            data["client_secret"] = self._secret.value

    def _prepare(self, kind: GrantKind, params: Mapping[str, str] | None = None) -> _Prepared:
        headers = {"Accept": "application/json", **self._headers}
        data: dict[str, str] = {}
        if kind == "client_credentials" and self._dialect != "oauth":
            # tpay / TBC: client_id + client_secret in the form, no grant_type.
            data["client_id"] = self.client_id
            data["client_secret"] = self._secret.value
            if self._dialect == "tpay" and self.scope:
                data["scope"] = self.scope
            if self._apikey is not None:
                headers["apikey"] = self._apikey.value
            data.update(self._extra_params)
            return _Prepared(kind, self.token_url, headers, data, self.scope)
        data["grant_type"] = kind
        if kind == "client_credentials":  # RFC 6749 §4.4.2
            if self.scope:
                data["scope"] = self.scope
            data.update(self._extra_params)
        if params:
            data.update(params)
        self._client_auth(headers, data)
        if self._apikey is not None:
            headers["apikey"] = self._apikey.value
        return _Prepared(kind, self.token_url, headers, data, self.scope)

    def _outcome(
        self, prepared: _Prepared, response: httpx.Response, *more_secrets: str | None
    ) -> Token | TokenError:
        """A token, or the error to raise / retry on.  Never raises itself."""
        now = self._clock()
        try:
            body: Any = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        status = response.status_code
        ok = 200 <= status < 300
        if ok and isinstance(body, dict) and "access_token" in body:
            try:
                return parse_token_response(
                    body,
                    now=now,
                    requested_scope=prepared.scope,
                    default_lifetime=self._default_lifetime,
                    dpop_jkt=self.dpop_key.thumbprint if self.dpop_key else None,
                )
            except TokenError as exc:
                return exc
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        if ok and not (isinstance(body, dict) and ("error" in body or "code" in body)):
            return TokenError(
                f"unexpected token response (HTTP {status}, "
                f"{response.headers.get('content-type', 'no content type')[:60]})",
                error="invalid_response",
                status_code=status,
            )
        return error_from_response(
            status,
            body if isinstance(body, dict) else None,
            retry_after=retry_after,
            secrets=self._secrets(*more_secrets),
        )

    def _max_attempts(self, kind: GrantKind) -> int:
        if kind == "refresh_token":
            return min(self.retry.max_attempts, 2)
        return self.retry.max_attempts

    def _transport_delay(
        self, prepared: _Prepared, attempt: int, exc: httpx.TransportError
    ) -> float | None:
        if isinstance(exc, httpx.UnsupportedProtocol) or attempt >= self._max_attempts(
            prepared.kind
        ):
            return None
        if prepared.kind == "authorization_code" and not isinstance(exc, _NOT_SENT):
            return None  # the code may have been spent; a retry cannot succeed
        delay = self.retry.backoff(attempt, self._rng)
        logger.warning(
            "token request to %s failed (%s); retry %d in %.2fs",
            prepared.url,
            type(exc).__name__,
            attempt,
            delay,
        )
        return delay

    def _error_delay(self, prepared: _Prepared, attempt: int, exc: TokenError) -> float | None:
        if attempt >= self._max_attempts(prepared.kind) or prepared.kind == "authorization_code":
            return None
        if isinstance(exc, RateLimited):
            if exc.retry_after is None:
                delay = self.retry.backoff(attempt, self._rng)
            elif exc.retry_after <= self.retry.max_retry_after:
                delay = exc.retry_after
            else:
                return None
        elif isinstance(exc, ServerError):
            delay = self.retry.backoff(attempt, self._rng)
        else:
            return None
        logger.warning(
            "token request to %s failed (%s); retry %d in %.2fs",
            prepared.url,
            exc.status_code or exc.error,
            attempt,
            delay,
        )
        return delay

    @staticmethod
    def _unreachable(exc: httpx.TransportError) -> ServerError:
        return ServerError(
            f"token endpoint unreachable ({type(exc).__name__})",
            error="temporarily_unavailable",
        )

    def _log_obtained(self, token: Token, kind: GrantKind) -> None:
        logger.debug(
            "obtained access token via %s (expires in %.0fs, scope=%s, rotated refresh=%s)",
            kind,
            token.lifetime,
            token.scope,
            token.refresh_token is not None,
        )

    # -- consents -------------------------------------------------------------------
    @property
    def consents_endpoint(self) -> str:
        """Where the client's consents live: ``consents_endpoint=`` if given, else
        ``{issuer}/oauth/consents`` (the metadata's issuer), else the token endpoint's
        sibling (``.../oauth/token`` -> ``.../oauth/consents``)."""
        if self._consents_endpoint:
            return self._consents_endpoint
        issuer = self.metadata.get("issuer")
        if isinstance(issuer, str) and issuer:
            return issuer.rstrip("/") + "/oauth/consents"
        base, _, last = self.token_url.rstrip("/").rpartition("/")
        if last != "token" or not base:
            raise ValueError("no consents_endpoint configured and none follows from the issuer")
        return base + "/consents"

    def _consent_url(self, consent_id: str | None = None) -> str:
        if consent_id is None:
            return self.consents_endpoint
        if not consent_id or "/" in consent_id:
            raise ValueError("not a consent id")
        return self.consents_endpoint.rstrip("/") + "/" + quote(consent_id, safe="")

    def _consents_grant(self) -> _Prepared:
        """client_credentials (RFC 6749 §4.4.2) for scope ``consents`` alone: the client
        acts for itself, whatever its own ``scope`` and ``extra_params``."""
        if self._dialect != "oauth":
            raise ValueError("consents need the oauth dialect")
        headers = {"Accept": "application/json", **self._headers}
        data = {"grant_type": "client_credentials", "scope": CONSENTS_SCOPE}
        self._client_auth(headers, data)
        return _Prepared("client_credentials", self.token_url, headers, data, CONSENTS_SCOPE)

    def _cached_consents_token(self) -> Token | None:
        entry = self._consents_entry
        if entry is not None and self._clock() < entry.refresh_at:
            return entry.token
        return None

    def _keep_consents_token(self, token: Token) -> Token:
        self._consents_entry = _Entry(token, self._refresh_at(token))
        return token

    def _consent_request(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Request:
        headers = {"Accept": "application/json", **self._headers}
        if body is None:
            return httpx.Request(method, url, headers=headers)
        headers["Content-Type"] = "application/json"
        return httpx.Request(method, url, headers=headers, content=orjson.dumps(body))

    def _consent_outcome(self, response: httpx.Response) -> Consent | TokenError | None:
        """The consent a consents endpoint answered with; None for a 204 (revoked); the
        error otherwise: the RFC 6749 §5.2-shaped body, else the RFC 6750 §3 challenge."""
        status = response.status_code
        try:
            body: Any = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        if status == 204:
            return None
        if 200 <= status < 300:
            consent = Consent.from_json(body)
            if consent is not None:
                return consent
            return TokenError(
                f"unexpected consents response (HTTP {status})",
                error="invalid_response",
                status_code=status,
            )
        if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
            found = [
                params
                for value in response.headers.get_list("www-authenticate")
                for scheme, params in parse_challenges(value)
                if scheme in ("bearer", "dpop") and "error" in params
            ]
            body = dict(found[0]) if found else None
        return error_from_response(
            status,
            body,
            retry_after=parse_retry_after(response.headers.get("retry-after"), self._clock()),
            secrets=self._secrets(),
        )

    def _consent_body(
        self, authorization_details: Iterable[Mapping[str, Any]], expires_in: int | None
    ) -> dict[str, Any]:
        details = [dict(d) for d in authorization_details]
        if not details:
            raise ValueError("a consent needs authorization_details")
        body: dict[str, Any] = {"authorization_details": details}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return body

    # -- authorization code helpers -------------------------------------------------
    def build_authorization_url(
        self,
        redirect_uri: str,
        *,
        scope: str | Iterable[str] | None = None,
        state: str | None = None,
        pkce: PKCE | None = None,
        authorization_endpoint: str | None = None,
        **extra: str,
    ) -> str:
        """The authorization request URL (RFC 6749 §4.1.1) with PKCE (RFC 7636 §4.3), and
        with DPoP the key's ``dpop_jkt`` (RFC 9449 §10).

        ``authorization_endpoint`` defaults to the one given at construction or found by
        discovery.  Keep ``state`` and ``pkce.verifier`` in the user's session.
        """
        endpoint = authorization_endpoint or self.authorization_endpoint
        if not endpoint:
            raise ValueError("no authorization_endpoint configured or discovered")
        if self.dpop_key is not None:  # RFC 9449 §10: bind the code to the key
            extra.setdefault("dpop_jkt", self.dpop_key.thumbprint)
        return build_authorization_url(
            endpoint,
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            scope=scope if scope is not None else self.scope,
            state=state,
            code_challenge=pkce.challenge if pkce else None,
            code_challenge_method=pkce.method if pkce else "S256",
            **extra,
        )

    def _code_request(self, code: str, redirect_uri: str, code_verifier: str | None) -> _Prepared:
        params = {"code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            params["code_verifier"] = code_verifier
        return self._prepare("authorization_code", params)

    def _refresh_request(self, refresh_token: str) -> _Prepared:
        return self._prepare("refresh_token", {"refresh_token": refresh_token})
