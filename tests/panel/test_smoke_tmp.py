from tests.panel.conftest import *  # noqa
from tests.conftest import *  # noqa


async def test_smoke(harness, admin):
    for p in [
        "/panel/keys",
        "/panel/keys/new",
        "/panel/apps",
        "/panel/apps/new",
        "/panel/authorized",
        "/panel/devkeys",
        "/panel/devkeys/new",
        "/panel/activity",
        "/panel/users",
        "/panel/users/new",
    ]:
        r = await admin.get(p)
        assert r.status_code == 200, (p, r.text[:3000])
    cid, secret = await admin.create_key()
    r = await harness.token(cid, secret)
    assert r.status_code == 200, r.text
    for p in [f"/panel/keys/{cid}", "/panel/keys", "/panel/activity", f"/panel/keys/{cid}/revoke"]:
        r = await admin.get(p)
        assert r.status_code == 200, (p, r.text[:3000])
