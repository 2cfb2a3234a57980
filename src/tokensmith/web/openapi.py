"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from tokensmith.core.consent_resources import STATUSES as CONSENT_STATUSES

__all__ = ["openapi_document"]

_FORM = "application/x-www-form-urlencoded"


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


_S = {"type": "string"}
_I = {"type": "integer"}

#: RFC 9449 §4: a proof on any token request binds the tokens to the client's key.
_DPOP = {
    "name": "DPoP",
    "in": "header",
    "required": False,
    "description": "RFC 9449 DPoP proof; the answer's token_type is then DPoP",
    "schema": _S,
}
_OAUTH_ERROR = _obj({"error": _S, "error_description": _S}, ["error"])
_PROBLEM = _obj(
    {"type": _S, "title": _S, "status": _S, "detail": _S, "systemCode": _S, "code": _S},
    ["type", "title", "status", "detail", "systemCode", "code"],
)
_TOKEN = _obj(
    {
        "access_token": _S,
        "token_type": _S,
        "expires_in": _I,
        "scope": _S,
        "refresh_token": _S,
        # RFC 9396 §7: the authorization_details granted, when some were requested
        "authorization_details": {"type": "array", "items": {"type": "object"}},
        # the consent resource the token acts under (docs/consents.md)
        "consent_id": _S,
    },
    ["access_token", "token_type", "expires_in"],
)
_CC_FORM = _obj(
    {
        "grant_type": _S,
        "client_id": _S,
        "client_secret": _S,
        "scope": _S,
        "code": _S,
        "redirect_uri": _S,
        "code_verifier": _S,
        "refresh_token": _S,
        "authorization_details": _S,
        # RFC 8707 §2: repeatable, an absolute URI of a registered resource
        "resource": _S,
    }
)


def _errors(
    media: str = "application/json", schema: dict[str, Any] = _OAUTH_ERROR
) -> dict[str, Any]:
    resp = {"description": "error", "content": {media: {"schema": schema}}}
    unavailable = {
        "description": "temporarily_unavailable: the database is unreachable; see Retry-After",
        "content": {media: {"schema": schema}},
    }
    return {"400": resp, "401": resp, "429": resp, "503": unavailable}


def _post(summary: str, form: dict[str, Any], ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "requestBody": {"required": True, "content": {_FORM: {"schema": form}}},
        "responses": {
            "200": {"description": "success", "content": {"application/json": {"schema": ok}}},
            **_errors(),
        },
    }
    op.update(extra)
    return op


def _authorize() -> dict[str, Any]:
    """RFC 6749 §4.1.1 with PKCE (RFC 7636) and the RFC 9207 ``iss`` response parameter."""
    names = [
        ("response_type", True),
        ("client_id", True),
        ("redirect_uri", False),
        ("scope", False),
        ("state", False),
        ("code_challenge", False),
        ("code_challenge_method", False),
        ("prompt", False),
        ("request_uri", False),
        ("dpop_jkt", False),
        ("authorization_details", False),
        ("resource", False),  # RFC 8707 §2, repeatable
        ("consent_id", False),  # a lodged consent resource, instead of authorization_details
    ]
    return {
        "summary": "RFC 6749 authorization endpoint (login and consent pages)",
        "parameters": [{"name": n, "in": "query", "required": r, "schema": _S} for n, r in names],
        "responses": {
            "200": {"description": "login or consent page", "content": {"text/html": {}}},
            "303": {"description": "redirect to the client with code, state and iss, or error"},
            "400": {"description": "unknown client or unregistered redirect_uri (no redirect)"},
            "503": {"description": "the database is unreachable (page, with Retry-After)"},
        },
    }


