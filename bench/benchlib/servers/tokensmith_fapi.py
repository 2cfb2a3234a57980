"""tokensmith with FAPI 2.0 client authentication: private_key_jwt (RFC 7523) and DPoP
(RFC 9449) on every token request.

wrk cannot sign, so the harness makes the requests before the run: one client
assertion and one DPoP proof a request, each with its own ``jti`` (the server refuses a
replayed one), written to one file per wrk thread and read a line per request by
``lua/prebuilt.lua``. They are made with PyJWT in the harness, not by tokensmith. The
server under test checks two ES256 signatures and records two ``jti`` a request, as in
production; only its proof age limit is raised (``TOKENSMITH_DPOP_PROOF_MAX_AGE``), since
the proofs of the last requests are made up to a run's length before they are sent.

A thread that runs out of requests sends its last one again: the server refuses the
replay, and wrk counts a non-2xx answer, so a too small supply shows in the report.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from ..config import SCOPE, THREADS
from ..http import post_form_with, summarize
from ..model import LoadPlan, RunContext, Scenario, ServerSpec
from .tokensmith import CLI, TOKEN_PATH, TokensmithTarget

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Requests a second made for each measured or warm-up second: above what two workers
#: serve with two signature checks a request on this harness's 2-core machine (up to
#: 8,700 req/s were seen in a quiet spell, where 4,000 ran out).
SUPPLY_PER_S = 12000
#: Seconds a proof may be old when it arrives, and an assertion's lifetime (the server's
#: longest, ``TOKENSMITH_CLIENT_ASSERTION_MAX_LIFETIME``): the requests are made before
#: the harness waits up to 120 s for a quiet machine (``--quiet-wait``), then come the
#: warm-up and the run. With 120 s a long wait made every proof stale (every answer a 400).
#: The server keeps each ``jti`` that long, so a longer limit would grow its replay table
#: past what a client's own short-lived proofs (60 s by default) and assertions (60 s
#: from ``tokensmith.client``) leave there.
PROOF_MAX_AGE = 300


class TokensmithFapiTarget(TokensmithTarget):
    """client_credentials with private_key_jwt and DPoP, JWT access tokens."""

    def __init__(self) -> None:
        super().__init__("jwt")
        self.name = "tokensmith-pkjwt-dpop"
        self.token = "jwt ES256, DPoP-bound"
        self.scenarios = frozenset({Scenario.CC_PKJWT_DPOP})
        self.client_key = ec.generate_private_key(ec.SECP256R1())
        self.dpop_key = ec.generate_private_key(ec.SECP256R1())
        self.client_id = ""

    def timing(self, warmup_s: int, duration_s: int) -> None:
        self.warmup_s, self.duration_s = warmup_s, duration_s

    def prepare(self, ctx: RunContext) -> ServerSpec:
        spec = super().prepare(ctx)
        self.env["TOKENSMITH_DPOP_PROOF_MAX_AGE"] = str(PROOF_MAX_AGE)
        return ServerSpec(argv=spec.argv, env=self.env, cwd=spec.cwd)

    def _create_client(self, ctx: RunContext) -> dict[str, str]:
        jwks = json.dumps({"keys": [{**_public_jwk(self.client_key), "kid": "bench"}]})
        args = ["clients", "create", "--name", "bench-fapi", "--scope", SCOPE]
        args += ["--token-format", "jwt", "--jwks", jwks, "--require-dpop"]
        self.client_id = self._cli(ctx, args)["client_id"]
        return {"client_id": self.client_id, "client_secret": ""}

    def plan(self, ctx: RunContext) -> LoadPlan:
        url = ctx.base_url + TOKEN_PATH
        warmup = self._write(ctx, "warmup", url, self.warmup_s)
        run = self._write(ctx, "run", url, self.duration_s)
        status, data = post_form_with(url, {"DPoP": self._proof(url)}, _BODY + self._assertion(url))
        if status != 200 or data.get("token_type") != "DPoP":
            raise RuntimeError(f"private_key_jwt + DPoP request got {status}: {data}")
        return LoadPlan(
            sample=summarize(data),
            path=TOKEN_PATH,
            auth="",
            body=_BODY,
            warmup_seeds=warmup,
            run_seeds=run,
            script="prebuilt.lua",
        )

    def _write(self, ctx: RunContext, phase: str, url: str, seconds: int) -> Path:
        """``seconds`` x SUPPLY_PER_S requests split over the wrk threads' files
        ``<phase>.<thread>``; returns the path without the thread suffix."""
        base = ctx.run_dir / f"requests-{phase}"
        per_thread = max(1, seconds) * SUPPLY_PER_S // THREADS + 1
        started = time.monotonic()
        for thread in range(THREADS):
            lines = (f"{self._proof(url)}\t{self._assertion(url)}\n" for _ in range(per_thread))
            Path(f"{base}.{thread}").write_text("".join(lines))
        took = time.monotonic() - started
        print(f"    made {per_thread * THREADS:,} {phase} requests in {took:.1f} s", flush=True)
        return base

    def _assertion(self, url: str) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": url}
        claims |= {"jti": uuid.uuid4().hex, "iat": now, "exp": now + PROOF_MAX_AGE}
        return jwt.encode(claims, self.client_key, "ES256", headers={"kid": "bench"})

    def _proof(self, url: str) -> str:
        claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": url, "iat": int(time.time())}
        headers = {"typ": "dpop+jwt", "jwk": _public_jwk(self.dpop_key)}
        return jwt.encode(claims, self.dpop_key, "ES256", headers=headers)


_BODY = (
    "grant_type=client_credentials&scope="
    + SCOPE.replace(" ", "%20")
    + f"&client_assertion_type={ASSERTION_TYPE.replace(':', '%3A')}&client_assertion="
)


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {k: data[k] for k in ("kty", "crv", "x", "y")}


__all__ = ["CLI", "TokensmithFapiTarget"]
