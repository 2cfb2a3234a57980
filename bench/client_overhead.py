"""Cost the token client adds to a request once the token is cached.

Times are process CPU time (``time.process_time``), best of 5.

    .venv/bin/python bench/client_overhead.py

Measures (target < 5 µs each):
  * ``tc.get_token()`` on a warm cache;
  * the ``httpx.Auth`` flow step (``sync_auth_flow``: fetch cached token + set the
    ``Authorization`` header), minus the same step with httpx's no-op ``Auth``.
"""

from __future__ import annotations

import time

import httpx

from tokensmith.client import TokenClient


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": "a" * 40, "token_type": "Bearer", "expires_in": 3600}
    )


def per_call(fn, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        fn(n)
        best = min(best, (time.process_time() - start) / n)
    return best


def main() -> None:
    tc = TokenClient(
        "https://as.test/o/token/",
        "c",
        "s",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    tc.get_token()  # warm the cache
    get = tc.get_token

    def loop_get(n: int) -> None:
        for _ in range(n):
            get()

    request = httpx.Request("GET", "https://api.test/payments/")
    noop = httpx.Auth()

    def loop_flow(n: int) -> None:
        for _ in range(n):
            next(tc.sync_auth_flow(request))

    def loop_noop(n: int) -> None:
        for _ in range(n):
            next(noop.sync_auth_flow(request))

    t_get = per_call(loop_get, 1_000_000)
    t_flow = per_call(loop_flow, 200_000)
    t_noop = per_call(loop_noop, 200_000)
    print(f"get_token() warm cache:        {t_get * 1e6:.3f} µs/call")
    print(f"auth flow step (tokensmith):   {t_flow * 1e6:.3f} µs/request")
    print(f"auth flow step (httpx no-op):  {t_noop * 1e6:.3f} µs/request")
    print(f"overhead added by tokensmith:  {(t_flow - t_noop) * 1e6:.3f} µs/request (target < 5)")


if __name__ == "__main__":
    main()
