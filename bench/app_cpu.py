"""CPU time per token request of the ASGI application alone, without an HTTP server.

``python bench/app_cpu.py [--app tokensmith|floor] [-n 20000] [--opaque] [--dpop]
[--private-key-jwt] [--profile]``, from the project venv (``.venv/bin/python
bench/app_cpu.py``). The app is called in-process with the same
``client_credentials`` form and Basic header the benchmark's wrk script sends, one
request after another, and the process CPU time is divided by the count. This leaves
out the HTTP server, the load generator and the other processes that share the machine,
which is why its figures move by a few percent where a wrk run's move by 20: use it to
compare two versions of the application code. tokensmith runs on a fresh SQLite database
in a temporary folder with a JWT client (``--opaque`` for stored opaque tokens), its
audit log going to a file there. ``--dpop`` adds a DPoP proof (RFC 9449, ES256) to every
request, each with its own ``jti``, made before the clock starts: the figure is the
server's verification, the replay cache's write to the database and the bound token.
``--private-key-jwt`` authenticates the client with an ES256 client assertion (RFC 7523)
in the body instead of Basic, each with its own ``jti``, made before the clock starts: the
figure adds the assertion's verification and its ``jti``'s write to the replay cache.
``--profile`` prints the 40 costliest functions (cProfile, which inflates small calls).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Message = MutableMapping[str, Any]
App = Callable[..., Awaitable[None]]

BODY = b"grant_type=client_credentials&scope=read"


def _scope(auth: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", auth),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "state": {},
    }


#: The lifespan state the app's startup filled; each request's scope gets a copy of it, as
#: an ASGI server gives one.
STATE: dict[str, Any] = {}


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    """Start the app's lifespan (its state in :data:`STATE`); return what ends it."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    started, done = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        if message["type"].startswith("lifespan.shutdown"):
            done.set()

    task = asyncio.ensure_future(app({"type": "lifespan", "state": STATE}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await done.wait()
        await task

    return stop


def _proofs(n: int, htu: str) -> list[bytes]:
    """``n`` DPoP proofs of one ES256 key, as a client would send them."""
    import time as clock
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    header = {"typ": "dpop+jwt", "jwk": ECAlgorithm.to_jwk(key.public_key(), as_dict=True)}
    now = int(clock.time())
    return [
        jwt.encode(
            {"jti": str(uuid.uuid4()), "htm": "POST", "htu": htu, "iat": now},
            key,
            algorithm="ES256",
            headers=header,
        ).encode()
        for _ in range(n)
    ]


def _assertions(n: int, client_id: str, key: Any, aud: str) -> list[bytes]:
    """``n`` client assertions (RFC 7523 §3) of one ES256 key, as a client makes them."""
    import time as clock
    import uuid
    from urllib.parse import urlencode

    import jwt

    now = int(clock.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 300}
    return [
        BODY
        + b"&"
        + urlencode(
            {
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jwt.encode(
                    claims | {"jti": str(uuid.uuid4())},
                    key,
                    algorithm="ES256",
                    headers={"kid": "b"},
                ),
            }
        ).encode()
        for _ in range(n)
    ]


#: The private key of the ``--private-key-jwt`` client, and its client_id.
ASSERTION_KEY: dict[str, Any] = {}


async def _tokensmith(
    folder: Path, opaque: bool, pkjwt: bool = False
) -> tuple[App, bytes, Callable[[], Any]]:
    from tokensmith.core.admin import ClientSpec, create_client
    from tokensmith.logs import configure_logging
    from tokensmith.settings import Settings
    from tokensmith.web.app import create_app

    configure_logging(False)  # to stderr, which main() points at a file
    settings = Settings(
        database_url=f"sqlite:///{folder / 'app.db'}",
        secret_key="app-cpu-Zt8Wk3Qm6Rb1Vx9Hd4Lc7Nf2Gs5Jp0Ye",
        issuer="http://127.0.0.1:8000",
        secret_key_file=str(folder / "secret.key"),
        dpop_proof_max_age=600,  # the proofs are made before the run, which may take minutes
    )
    app = create_app(settings)
    stop = await _lifespan(app)
    ctx = STATE.get("tokensmith") or app.state.ctx  # lifespan state, or an older version's
    jwks = None
    if pkjwt:
        import json

        from cryptography.hazmat.primitives.asymmetric import ec
        from jwt.algorithms import ECAlgorithm

        key = ec.generate_private_key(ec.SECP256R1())
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "b"}
        jwks = json.dumps({"keys": [public]})
        ASSERTION_KEY["key"] = key
    spec = ClientSpec(
        name="bench", scope="read write", token_format="opaque" if opaque else "jwt", jwks=jwks
    )
    client, secret = await create_client(ctx.store, ctx.clock, ctx.rand, spec, 86400)
    ASSERTION_KEY["client_id"] = client.client_id
    auth = base64.b64encode(f"{client.client_id}:{secret}".encode())
    return app, b"Basic " + auth, stop


async def run(
    folder: Path,
    app_name: str,
    n: int,
    profile: bool,
    opaque: bool,
    dpop: bool = False,
    pkjwt: bool = False,
    concurrency: int = 1,
) -> float:
    if app_name == "floor":
        app, auth, stop = _floor_app(folder)
    else:
        app, auth, stop = await _tokensmith(folder, opaque, pkjwt)
    base = _scope(auth)
    warm = min(n, 500)
    scopes = _dpop_scopes(base, warm + n) if dpop else None
    bodies: list[bytes] | None = None
    if pkjwt:
        aud = "http://127.0.0.1:8000" + base["path"]
        bodies = _assertions(warm + n, ASSERTION_KEY["client_id"], ASSERTION_KEY["key"], aud)
        scopes = [
            _with_body(s, b) for s, b in zip(scopes or [base] * len(bodies), bodies, strict=True)
        ]
    statuses: set[int] = set()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def one(i: int) -> None:
        body = bodies[i] if bodies else BODY

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {**(scopes[i] if scopes else base), "state": STATE.copy()}
        await app(scope, receive, send)

    async def requests(first: int, last: int) -> None:
        for start in range(first, last, concurrency):
            await asyncio.gather(*(one(i) for i in range(start, min(start + concurrency, last))))

    await requests(0, warm)  # warm-up: caches, the key ring, the first inserts
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    start = time.process_time()
    await requests(warm, warm + n)
    spent = time.process_time() - start
    if profiler:
        profiler.disable()
        order = os.environ.get("APP_CPU_SORT", "cumulative")  # or tottime: self time
        pstats.Stats(profiler, stream=sys.__stdout__).sort_stats(order).print_stats(40)
    await stop()
    if statuses != {200}:
        raise SystemExit(f"answers other than 200: {sorted(statuses)}")
    return spent / n * 1e6


def _with_body(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    """``scope`` without Basic credentials, with the length of ``body``."""
    headers = [
        (k, str(len(body)).encode() if k == b"content-length" else v)
        for k, v in scope["headers"]
        if k != b"authorization"
    ]
    return dict(scope, headers=headers)


def _dpop_scopes(base: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` request scopes, each with a DPoP header of its own."""
    proofs = _proofs(n, "http://127.0.0.1:8000" + base["path"])
    return [dict(base, headers=[*base["headers"], (b"dpop", proof)]) for proof in proofs]


def _floor_app(folder: Path) -> tuple[App, bytes, Callable[[], Any]]:
    """The floor reference app (``floor_app.py``) with the key main() made and a secret."""
    os.environ.update(FLOOR_KEY_FILE=str(folder / "floor.pem"), FLOOR_CLIENT_SECRET="floor-secret")
    sys.path.insert(0, str(Path(__file__).parent))
    import floor_app

    async def stop() -> None:
        return None

    return floor_app.app, b"Basic " + base64.b64encode(b"bench-client:floor-secret"), stop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--app", choices=("tokensmith", "floor"), default="tokensmith")
    p.add_argument("-n", type=int, default=20_000, help="measured requests (default 20,000)")
    p.add_argument("--opaque", action="store_true", help="a client with stored opaque tokens")
    p.add_argument("--dpop", action="store_true", help="a DPoP proof on every request")
    p.add_argument(
        "--private-key-jwt", action="store_true", help="a client assertion instead of Basic"
    )
    p.add_argument("--profile", action="store_true", help="print the costliest functions")
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=1,
        help="requests in flight at once (default 1: one after another)",
    )
    args = p.parse_args()
    if (args.dpop or args.private_key_jwt) and args.app != "tokensmith":
        p.error("--dpop and --private-key-jwt need --app tokensmith")
    import uvloop

    with tempfile.TemporaryDirectory(prefix="app-cpu-") as tmp, open(Path(tmp) / "log", "w") as log:
        folder = Path(tmp)
        floor = Path(__file__).with_name("floor_app.py")
        subprocess.run(
            [sys.executable, str(floor), "--gen-key", str(folder / "floor.pem")], check=True
        )
        sys.stderr = log  # the audit log, as a server writes it to its log file
        try:
            per_request = uvloop.run(
                run(
                    folder,
                    args.app,
                    args.n,
                    args.profile,
                    args.opaque,
                    args.dpop,
                    args.private_key_jwt,
                    args.concurrency,
                )
            )
        finally:
            sys.stderr = sys.__stderr__
    kind = "opaque" if args.opaque and args.app == "tokensmith" else "jwt"
    kind += "+private_key_jwt" if args.private_key_jwt else ""
    kind += "+dpop" if args.dpop else ""
    kind += f", {args.concurrency} at once" if args.concurrency > 1 else ""
    print(f"{args.app} {kind}: {per_request:.1f} µs CPU per request", file=sys.__stdout__)


if __name__ == "__main__":
    main()
