"""RFC 8414 metadata, the JWK Set, health, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.profile import advertised_auth_methods
from tokensmith.web.compose import mtls_methods
from tokensmith.web.context import AppContext, ctx_of
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.dialects.oauth import json_response
from tokensmith.web.openapi import openapi_document

__all__ = ["healthz", "jwks", "metadata", "metrics", "openapi"]


def server_metadata(ctx: AppContext) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata: what the configuration enables, and
    under the FAPI 2.0 profile only what it allows."""
    iss = ctx.settings.issuer_url
    auth_methods = advertised_auth_methods(
        ctx.settings.profile,
        public=False,
        mtls=mtls_methods(ctx.settings),
        secret_jwt=ctx.settings.client_secret_jwt,
    )
    body: dict[str, Any] = {
        "issuer": iss,
        "token_endpoint": iss + "/oauth/token",
        "jwks_uri": iss + "/.well-known/jwks.json",
        "introspection_endpoint": iss + "/oauth/introspect",
        "revocation_endpoint": iss + "/oauth/revoke",
        "grant_types_supported": sorted(ctx.service.grants),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "service_documentation": iss + "/openapi.json",
    }
    body.update(ctx.metadata)
    if "authorization_details_types_supported" in body:  # the CLI's types, as of now
        body["authorization_details_types_supported"] = ctx.details.supported
    return body


async def metadata(request: Request) -> Response:
    return json_response(server_metadata(ctx_of(request)), 200, {"cache-control": "max-age=300"})


async def jwks(request: Request) -> Response:
    """RFC 7517 §5: every key that signs or still verifies live tokens."""
    codec = await ctx_of(request).service.keyring.codec()
    return json_response(codec.jwks(), 200, {"cache-control": "max-age=300"})


async def healthz(request: Request) -> Response:
    """200 when the database answers, else 503 naming the error (the cause of an outage).
    For Kubernetes, ``/livez`` and ``/readyz`` (:mod:`tokensmith.web.endpoints.probes`)."""
    failure = await ctx_of(request).health.failure()
    if failure is not None:
        return json_response({"status": "error", "database": failure}, 503)
    return json_response({"status": "ok"})


async def metrics(request: Request) -> Response:
    return Response(
        ctx_of(request).observer.exposition(),
        200,
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


async def openapi(request: Request) -> Response:
    ctx = ctx_of(request)
    enabled = {name: DIALECT_PATHS[name] for name in ctx.settings.compat}
    registration = ctx.settings.registration != "off"
    return json_response(openapi_document(ctx.settings.issuer_url, enabled, registration))
