"""Authorization codes bound to a DPoP key (RFC 9449 §10): ``dpop_jkt`` in the query or in
a push, and the DPoP proof of a push (§10.1). The attack each stops: a code stolen on its
way back (a log, a referrer, a malicious app on the device) redeemed with the thief's key."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Harness
from tests.dpop import DpopKey
from tests.partner import ISSUER, Partner, make_partner, pkce_pair, query_of, sent_to

OWNER = DpopKey.generate("ES256")
THIEF = DpopKey.generate("ES256")
PAR = "/oauth/par"


@pytest.fixture
async def partner(harness_any: Harness) -> Partner:
    return await make_partner(harness_any)


def proof(p: Partner, key: DpopKey, path: str = "/oauth/token") -> dict[str, str]:
    return {"DPoP": key.proof(ISSUER + path, iat=p.h.clock.now())}


async def redeem(p: Partner, code: str, verifier: str, key: DpopKey | None) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://partner.example/callback",
        "code_verifier": verifier,
    }
    headers = proof(p, key) if key is not None else {}
    return await p.http.post(
        "/oauth/token", data=form, auth=(p.app.client_id, p.secret), headers=headers
    )


async def query_code(p: Partner, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    code = await p.code(code_challenge=challenge, code_challenge_method="S256", **extra)
    return code, verifier


async def pushed_code(
    p: Partner, headers: dict[str, str] | None = None, **extra: str
) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    form = p.params(code_challenge=challenge, code_challenge_method="S256", **extra)
    r = await p.http.post(PAR, data=form, auth=(p.app.client_id, p.secret), headers=headers or {})
    assert r.status_code == 201, r.text
    return await p.code(request_uri=r.json()["request_uri"]), verifier


def refused_grant(r: httpx.Response, words: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_grant" and words in body["error_description"], body


BINDINGS = ["query dpop_jkt", "pushed dpop_jkt", "push's DPoP proof"]


async def bound_code(p: Partner, how: str) -> tuple[str, str]:
    if how == "query dpop_jkt":
        return await query_code(p, dpop_jkt=OWNER.jkt)
    if how == "pushed dpop_jkt":
        return await pushed_code(p, dpop_jkt=OWNER.jkt)
    return await pushed_code(p, proof(p, OWNER, PAR))


@pytest.mark.parametrize("how", BINDINGS)
async def test_a_stolen_code_redeemed_with_another_key_is_refused(
    partner: Partner, how: str
) -> None:
    code, verifier = await bound_code(partner, how)
    refused_grant(await redeem(partner, code, verifier, THIEF), "not signed with the key")
    # the refusal spends nothing: the owner's proof still redeems it
    r = await redeem(partner, code, verifier, OWNER)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


@pytest.mark.parametrize("how", BINDINGS)
async def test_a_bound_code_redeemed_without_a_proof_is_refused(partner: Partner, how: str) -> None:
    code, verifier = await bound_code(partner, how)
    refused_grant(await redeem(partner, code, verifier, None), "send a DPoP proof")


async def test_an_unbound_code_takes_any_key_or_none(partner: Partner) -> None:
    code, verifier = await query_code(partner)
    assert (await redeem(partner, code, verifier, THIEF)).status_code == 200


async def test_a_push_whose_proof_is_not_its_dpop_jkt_is_refused(partner: Partner) -> None:
    """§10.1: both given, they must name one key."""
    _, challenge = pkce_pair()
    form = partner.params(
        code_challenge=challenge, code_challenge_method="S256", dpop_jkt=THIEF.jkt
    )
    r = await partner.http.post(
        PAR,
        data=form,
        auth=(partner.app.client_id, partner.secret),
        headers=proof(partner, OWNER, PAR),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
    assert "dpop_jkt" in r.json()["error_description"]


async def test_a_push_whose_proof_matches_its_dpop_jkt_is_accepted(partner: Partner) -> None:
    code, verifier = await pushed_code(partner, proof(partner, OWNER, PAR), dpop_jkt=OWNER.jkt)
    assert (await redeem(partner, code, verifier, OWNER)).status_code == 200


async def test_a_push_with_a_bad_proof_is_refused(partner: Partner) -> None:
    """The push's proof is checked as a token request's (RFC 9449 §4.3): here it names the
    token endpoint, not the PAR endpoint."""
    _, challenge = pkce_pair()
    form = partner.params(code_challenge=challenge, code_challenge_method="S256")
    r = await partner.http.post(
        PAR, data=form, auth=(partner.app.client_id, partner.secret), headers=proof(partner, OWNER)
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text


async def test_a_malformed_dpop_jkt_in_the_query_is_redirected_as_invalid_request(
    partner: Partner,
) -> None:
    await partner.login()
    _, challenge = pkce_pair()
    r = await partner.authorize(
        code_challenge=challenge, code_challenge_method="S256", dpop_jkt="not-a-thumbprint"
    )
    assert r.status_code in (200, 302, 303)
    q = query_of(sent_to(r) or "")
    assert q["error"] == "invalid_request" and "dpop_jkt" in q["error_description"]
