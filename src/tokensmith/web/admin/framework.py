"""How an admin API operation is served: one :class:`Operation` declares its method, path,
scope, bodies and errors, and serves both the route (:meth:`Operation.endpoint`) and the
OpenAPI document (:mod:`tokensmith.web.admin.openapi`), so the two cannot drift apart.

Each request: the access token (RFC 6750 §2.1 ``Bearer``, RFC 9449 §7.1 ``DPoP``) is
checked by :class:`~tokensmith.core.admin_api.AdminAccess`, then the operation's scope,
then the query and the JSON body are parsed (unknown fields refused), then the operation
calls its service and the answer is rendered through its response model. Errors are RFC
9457 problem details; every change, and every refusal of a known caller, is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.admin import AdminError
from tokensmith.core.admin_api import AdminDenied, AdminPrincipal, BadCursor
from tokensmith.core.audit import By, DetailValue
from tokensmith.core.errors import OAuthError, TemporarilyUnavailable
from tokensmith.web.context import AppContext, ctx_of, source_address
from tokensmith.web.dialects.oauth import json_response
from tokensmith.web.dialects.problem import PROBLEM_JSON
from tokensmith.web.own_token import challenge, own_token_principal

__all__ = [
    "MAX_BODY",
    "PREFIX",
    "Call",
    "Failure",
    "Operation",
    "Result",
    "problem",
]

log = logging.getLogger("tokensmith.admin")

PREFIX = "/admin/v1"
#: The largest JSON body read (a JWK Set of a few RSA keys fits many times over).
MAX_BODY = 64 * 1024
PROBLEM_BASE = "https://tokensmith.dev/problems/"
_NO_STORE = {"cache-control": "no-store"}


class Failure(Exception):
    """An operation's refusal: ``status`` and a stable ``code`` (RFC 9457 extension)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


def not_found(what: str) -> Failure:
    return Failure(404, "not_found", f"no {what}")


def from_admin_error(exc: AdminError) -> Failure:
    """The core's :class:`AdminError` by what it says: a missing object is 404, one that
    exists or is in the wrong state 409, anything else a validation failure (422)."""
    text = str(exc)
    if text.startswith("no "):
        return Failure(404, "not_found", text)
    if " exists" in text or text.endswith(("is revoked", "is disabled")):
        return Failure(409, "conflict", text)
    return Failure(422, "validation_failed", text)


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """RFC 9457 §3.1 members (``status`` a number) plus ``code`` and, for 422,
    ``errors``; ``application/problem+json``."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status, {**_NO_STORE, **(headers or {})}, PROBLEM_JSON)


@dataclass(frozen=True, slots=True)
class Result:
    """What an operation answers: a body (``None``: 204) and, for the audit event, the
    object acted on and its merchant."""

    body: BaseModel | None
    status: int = 200
    subject: str | None = None
    merchant_id: str | None = None
    details: Mapping[str, DetailValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One request, parsed: the caller, the path parameters, the query and the body."""

    ctx: AppContext
    principal: AdminPrincipal
    params: Mapping[str, str]
    query: BaseModel | None
    body: BaseModel | None
    #: the caller as the core's audit events name it: ``client:<id>`` and its address
    by: By

    def merchant_in_reach(self, merchant_id: str | None, what: str) -> None:
        """404 for another merchant's object: to a merchant's client it does not exist."""
        if not self.principal.sees(merchant_id):
            raise not_found(what)


