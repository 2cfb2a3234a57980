"""Inputs the fuzz tests found (or could find) that once answered 500, pinned on both
databases: control characters in a client_id (PostgreSQL rejects NUL in text) and a
Content-Length that is not an ASCII number."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import Harness
from tokensmith.core.admin import create_api_key

TBC = "/v2/tpay/access-token"
FORM_PATHS = ["/oauth/token", "/oauth/auth", TBC, "/o/token/", "/oauth/introspect", "/oauth/revoke"]
BAD_IDS = ["a\x00b", "\x00", "id\nforged log line", "tab\there", "del\x7f", "caf\u00e9", "\u2028"]


async def _post(h: Harness, path: str, **kw: object) -> tuple[int, dict[str, str]]:
    _, apikey = await create_api_key(h.ctx.store, h.clock, h.ctx.rand, "hostile")
    headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
    headers["apikey"] = apikey
    r = await h.http.post(path, headers=headers, **kw)  # type: ignore[arg-type]
    expected_type = "application/problem+json" if path == TBC else "application/json"
    assert r.headers["content-type"] == expected_type
    return r.status_code, r.json()


def _error(path: str, body: dict[str, str]) -> str:
    return body["code"] if path == TBC else body["error"]


@pytest.mark.parametrize("path", FORM_PATHS)
async def test_control_characters_in_a_body_client_id_are_invalid_request(
    harness_any: Harness, path: str
) -> None:
    for client_id in BAD_IDS:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"}
        status, body = await _post(harness_any, path, data=form)
        assert (status, _error(path, body)) == (400, "invalid_request"), client_id


@pytest.mark.parametrize("path", ["/oauth/token", "/o/token/", "/oauth/introspect"])
async def test_control_characters_in_a_basic_client_id_are_invalid_request(
    harness_any: Harness, path: str
) -> None:
    for client_id in BAD_IDS:
        basic = base64.b64encode(f"{client_id}:secret".encode()).decode()
        status, body = await _post(
            harness_any,
            path,
            data={"grant_type": "client_credentials", "token": "t"},
            headers={"authorization": "Basic " + basic},
        )
        assert (status, _error(path, body)) == (400, "invalid_request"), client_id


async def test_a_printable_unknown_client_id_is_still_invalid_client(harness_any: Harness) -> None:
    form = {"grant_type": "client_credentials", "client_id": "no such ~id!", "client_secret": "x"}
    status, body = await _post(harness_any, "/oauth/token", data=form)
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"\xb2", 400), (b"-1", 400), (b"1e3", 400), (b"abc", 400), (b"99999999", 413)],
    ids=["superscript-two", "negative", "exponent", "letters", "too-large"],
)
@pytest.mark.parametrize("path", ["/oauth/token", TBC])
async def test_content_length_that_is_no_number_is_400_and_a_huge_one_413(
    harness: Harness, path: str, length: bytes, status: int
) -> None:
    _, apikey = await create_api_key(harness.ctx.store, harness.clock, harness.ctx.rand, "cl")
    request = harness.http.build_request("POST", path, content=b"grant_type=client_credentials")
    request.headers = type(request.headers)(
        [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", length),
            (b"apikey", apikey.encode()),
        ]
    )
    r = await harness.http.send(request)
    assert r.status_code == status
    assert _error(path, r.json()) == "invalid_request"