def _par() -> dict[str, Any]:
    """RFC 9126 §2: the authorization request's parameters, and the client's credentials
    as at the token endpoint; 201 with the ``request_uri`` to send to /oauth/authorize.
    ``dpop_jkt`` or a ``DPoP`` proof binds the code to the client's key (RFC 9449 §10)."""
    names = ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge"]
    extra = ["code_challenge_method", "prompt", "dpop_jkt", "client_secret"]
    extra += ["authorization_details", "resource", "consent_id"]
    form = _obj({n: _S for n in [*names, *extra]}, ["response_type", "client_id"])
    proof = _DPOP | {"description": "RFC 9449 §10.1 DPoP proof: the code is bound to its key"}
    op = _post(
        "RFC 9126 pushed authorization request",
        form,
        _obj({"request_uri": _S, "expires_in": _I}, ["request_uri", "expires_in"]),
        parameters=[proof],
    )
    op["responses"]["201"] = op["responses"].pop("200")
    return op


def _dialect_paths(enabled: dict[str, str]) -> dict[str, Any]:
    creds = _obj({"client_id": _S, "client_secret": _S}, ["client_id", "client_secret"])
    paths: dict[str, Any] = {}
    if "tpay" in enabled:
        tpay_ok = _obj(
            {"issued_at": _I, "scope": _S, "token_type": _S, "expires_in": _I, "access_token": _S}
        )
        paths[enabled["tpay"]] = {
            "post": _post("tpay: get an access token", creds, tpay_ok, parameters=[_DPOP])
        }
    if "tbc" in enabled:
        op = _post(
            "TBC: get an access token",
            creds,
            _obj({"access_token": _S, "expires_in": _I, "token_type": _S}),
            parameters=[{"name": "apikey", "in": "header", "required": True, "schema": _S}, _DPOP],
        )
        op["responses"].update(_errors("application/problem+json", _PROBLEM))
        paths[enabled["tbc"]] = {"post": op}
    if "dot" in enabled:
        paths[enabled["dot"]] = {
            "post": _post("client_credentials token", _CC_FORM, _TOKEN, parameters=[_DPOP])
        }
    return paths


_DETAILS = {"type": "array", "items": {"type": "object"}}
_CONSENT = _obj(
    {
        "consent_id": _S,
        "status": {"enum": list(CONSENT_STATUSES)},
        "client_id": _S,
        "authorization_details": _DETAILS,
        "created_at": _I,
        "expires_at": _I,
        "status_updated_at": _I,
    },
    [
        "consent_id",
        "status",
        "client_id",
        "authorization_details",
        "created_at",
        "expires_at",
        "status_updated_at",
    ],
)


def _consent_paths() -> dict[str, Any]:
    """The consent resource (docs/consents.md): lodged, read and revoked with the partner's
    own token (Bearer or DPoP, scope ``consents``); consumed by the resource server,
    authenticated as at /oauth/introspect."""
    json_ok = {"content": {"application/json": {"schema": _CONSENT}}}
    error = {"content": {"application/json": {"schema": _OAUTH_ERROR}}}
    denied = {
        "401": {"description": "invalid_token", **error},
        "403": {"description": "insufficient_scope", **error},
    }
    own: list[dict[str, list[str]]] = [{"bearer": []}]
    consent = [{"name": "consent_id", "in": "path", "required": True, "schema": _S}]
    lodge = _obj({"authorization_details": _DETAILS, "expires_in": _I}, ["authorization_details"])
    not_active = _obj({"error": _S, "error_description": _S, "status": _S}, ["error", "status"])
    consumed = _obj(
        {"consent_id": _S, "status": _S, "authorization_details": _DETAILS, "client_id": _S},
        ["consent_id", "status", "authorization_details", "client_id"],
    )
    consume = _post(
        "report a single-use consent consumed", _obj({"token": _S}, ["token"]), consumed
    )
    consume["responses"]["409"] = {
        "description": "consent_not_active",
        "content": {"application/json": {"schema": not_active}},
    }
    return {
        "/oauth/consents": {
            "post": {
                "summary": "lodge a consent resource",
                "security": own,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": lodge}},
                },
                "responses": {
                    "201": {"description": "awaiting authorization", **json_ok},
                    "400": {
                        "description": "invalid_request, invalid_authorization_details",
                        **error,
                    },
                    **denied,
                },
            }
        },
        "/oauth/consents/{consent_id}": {
            "parameters": consent,
            "get": {
                "summary": "a consent resource with its status now",
                "security": own,
                "responses": {
                    "200": {"description": "ok", **json_ok},
                    "404": {"description": "not_found", **error},
                    **denied,
                },
            },
            "delete": {
                "summary": "revoke a consent resource",
                "security": own,
                "responses": {
                    "204": {"description": "revoked"},
                    "404": {"description": "not_found", **error},
                    "409": {
                        "description": "consent_not_active",
                        "content": {"application/json": {"schema": not_active}},
                    },
                    **denied,
                },
            },
        },
        "/oauth/consents/consume": {"post": consume},
    }


