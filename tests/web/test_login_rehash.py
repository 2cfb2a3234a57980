"""The login page upgrades a password hash made with older argon2 parameters, on each
database backend; a failed login leaves it as it was."""

from __future__ import annotations

from tests.conftest import Harness
from tests.partner import make_partner
from tokensmith.core.passwords import Passwords


async def test_the_login_page_upgrades_an_old_password_hash(harness_any: Harness) -> None:
    partner = await make_partner(harness_any)  # its user was hashed with m=8192, t=1
    old = partner.user.password_hash
    assert Passwords().needs_rehash(old)
    assert (await partner.login(password="not the password")).status_code == 400
    assert (await harness_any.ctx.store.get_user(partner.user.user_id)) == partner.user
    assert (await partner.login()).status_code == 303
    stored = await harness_any.ctx.store.get_user(partner.user.user_id)
    assert stored is not None and stored.password_hash != old
    assert not Passwords().needs_rehash(stored.password_hash)
