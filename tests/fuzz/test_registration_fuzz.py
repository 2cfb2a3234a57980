"""Random metadata and random requests at the registration endpoints (RFC 7591, RFC
7592): every answer is 201 or a JSON error of RFC 7591 §3.2.2 or RFC 6750, never a 500,
and nothing is registered by a refused request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness, make_settings, running_app
from tokensmith.core.clock import FrozenClock

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
ERRORS = {
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "unapproved_software_statement",
    "invalid_token",
    "invalid_request",
}
FIELDS = [
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "jwks",
    "jwks_uri",
    "client_uri",
    "logo_uri",
    "contacts",
    "software_id",
    "software_statement",
    "dpop_bound_access_tokens",
    "client_id",
    "client_secret",
]
TEXT = st.text(max_size=30) | st.sampled_from(
    [
        "https://a.example/cb",
        "http://127.0.0.1:1/cb",
        "javascript:x",
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "code",
        "none",
        "private_key_jwt",
        "client_secret_post",
        "read",
        "a.b.c",
        "\x00",
    ]
)
NUMBER = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
METADATA = st.dictionaries(st.sampled_from(FIELDS) | TEXT, JSON, max_size=8)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def app(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[tuple[Harness, _Collect]]:
    s = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'fuzz.db'}",
        registration="open",
        registrations_per_address=100_000,
        registration_max_body_bytes=4096,
    )
    collect = _Collect()
    log = logging.getLogger("tokensmith")
    log.addHandler(collect)
    try:
        async with running_app(s, clock) as h:
            yield h, collect
    finally:
        log.removeHandler(collect)


def _check(r: Any, collect: _Collect) -> None:
    assert r.status_code < 500, r.text
    assert not collect.records
    if r.status_code in (201, 200):
        assert "client_id" in r.json()
    elif r.status_code != 204:
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"] in ERRORS | {"slow_down"}


@given(body=METADATA)
@FUZZ
async def test_random_metadata_is_registered_or_refused_cleanly(
    app: tuple[Harness, _Collect], body: dict[str, Any]
) -> None:
    h, collect = app
    before = len(await h.ctx.client_admin.listing())
    r = await h.http.post("/oauth/register", json=body)
    _check(r, collect)
    after = len(await h.ctx.client_admin.listing())
    assert after == before + (1 if r.status_code == 201 else 0)


@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "POST", "PATCH"]),
    client_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
        min_size=1,
        max_size=80,
    ),
    authorization=st.none() | st.text(max_size=40).map(lambda t: "Bearer " + t),
    body=METADATA,
)
@FUZZ
async def test_random_management_requests_are_refused_cleanly(
    app: tuple[Harness, _Collect],
    method: str,
    client_id: str,
    authorization: str | None,
    body: dict[str, Any],
) -> None:
    h, collect = app
    headers = {} if authorization is None else {"authorization": authorization}
    try:
        r = await h.http.request(method, f"/oauth/register/{client_id}", json=body, headers=headers)
    except (ValueError, UnicodeEncodeError):
        return  # httpx refuses to send the header; nothing reached the server
    _check(r, collect)
    assert r.status_code in (401, 405, 400, 404)