def _registration_paths() -> dict[str, Any]:
    """RFC 7591 §3 registration and RFC 7592 §2 management (JSON bodies, Bearer tokens)."""
    meta = {"type": "object", "description": "RFC 7591 §2 client metadata"}
    body = {"required": True, "content": {"application/json": {"schema": meta}}}
    answer = {"content": {"application/json": {"schema": meta}}}
    refused = {"description": "RFC 7591 §3.2.2 error (invalid_client_metadata, ...)"}
    bad_token = {"description": "invalid_token: missing, wrong or old Bearer token"}
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    client = [{"name": "client_id", "in": "path", "required": True, "schema": _S}]
    return {
        "/oauth/register": {
            "post": {
                "summary": "RFC 7591 dynamic client registration",
                "security": [{}, *bearer],
                "requestBody": body,
                "responses": {
                    "201": {"description": "registered", **answer},
                    "400": refused,
                    "401": bad_token,
                    "413": {"description": "body too large"},
                    "429": {"description": "too many registrations from this address"},
                },
            }
        },
        "/oauth/register/{client_id}": {
            "parameters": client,
            "get": {
                "summary": "RFC 7592 read the registration",
                "security": bearer,
                "responses": {"200": {"description": "ok", **answer}, "401": bad_token},
            },
            "put": {
                "summary": "RFC 7592 replace the metadata (a new registration access token)",
                "security": bearer,
                "requestBody": body,
                "responses": {
                    "200": {"description": "ok", **answer},
                    "400": refused,
                    "401": bad_token,
                },
            },
            "delete": {
                "summary": "RFC 7592 delete the client",
                "security": bearer,
                "responses": {"204": {"description": "deleted"}, "401": bad_token},
            },
        },
    }


def openapi_document(
    issuer: str, enabled: dict[str, str], registration: bool = False
) -> dict[str, Any]:
    """The document for this server: standard endpoints plus the enabled dialects, and
    client registration when it is on."""
    token_form = _obj({"token": _S, "token_type_hint": _S}, ["token"])
    paths: dict[str, Any] = {
        "/oauth/token": {
            "post": _post("RFC 6749 token endpoint", _CC_FORM, _TOKEN, parameters=[_DPOP])
        },
        "/oauth/introspect": {
            "post": _post(
                "RFC 7662 introspection",
                token_form,
                _obj({"active": {"type": "boolean"}, "scope": _S, "client_id": _S, "exp": _I}),
            )
        },
        "/oauth/revoke": {"post": _post("RFC 7009 revocation", token_form, {})},
        "/oauth/authorize": {"get": _authorize()},
        "/oauth/par": {"post": _par()},
        "/.well-known/oauth-authorization-server": {
            "get": {"summary": "RFC 8414 metadata", "responses": {"200": {"description": "ok"}}}
        },
        "/.well-known/jwks.json": {
            "get": {"summary": "JWK Set", "responses": {"200": {"description": "ok"}}}
        },
        "/healthz": {"get": {"summary": "health", "responses": {"200": {"description": "ok"}}}},
        "/livez": {
            "get": {"summary": "liveness probe", "responses": {"200": {"description": "alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "readiness probe: database reachable, migrations current",
                "responses": {
                    "200": {"description": "ready"},
                    "503": {"description": "not ready; the body says what is wrong"},
                },
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "ok"}}}
        },
    }
    paths.update(_consent_paths())
    paths.update(_dialect_paths(enabled))
    if registration:
        paths.update(_registration_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "tokensmith", "version": "0.1.0"},
        "servers": [{"url": issuer}],
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": paths,
    }
