"""Wiring of DPoP (RFC 9449) into the app: the proof verifier, its replay cache, and the
``DPoP`` header of token requests.

:func:`install_dpop` is called by :func:`tokensmith.web.app.build_context`: the verifier
(:class:`~tokensmith.core.dpop.DpopVerifier`) goes to ``ctx.service.dpop`` and the
metadata names the accepted algorithms (RFC 9449 §5.1). The replay cache that keeps the
proofs' ``jti`` is Redis when ``redis_url`` is set, else the database, so that every
instance (and every worker) refuses a proof another one accepted.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from tokensmith.core.dpop import DpopNonces, DpopPolicy, DpopVerifier
from tokensmith.core.ports import ReplayCache
from tokensmith.core.requests import DpopRequest
from tokensmith.settings import Settings
from tokensmith.storage.replay import MemoryReplayCache, RedisReplayCache
from tokensmith.storage.sql.replay import SqlReplayCache
from tokensmith.web.context import AppContext

__all__ = ["DPOP_NONCE_HEADER", "dpop_request", "install_dpop", "replay_cache"]

#: RFC 9449 §8: the response header that carries the server's nonce.
DPOP_NONCE_HEADER = "dpop-nonce"


def replay_cache(ctx: AppContext) -> ReplayCache:
    """Redis if configured, else the store's database, else (an in-memory store) memory."""
    if ctx.redis is not None:
        return RedisReplayCache(ctx.redis, ctx.clock, ctx.settings.redis_prefix + "replay:")
    engine = getattr(ctx.store, "engine", None)
    if isinstance(engine, AsyncEngine):
        return SqlReplayCache(engine, ctx.clock)
    return MemoryReplayCache(ctx.clock)


def install_dpop(ctx: AppContext, secret: str) -> None:
    """The verifier on the token service; ``secret`` (the server's secret key, shared by
    every instance) keys the nonces."""
    s = ctx.settings
    policy = DpopPolicy(
        algorithms=tuple(s.dpop_signing_algs),
        max_age=s.dpop_proof_max_age,
        leeway=s.dpop_proof_leeway,
        require_nonce=s.dpop_nonce,
    )
    nonces = DpopNonces.from_secret(secret, ctx.clock) if s.dpop_nonce else None
    ctx.service.dpop = DpopVerifier(policy, ctx.clock, replay_cache(ctx), nonces)
    ctx.extras.setdefault("metadata", {})["dpop_signing_alg_values_supported"] = list(
        policy.algorithms
    )


def dpop_request(request: Request, settings: Settings, path: str) -> DpopRequest | None:
    """The request's ``DPoP`` headers, every one of them (RFC 9449 §4.3 refuses more than
    one), with the method and the URI the proof must name: ``path`` at the issuer URL
    (whatever host name the request used); ``None`` without a header."""
    values = [v for k, v in request.scope["headers"] if k == b"dpop"]  # as Headers.getlist
    if not values:
        return None
    proofs = tuple(v.decode("latin-1") for v in values)
    return DpopRequest(proofs, request.method, settings.issuer_url + path)
