"""Random requests to the admin API (/admin/v1) with a valid platform token, on SQLite and
PostgreSQL (which refuses a NUL in text): any method, any path under the mount, any query
and any JSON or non-JSON body, and the operations' real paths with random ids and bodies.
Every answer is a 4xx or 2xx, never a 5xx, and every error is problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings, running_app
from tests.partner import FAST_PASSWORDS
from tests.web.admin_api import ALL_SCOPES, Admin, token_of
from tokensmith.core.clock import FrozenClock
from tokensmith.web.admin.resources import OPERATIONS

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
ANY_TEXT = st.text(max_size=20)  # lone surrogates and NUL included
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


@pytest.fixture
async def admin_any(db_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Admin]:
    async with running_app(make_settings(tmp_path, db_url), clock, passwords=FAST_PASSWORDS) as h:
        client, secret = await h.client(name="platform", scope=ALL_SCOPES)
        yield Admin(h, await token_of(h, client.client_id, secret), client.client_id, secret)


def _body(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return b'{"name": "x"}'


def _field_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies with the operations' own field names, holding anything."""
    names = sorted({n for op in OPERATIONS if op.body is not None for n in op.body.model_fields})
    return st.dictionaries(st.sampled_from(names), JSON, max_size=4)


def assert_answer(status: int, media: str) -> None:
    assert status < 500, status
    if status >= 400:
        assert media == "application/problem+json", (status, media)


#: A path under the mount; dot segments left out (the client resolves them, leaving it).
UNDER = TEXT.filter(lambda t: not {".", ".."} & set(t.split("/")))


@given(method=METHODS, path=UNDER, query=TEXT, body=JSON)
@FUZZ
async def test_any_request_under_the_mount_is_answered_without_a_server_error(
    admin_any: Admin, method: str, path: str, query: str, body: Any
) -> None:
    r = await admin_any.http.request(
        method,
        "/admin/v1/" + quote(path, safe="/") + "?" + quote(query, safe="=&"),
        content=_body(body),
        headers={"authorization": f"Bearer {admin_any.token}", "content-type": "application/json"},
    )
    assert_answer(r.status_code, r.headers.get("content-type", ""))


@given(data=st.data())
@FUZZ
async def test_every_operation_survives_random_ids_and_bodies(
    admin_any: Admin, data: st.DataObject
) -> None:
    op = data.draw(st.sampled_from(OPERATIONS))
    path = op.full_path
    for name in ("merchant_id", "client_id", "user_id", "key_id", "kid"):
        path = path.replace("{" + name + "}", quote(data.draw(ANY_TEXT.filter(bool)), safe=""))
    body = data.draw(_field_bodies())
    params = data.draw(
        st.dictionaries(st.sampled_from(["limit", "cursor", "q", "merchant_id"]), TEXT)
    )
    r = await admin_any.http.request(
        op.method,
        path,
        params=params,
        content=_body(body) if op.body is not None else None,
        headers={"authorization": f"Bearer {admin_any.token}", "content-type": "application/json"},
    )
    assert_answer(r.status_code, r.headers.get("content-type", ""))
