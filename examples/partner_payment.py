"""The partner app's side of one payment: lodge a consent, have the user approve it, pay.

    echo "$APP_SECRET" | python examples/partner_payment.py \\
        --issuer http://127.0.0.1:8000 --client-id "$APP_ID" --api http://127.0.0.1:8002 \\
        --amount 120.00 --currency EUR --creditor-name "Merchant A" \\
        --creditor-iban DE02120300000000202051

1. ``create_consent``: the app's own client_credentials token (scope ``consents``) lodges
   the payment at ``POST {issuer}/oauth/consents``; the consent awaits authorization.
2. A pushed authorization request (RFC 9126) names the consent (``consent_id``) instead of
   ``authorization_details``, with PKCE (RFC 7636) and ``state``.
3. The URL printed is for the user: they sign in, see the amount and the payee, approve.
4. The browser comes back to ``--redirect-uri`` (default
   ``http://127.0.0.1:8765/callback``, registered with the app), where this script listens
   for the one request that carries the code, and exchanges it.
5. ``POST {api}/payments`` pays; a second try shows the consent spent (403).

The app needs the grants ``authorization_code`` and ``client_credentials``, the scopes
``write`` (asked for with the payment) and ``consents``, and the redirect URI; the
payments API is ``examples/payment_initiation.py``.
"""

from __future__ import annotations

import argparse
import http.server
import sys
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tokensmith.client import PKCE, TokenClient, make_state


def payment_detail(amount: str, currency: str, creditor_name: str, iban: str) -> dict[str, Any]:
    """One payment as RFC 9396 ``authorization_details`` (``payment_initiation``)."""
    return {
        "type": "payment_initiation",
        "instructedAmount": {"currency": currency, "amount": amount},
        "creditorName": creditor_name,
        "creditorAccount": {"iban": iban},
    }


def push_authorization(
    tc: TokenClient,
    client_secret: str,
    consent_id: str,
    redirect_uri: str,
    state: str,
    pkce: PKCE,
    scope: str = "write",
) -> str:
    """Push the authorization request for ``consent_id`` (RFC 9126 §2.1, the client
    authenticated by HTTP Basic) and return the URL to send the user to (§4)."""
    response = httpx.post(
        tc.metadata["pushed_authorization_request_endpoint"],
        auth=(tc.client_id, client_secret),
        data={
            "response_type": "code",
            "client_id": tc.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "consent_id": consent_id,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
        },
    )
    response.raise_for_status()
    query = urlencode({"client_id": tc.client_id, "request_uri": response.json()["request_uri"]})
    return f"{tc.authorization_endpoint}?{query}"


class _Callback(http.server.BaseHTTPRequestHandler):
    """The app's redirect endpoint: keeps the query of the request that reaches it."""

    def do_GET(self) -> None:
        self.server.query = parse_qs(urlsplit(self.path).query)  # type: ignore[attr-defined]
        body = b"<!doctype html><title>Partner</title><h1>Back at the app</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def listen(redirect_uri: str) -> http.server.HTTPServer:
    """Bind the loopback ``redirect_uri`` before the user is sent anywhere."""
    where = urlsplit(redirect_uri)
    return http.server.HTTPServer((where.hostname or "127.0.0.1", where.port or 80), _Callback)


def receive_code(listener: http.server.HTTPServer, state: str, timeout: float = 300.0) -> str:
    """Wait for the user's return; the code it brings (RFC 6749 §4.1.2), once ``state``
    is checked."""
    listener.timeout = timeout
    listener.handle_request()
    found: dict[str, list[str]] = getattr(listener, "query", {})
    if found.get("state") != [state]:
        raise SystemExit("the answer's state is not ours: not exchanging")
    if "code" not in found:
        raise SystemExit(f"no code: {found.get('error', ['?'])[0]}")
    return found["code"][0]


def pay(api: str, tc: TokenClient, payment: dict[str, str]) -> httpx.Response:
    """``POST {api}/payments`` with the user's token (``auth=tc``: Bearer, or DPoP)."""
    return httpx.post(api.rstrip("/") + "/payments", json=payment, auth=tc)


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--issuer", required=True)
    cli.add_argument("--client-id", required=True)
    cli.add_argument("--api", default="http://127.0.0.1:8002")
    cli.add_argument("--redirect-uri", default="http://127.0.0.1:8765/callback")
    cli.add_argument("--amount", required=True)
    cli.add_argument("--currency", default="EUR")
    cli.add_argument("--creditor-name", required=True)
    cli.add_argument("--creditor-iban", required=True)
    args = cli.parse_args(argv)
    secret = sys.stdin.readline().strip()  # never on the command line

    with TokenClient.from_issuer(args.issuer, args.client_id, secret) as tc:
        detail = payment_detail(args.amount, args.currency, args.creditor_name, args.creditor_iban)
        consent = tc.create_consent([detail], expires_in=600)
        print(f"consent {consent.consent_id}: {consent.status}", flush=True)

        pkce, state = PKCE.generate(), make_state()
        url = push_authorization(tc, secret, consent.consent_id, args.redirect_uri, state, pkce)
        with listen(args.redirect_uri) as listener:
            print(f"open this in a browser, sign in and approve:\n  {url}", flush=True)
            code = receive_code(listener, state)
        tc.exchange_code(code, args.redirect_uri, pkce.verifier)
        print(f"consent {consent.consent_id}: {tc.get_consent(consent.consent_id).status}")

        payment = {
            "amount": args.amount,
            "currency": args.currency,
            "creditor_iban": args.creditor_iban,
            "creditor_name": args.creditor_name,
        }
        first = pay(args.api, tc, payment)
        print(f"payment: {first.status_code} {first.text}")
        again = pay(args.api, tc, payment)
        print(f"the same payment again: {again.status_code} {again.text}")
        print(f"consent {consent.consent_id}: {tc.get_consent(consent.consent_id).status}")


if __name__ == "__main__":
    main()
