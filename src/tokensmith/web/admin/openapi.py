"""The OpenAPI 3.1 document of the admin API (``/admin/v1/openapi.json``), made from the
operation table (:data:`~tokensmith.web.admin.resources.OPERATIONS`) and the pydantic
models the handlers parse and render with: every operation, parameter, body, answer and
error is the one served."""

from __future__ import annotations

import re
from functools import cache
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tokensmith.core.admin_api import ADMIN_ALL, ADMIN_SCOPES
from tokensmith.web.admin.framework import PREFIX, Operation
from tokensmith.web.admin.resources import OPERATIONS
from tokensmith.web.admin.schemas import Problem
from tokensmith.web.dialects.problem import PROBLEM_JSON

__all__ = ["ID_PATTERN", "admin_openapi"]

#: What a path parameter (an id) may hold.
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_REF = "#/components/schemas/{model}"
_SCOPES = {
    "admin:merchants": "merchants: list, create, disable",
    "admin:users": "a merchant's users: list, create, disable",
    "admin:clients": "clients: create, change, disable, delete, rotate secrets, register keys",
    "admin:keys": "developer API keys; signing keys (platform clients only)",
    "admin:tokens": "revoke every token of a client or a merchant",
    "admin:consents": "authorized apps and consents: list, withdraw",
    "admin:audit": "the audit trail: list events",
    ADMIN_ALL: "every admin scope",
}
assert set(_SCOPES) == {*ADMIN_SCOPES, ADMIN_ALL}

_ERROR_TEXT = {
    400: "the body is not JSON",
    401: "no, or no active, access token; or a DPoP proof is missing or wrong "
    "(WWW-Authenticate says which)",
    403: "insufficient_scope, platform_only or scope_escalation",
    404: "no such object, or another merchant's",
    409: "the object exists already or is in a state that forbids this",
    413: "the body is over 64 KiB",
    415: "the body is not application/json",
    422: "validation_failed: the errors member lists the fields",
    503: "the database is unreachable; see Retry-After",
}


def _models() -> list[tuple[type[BaseModel], Any]]:
    seen: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for op in OPERATIONS:
        if op.response is not None:
            seen.append((op.response, "serialization"))
        if op.body is not None:
            seen.append((op.body, "validation"))
    unique: dict[tuple[str, str], tuple[type[BaseModel], Any]] = {}
    for model, mode in seen:
        unique[(model.__name__, mode)] = (model, mode)
    return list(unique.values())


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": ID_PATTERN},
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            prop = dict(prop)
            prop.pop("title", None)
            prop.pop("default", None)
            if "anyOf" in prop:  # optional: null is not sent as a query parameter
                prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {
                    k: v for k, v in prop.items() if k != "anyOf"
                }
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    return params


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status)] = {"description": HTTPStatus(op.status).phrase}
    else:
        responses[str(op.status)] = {
            "description": HTTPStatus(op.status).phrase,
            "content": {"application/json": {"schema": _ref(op.response)}},
        }
    for status in op.error_statuses():
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {PROBLEM_JSON: {"schema": _ref(Problem)}},
        }
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"oauth2": [op.scope]}, {"dpop": [op.scope]}],
        "parameters": _parameters(op),
        "responses": responses,
    }
    notes = [f"Scope: `{op.scope}` (or `{ADMIN_ALL}`)."]
    if op.platform_only:
        notes.append("Platform clients only (a client of no merchant).")
    doc["description"] = " ".join(notes)
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    return doc


@cache
def _document(issuer: str) -> dict[str, Any]:
    _, defs = models_json_schema(_models(), ref_template=_REF)
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tokensmith admin API",
            "version": "1",
            "description": "Merchants, users, clients, API keys, signing keys, consents and "
            "token revocation. Authenticate with an access token of this server "
            "(client_credentials) carrying the operation's admin scope.",
        },
        "servers": [{"url": issuer}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS)],
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": "RFC 6750 Bearer access token",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": issuer + "/oauth/token",
                            "scopes": _SCOPES,
                        }
                    },
                },
                "dpop": {
                    "type": "http",
                    "scheme": "DPoP",
                    "description": "RFC 9449 DPoP-bound access token with a DPoP proof "
                    "(ath: the token's hash) in the DPoP header",
                },
            },
        },
        "paths": paths,
    }


def admin_openapi(issuer: str) -> dict[str, Any]:
    """The document (made once per issuer)."""
    return _document(issuer)
