"""Team > Users: the merchant's people. Admins add users with a first password and disable
them (which ends their sessions); members see the list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.admin import AdminError
from tokensmith.core.models import User
from tokensmith.core.passwords import MIN_PASSWORD_LENGTH
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, not_found, panel_page, panel_render
from tokensmith.web.ui import redirect

__all__ = ["user_routes"]

MERCHANT_ROLES = ("member", "admin")
ROLE_WORDS = {
    "member": "Member \u2014 sees keys, apps and activity; changes nothing",
    "admin": "Admin \u2014 manages keys, apps and users",
}


async def _disableable(request: Request, tenant: Tenant) -> User | None:
    """The tenant's user named in the path, if the logged-in user may disable them."""
    user_id = request.path_params["user_id"]
    if not id_ok(user_id):
        return None
    return await ctx_of(request).users.disableable(tenant.merchant_id, user_id, tenant.user)


@panel_page()
async def list_users(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    users = await ctx_of(request).users.listing(tenant.merchant_id)
    users.sort(key=lambda u: (u.disabled_at is not None, u.email))
    return await panel_render(
        request, tenant, "panel/users.html", section="users", title="Users", users=users
    )


async def _form(
    request: Request,
    tenant: Tenant,
    status: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    return await panel_render(
        request,
        tenant,
        "panel/user_new.html",
        status,
        section="users",
        title="Add a user",
        error=error,
        values=values or {"role": "member"},
        roles=[(r, ROLE_WORDS[r]) for r in MERCHANT_ROLES],
        min_password=MIN_PASSWORD_LENGTH,
    )


@panel_page(edit=True)
async def new_user(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await _form(request, tenant)


@panel_page(edit=True)
async def add_user(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/users``: a member or admin of this merchant, with a first password."""
    role = form.get("role", "")
    values = {"email": form.get("email", "")[:320], "role": role}
    if role not in MERCHANT_ROLES:
        return await _form(request, tenant, 400, "Choose a role.", values)
    try:
        await ctx_of(request).users.create(
            email=form.get("email", "")[:320],
            password=form.get("password", ""),
            role=role,
            merchant=tenant.merchant_id,
            by=by_user(request, tenant.user),
        )
    except AdminError as exc:
        return await _form(request, tenant, 400, _sentence(str(exc)), values)
    return redirect(request, "/panel/users?done=user-created")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@panel_page(edit=True)
async def confirm_disable(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    user = await _disableable(request, tenant)
    if user is None or not user.active:
        return await not_found(request, tenant)
    return await panel_render(
        request,
        tenant,
        "panel/confirm.html",
        section="users",
        title=f"Disable {user.email}?",
        consequence="They are signed out at once and cannot sign in again. Apps they "
        "authorized keep the merchant's access until you withdraw it under Authorized apps.",
        action=f"/panel/users/{user.user_id}/disable",
        button="Disable user",
        cancel="/panel/users",
        subject=user.email,
    )


@panel_page(edit=True)
async def do_disable(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    user = await _disableable(request, tenant)
    if user is None:
        return await not_found(request, tenant)
    await ctx_of(request).users.disable(user.email, by=by_user(request, tenant.user))
    return redirect(request, "/panel/users?done=user-disabled")


def user_routes() -> list[BaseRoute]:
    return [
        Route("/panel/users", list_users, methods=["GET"]),
        Route("/panel/users", add_user, methods=["POST"]),
        Route("/panel/users/new", new_user, methods=["GET"]),
        Route("/panel/users/{user_id}/disable", confirm_disable, methods=["GET"]),
        Route("/panel/users/{user_id}/disable", do_disable, methods=["POST"]),
    ]
