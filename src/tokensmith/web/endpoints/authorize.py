"""The authorization endpoint (RFC 6749 §3.1, §4.1.1-§4.1.2) and the consent pages.

``GET /oauth/authorize`` validates the request, asks an anonymous browser to log in,
then shows the consent page (or, with a remembered consent, answers at once).
``POST /oauth/authorize/decision`` takes Allow or Deny. ``GET /account/apps`` lists the
apps a user approved; ``POST /oauth/consents/{client_id}/withdraw`` forgets an approval
and revokes every token the user's approvals gave that app.

An unknown client or an unregistered redirect URI is shown as an error page and never
redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1). Other errors go back to the client with
``error``, ``state`` and ``iss`` (RFC 9207 §2).

A request may name a consent resource lodged at ``/oauth/consents`` (``consent_id``,
:mod:`tokensmith.core.consent_resources`): the page shows its details, Allow authorizes
it and Deny rejects it.

A request with a ``request_uri`` from the PAR endpoint is the request pushed under it
(RFC 9126 §4, :mod:`tokensmith.core.par`); the login page and the consent form carry the
``request_uri`` on, and the decision spends it.

``GET /oauth/authorize`` sends the browser back to the client with a 303. The decision
form's POST answers with the continue page instead, which goes on to the client with a
plain navigation: Chromium applies the consent page's CSP ``form-action 'self'`` to each
redirect after the POST, those of the client's own site included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.authorize import (
    AuthorizationRequest,
    AuthorizationTarget,
    describe_scope,
    resolve_target,
    response_uri,
    valid_client_id,
)
from tokensmith.core.errors import (
    AccessDenied,
    InvalidAuthorizationDetails,
    InvalidRequest,
    InvalidRequestUri,
    OAuthError,
    TemporarilyUnavailable,
)
from tokensmith.core.models import Grantor, User
from tokensmith.web.actors import by_user
from tokensmith.web.context import AppContext, ctx_of
from tokensmith.web.forms import read_query
from tokensmith.web.ui import (
    CsrfError,
    check_csrf,
    continue_page,
    csrf_token,
    current_user,
    login_required,
    read_page_form,
    redirect,
    render,
    safe_next,
)
from tokensmith.web.ui.details import (
    DETAILS_MAC_FIELD,
    details_mac,
    details_match,
    locale_of,
    present,
)
from tokensmith.web.ui.login import login_page

__all__ = ["authorize_routes"]

#: The authorization request parameters the consent form carries back.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
    "dpop_jkt",
    "authorization_details",
    "resource",
    "consent_id",
)
#: What the consent form carries of a pushed request (RFC 9126 §4): the rest was pushed.
CARRIED_PUSHED = ("client_id", "request_uri")


class _PageError(Exception):
    def __init__(self, exc: OAuthError) -> None:
        self.exc = exc


async def _show_error(request: Request, exc: OAuthError) -> Response:
    return await render(
        request,
        "error.html",
        400,
        title="This link can\u2019t be used",
        message=exc.description,
        code=exc.error,
    )


async def _back_to_client(request: Request, url: str) -> Response:
    """To the client's redirect URI: a 303 from the authorization request (RFC 6749
    §4.1.2); from a form's POST, the continue page (CSP ``form-action`` stops a redirect
    there)."""
    if request.method != "POST":
        return redirect(request, url)
    return await continue_page(request, url, title="Returning to the app")


async def _error_redirect(
    request: Request,
    ctx: AppContext,
    target: AuthorizationTarget,
    exc: OAuthError,
    state: str | None,
) -> Response:
    """RFC 6749 §4.1.2.1 error response, with ``iss`` (RFC 9207 §2)."""
    params = {
        "error": exc.error,
        "error_description": exc.description or None,
        "state": state,
        "iss": ctx.settings.issuer_url,
    }
    return await _back_to_client(request, response_uri(target.redirect_uri, params))


def _state_of(params: Mapping[str, Sequence[str]]) -> str | None:
    values = params.get("state", ())
    return values[0] if len(values) == 1 and values[0] else None


async def _validate(
    request: Request, params: Mapping[str, Sequence[str]]
) -> AuthorizationRequest | Response:
    """The validated request, or the error redirect; raises :class:`_PageError` for what
    must not be redirected."""
    ctx = ctx_of(request)
    try:
        resolved = await ctx.par.resolve(params)
        target = await resolve_target(ctx.clients, resolved.params, ctx.par.profiles)
    except TemporarilyUnavailable:
        raise  # the outage page, not "this link can't be used"
    except OAuthError as exc:
        raise _PageError(exc) from exc
    try:
        return await ctx.par.validate(target, resolved)
    except OAuthError as exc:
        return await _error_redirect(request, ctx, target, exc, _state_of(resolved.params))


async def _spent(request: Request, req: AuthorizationRequest) -> Response | None:
    """Spend a pushed request's ``request_uri`` at the decision (RFC 9126 §4): ``None``, or
    the error page of a decision that another one beat to it."""
    try:
        await ctx_of(request).par.spend(req)
    except InvalidRequestUri as exc:
        return await _show_error(request, exc)
    return None


async def _grant(request: Request, req: AuthorizationRequest, user: User) -> Response:
    """RFC 6749 §4.1.2: redirect with ``code``, ``state`` and ``iss``."""
    ctx = ctx_of(request)
    lost = await _spent(request, req)
    if lost is not None:
        return lost
    try:
        code = await ctx.authorizations.issue_code(req, user, by=by_user(request, user))
    except InvalidRequest as exc:  # the consent resource was decided meanwhile, or expired
        return await _error_redirect(request, ctx, req.target, exc, req.state)
    params = {"code": code, "state": req.state, "iss": ctx.settings.issuer_url}
    return await _back_to_client(request, response_uri(req.target.redirect_uri, params))


async def _consent_page(
    request: Request, req: AuthorizationRequest, user: User, params: Mapping[str, Sequence[str]]
) -> Response:
    ctx = ctx_of(request)
    merchant = await ctx.merchants.get(user.merchant_id or "")
    names = CARRIED_PUSHED if req.request_uri is not None else CARRIED
    hidden = {k: params[k][0] for k in names if params.get(k) and params[k][0]}
    if req.authorization_details is not None:  # RFC 9396: the user approves what is shown
        hidden[DETAILS_MAC_FIELD] = details_mac(
            await csrf_token(request), req.authorization_details
        )
    locale = locale_of(request.headers.get("accept-language"))
    if req.resources and req.request_uri is None:  # RFC 8707: one field, space-separated
        hidden["resource"] = " ".join(req.resources)
    return await render(
        request,
        "consent.html",
        title=f"Allow {req.client.name}?",
        app_name=req.client.name,
        merchant_name=merchant.name if merchant else "",
        scopes=[(s, describe_scope(s)) for s in req.scopes],
        details=present(req.details, locale),
        resources=list(zip(req.resource_names, req.resources, strict=False)),
        redirect_host=urlsplit(req.target.redirect_uri).netloc,
        hidden=hidden,
        can_remember=not req.client.public and req.authorization_details is None,
    )


async def _after_login(
    request: Request, req: AuthorizationRequest, params: Mapping[str, Sequence[str]]
) -> Response:
    """Login if needed, then a remembered consent or the consent page."""
    ctx = ctx_of(request)
    user = await current_user(request)
    if user is None:
        query = urlencode([(k, v) for k, vs in params.items() for v in vs])
        return await login_page(request, "/oauth/authorize?" + query, app_name=req.client.name)
    refusal = ctx.authorizations.refusal(user)
    if refusal is not None:
        return await _error_redirect(request, ctx, req.target, AccessDenied(refusal), req.state)
    if await ctx.authorizations.covered(user, req):
        return await _grant(request, req, user)
    return await _consent_page(request, req, user, params)


async def authorize(request: Request) -> Response:
    """``GET /oauth/authorize`` (RFC 6749 §4.1.1)."""
    try:
        params = read_query(request)
    except OAuthError as exc:
        return await _show_error(request, exc)
    try:
        checked = await _validate(request, params)
    except _PageError as err:
        return await _show_error(request, err.exc)
    if isinstance(checked, Response):
        return checked
    return await _after_login(request, checked, params)


async def decide(request: Request) -> Response:
    """``POST /oauth/authorize/decision``: Allow issues a code, Deny is ``access_denied``."""
    try:
        form = await read_page_form(request)
    except OAuthError as exc:
        return await _show_error(request, exc)
    params = {k: [form[k]] for k in CARRIED if k in form}
    try:
        checked = await _validate(request, params)
    except _PageError as err:
        return await _show_error(request, err.exc)
    if isinstance(checked, Response):
        return checked
    try:
        await check_csrf(request, form)
    except CsrfError:
        return await _after_login(request, checked, params)  # the page again, with a new token
    user = await current_user(request)
    if user is None:
        return await _after_login(request, checked, params)
    if not await _details_shown(request, checked, form):
        return await _show_error(
            request,
            InvalidAuthorizationDetails("the details approved are not those shown; try again"),
        )
    return await _decided(request, checked, user, form)


async def _details_shown(
    request: Request, req: AuthorizationRequest, form: Mapping[str, str]
) -> bool:
    """RFC 9396: the decision's ``authorization_details`` are those the consent page showed
    (the form's MAC of them matches), so a changed form approves nothing."""
    presented = form.get(DETAILS_MAC_FIELD)
    if req.authorization_details is None and presented is None:
        return True
    return details_match(await csrf_token(request), req.authorization_details, presented)


async def _decided(
    request: Request, req: AuthorizationRequest, user: User, form: dict[str, str]
) -> Response:
    ctx = ctx_of(request)
    if form.get("decision") != "allow":
        lost = await _spent(request, req)
        if lost is not None:
            return lost
        await ctx.authorizations.reject(req, user, by=by_user(request, user))
        denied = AccessDenied("the user denied the request")
        return await _error_redirect(request, ctx, req.target, denied, req.state)
    refusal = ctx.authorizations.refusal(user)
    if refusal is not None:
        return await _error_redirect(request, ctx, req.target, AccessDenied(refusal), req.state)
    remember = form.get("remember") == "yes"
    await ctx.authorizations.consent(user, req, remember=remember, by=by_user(request, user))
    return await _grant(request, req, user)


@login_required()
async def apps_page(request: Request, user: User) -> Response:
    """The apps this user approved, each with a Withdraw button."""
    apps = await ctx_of(request).authorizations.of_user(user)
    return await render(request, "apps.html", title="Connected apps", apps=apps)


@login_required()
async def withdraw(request: Request, user: User) -> Response:
    """Forget the user's approval of an app and revoke the tokens it gave the app."""
    ctx = ctx_of(request)
    try:
        form = await read_page_form(request)
        await check_csrf(request, form)
    except (CsrfError, OAuthError):
        return await render(
            request, "error.html", 403, title="The page expired", message="Please try again."
        )
    client_id = request.path_params["client_id"]
    if not valid_client_id(client_id):
        return redirect(request, safe_next(form.get("next")))
    await ctx.authorizations.withdraw(
        Grantor(user_id=user.user_id),
        client_id,
        by=by_user(request, user),
        merchant_id=user.merchant_id,
    )
    return redirect(request, safe_next(form.get("next")))


def authorize_routes() -> list[BaseRoute]:
    return [
        Route("/oauth/authorize", authorize, methods=["GET"]),
        Route("/oauth/authorize/decision", decide, methods=["POST"]),
        Route("/account/apps", apps_page, methods=["GET"]),
        Route("/oauth/consents/{client_id}/withdraw", withdraw, methods=["POST"]),
    ]
