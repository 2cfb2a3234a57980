"""Property-based tests of the ``DPoP`` header (RFC 9449): random bytes, proofs with random
claims and headers, random keys, several headers; every token endpoint answers below 500
and, when it refuses, in its dialect (see ``test_endpoints_fuzz``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.dpop import DpopKey, b64, unsigned
from tests.fuzz.test_endpoints_fuzz import (
    FUZZ,
    HEADER_BYTES,
    NASTY_TEXT,
    TBC,
    TOKEN_PATHS,
    World,
    assert_well_formed,
    send,
    world,  # noqa: F401 - the fixture
)

ISSUER = "https://auth.example.test"
KEYS = [DpopKey.generate("ES256"), DpopKey.generate("PS256"), DpopKey.generate("EdDSA")]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=6,
)
JWKS = st.one_of(
    st.sampled_from([k.jwk for k in KEYS]),
    st.sampled_from([k.private_jwk() for k in KEYS]),
    st.fixed_dictionaries(
        {
            "kty": st.sampled_from(["EC", "RSA", "OKP", "oct", "", "ec"]),
            "crv": st.sampled_from(["P-256", "P-384", "Ed25519", "X25519", "secp256k1"])
            | NASTY_TEXT,
            "x": NASTY_TEXT | st.binary(max_size=70).map(b64),
            "y": NASTY_TEXT | st.binary(max_size=70).map(b64),
            "n": st.binary(max_size=300).map(b64) | JSON_VALUES,
            "e": st.sampled_from(["AQAB", "", "AA", "Aw"]) | JSON_VALUES,
        }
    ),
    JSON_VALUES,
)


@st.composite
def proofs(draw: st.DrawFn, w: World, path: str) -> bytes:
    """A proof that is valid, or bent in one or more ways."""
    key = draw(st.sampled_from(KEYS))
    now = w.h.clock.now()
    claims: dict[str, Any] = {}
    header: dict[str, Any] = {}
    for name, valid in (
        ("htu", ISSUER + path),
        ("htm", "POST"),
        ("iat", now),
        ("jti", draw(st.uuids()).hex),
        ("nonce", None),
        ("ath", None),
    ):
        claims[name] = draw(st.just(valid) | st.just(valid) | JSON_VALUES)
    if draw(st.booleans()):
        header["typ"] = draw(st.sampled_from(["dpop+jwt", "JWT", "DPOP+JWT"]) | JSON_VALUES)
    if draw(st.booleans()):
        header["jwk"] = draw(JWKS)
    kind = draw(st.integers(0, 9))
    if kind == 0:  # a header and claims put together by hand, any signature
        head = {"typ": "dpop+jwt", "alg": draw(st.sampled_from(["none", "HS256", "ES256"]))}
        head |= {"jwk": key.jwk, **header}
        return unsigned(head, claims, draw(st.binary(max_size=80))).encode()
    if kind == 1:  # segments of anything
        parts = draw(st.lists(st.binary(max_size=60).map(b64) | NASTY_TEXT, min_size=1, max_size=4))
        return ".".join(parts).encode("utf-8", "replace")
    if kind == 2:  # a JSON header that is not an object, or not JSON
        head = draw(st.sampled_from([b"[]", b"1", b"null", b"{", b'{"typ":"dpop+jwt"}']))
        return (b64(head) + "." + b64(json.dumps(claims).encode()) + ".c2ln").encode()
    try:
        return key.proof(ISSUER + path, header=header, claims=claims).encode()
    except (TypeError, ValueError):  # PyJWT would not encode these: send them unsigned
        return unsigned({"typ": "dpop+jwt", "alg": key.alg, **header}, claims).encode()


def _dpop_headers(w: World, path: str) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    one = proofs(w, path) | HEADER_BYTES
    return st.lists(one, min_size=1, max_size=3).map(lambda vs: [(b"dpop", v) for v in vs])


@pytest.mark.parametrize("path", TOKEN_PATHS)
@given(data=st.data())
@FUZZ
async def test_random_dpop_headers_are_answered_in_dialect(
    world: World,  # noqa: F811
    data: Any,
    path: str,
) -> None:
    i = data.draw(st.integers(0, len(world.ids) - 1))
    form = (
        f"grant_type=client_credentials&client_id={world.ids[i]}&client_secret={world.secrets[i]}"
    )
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if path == TBC:
        headers.append((b"apikey", world.apikeys[0].encode()))
    headers += data.draw(_dpop_headers(world, path))
    r = await send(world, "POST", path, form.encode(), headers)
    assert_well_formed(path, "POST", r, world)
    if r.status_code == 200:
        assert r.json()["token_type"] == "DPoP"