Handler = Callable[[Call], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    scope: str
    handler: Handler
    tag: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: Besides 401, 403 and 503, which every operation may answer.
    errors: tuple[int, ...] = ()
    #: The audit event type (``admin.<resource>.<action>``); reads are not audited.
    event: str | None = None
    #: Only platform clients (no merchant) may call it.
    platform_only: bool = False
    description: str = ""

    @property
    def full_path(self) -> str:
        return PREFIX + self.path

    def error_statuses(self) -> list[int]:
        statuses = {401, 403, 503, *self.errors}
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        if self.query is not None:
            statuses.add(422)
        return sorted(statuses)

    async def endpoint(self, request: Request) -> Response:
        ctx = ctx_of(request)
        try:
            principal = await _principal(ctx, request)
        except AdminDenied as exc:
            return _denied(ctx, exc)
        try:
            return await self._serve(ctx, request, principal)
        except AdminDenied as exc:
            await self._audit(ctx, request, principal, None, "failure", exc.error)
            return _denied(ctx, exc)
        except Failure as exc:
            if exc.status in (403, 404, 409):
                await self._audit(ctx, request, principal, None, "failure", exc.code)
            return problem(
                exc.status,
                exc.code,
                exc.detail,
                instance=request.url.path,
                errors=exc.errors,
                headers=exc.headers,
            )

    async def _serve(
        self, ctx: AppContext, request: Request, principal: AdminPrincipal
    ) -> Response:
        principal.require(self.scope)
        if self.platform_only and not principal.platform:
            raise Failure(403, "platform_only", "only a platform client (no merchant) may")
        _check_text([*request.path_params.values(), *request.query_params.values()])
        query = _parse(self.query, dict(request.query_params), "query")
        body = await _body(self.body, request) if self.body is not None else None
        source = source_address(request, ctx.settings.trusted_proxies)
        call = Call(ctx, principal, request.path_params, query, body, By(principal.actor, source))
        try:
            result = await self.handler(call)
        except AdminError as exc:
            raise from_admin_error(exc) from None
        except TemporarilyUnavailable:
            raise  # the last-resort middleware's 503
        except OAuthError as exc:  # a scope the core refuses (RFC 6749 §3.3)
            raise Failure(422, "validation_failed", exc.description) from None
        if self.event is not None:
            await self._audit(ctx, request, principal, result, "success", None)
        if result.body is None:
            return Response(status_code=204, headers=_NO_STORE)
        content = result.body.model_dump(mode="json")
        return json_response(content, result.status, _NO_STORE)

    async def _audit(
        self,
        ctx: AppContext,
        request: Request,
        principal: AdminPrincipal,
        result: Result | None,
        outcome: str,
        reason: str | None,
    ) -> None:
        event = self.event or self.operation_id_event()
        details: dict[str, DetailValue] = dict(result.details) if result else {}
        if reason is not None:
            details["reason"] = reason
        merchant = result.merchant_id if result else None
        subject = result.subject if result else _subject(request.path_params)
        try:
            await ctx.audit.record(
                event,
                actor=principal.actor,
                outcome="success" if outcome == "success" else "failure",
                merchant_id=merchant or principal.merchant_id,
                source=source_address(request, ctx.settings.trusted_proxies),
                subject=subject,
                method=request.method,
                **details,
            )
        except Exception:  # an audit outage must not turn a done change into a 500
            log.exception("could not record the audit event %s", event)

    def operation_id_event(self) -> str:
        """The event type of a refused read: ``admin.<tag>.<operation>``."""
        return f"admin.{self.tag}.{self.operation_id}"


def _subject(params: Mapping[str, str]) -> str | None:
    for name in ("consent_id", "client_id", "key_id", "kid", "user_id", "merchant_id"):
        if name in params:
            return params[name]
    return None


def _challenge(ctx: AppContext, exc: AdminDenied) -> str:
    return challenge(ctx, exc, "tokensmith-admin")


def _denied(ctx: AppContext, exc: AdminDenied) -> Response:
    headers = {"www-authenticate": _challenge(ctx, exc)}
    if exc.nonce is not None:
        headers["dpop-nonce"] = exc.nonce
    return problem(exc.status, exc.error, exc.description, headers=headers)


async def _principal(ctx: AppContext, request: Request) -> AdminPrincipal:
    return await own_token_principal(ctx, request)


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(x) if not isinstance(x, int) else x for x in e["loc"]], "msg": e["msg"]}
        for e in exc.errors()
    ]


def _parse(model: type[BaseModel] | None, data: dict[str, Any], where: str) -> BaseModel | None:
    if model is None:
        if data:
            raise Failure(422, "validation_failed", f"this operation takes no {where} parameters")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Failure(
            422, "validation_failed", f"the {where} is not valid", errors=_field_errors(exc)
        ) from None


async def _body(model: type[BaseModel], request: Request) -> BaseModel | None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Failure(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Failure(413, "body_too_large", f"the body is over {MAX_BODY} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise Failure(413, "body_too_large", f"the body is over {MAX_BODY} bytes")
    try:
        data = orjson.loads(bytes(raw)) if raw else {}
    except orjson.JSONDecodeError:
        raise Failure(400, "malformed_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Failure(422, "validation_failed", "the body must be a JSON object")
    _check_text(_strings(data))
    return _parse(model, data, "body")


def _strings(value: Any) -> list[str]:
    """Every string of a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check_text(values: list[str]) -> None:
    """No NUL (PostgreSQL refuses it in text) and no lone surrogate (not UTF-8) reaches
    the database: 422 before any service is called."""
    for value in values:
        if "\x00" in value:
            raise Failure(422, "validation_failed", "text must not hold a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Failure(422, "validation_failed", "text must be valid Unicode") from None


def cursor_failure(exc: BadCursor) -> Failure:
    return Failure(422, "validation_failed", str(exc))
