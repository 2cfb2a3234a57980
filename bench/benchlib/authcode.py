"""The authorization-code flow as a browser and a partner app drive it (stdlib only).

Used to seed refresh tokens on servers that issue them only through this flow: one
keep-alive connection with its own cookies; redirects are not followed, their
``Location`` is read, and so is the URL a continue page refreshes to (the answer of a
form whose next stop may be another site). The first authorization shows the login
form, then the consent form (its "remember" box is checked, as the page has it); later
ones with the same session and the remembered consent redirect with a code at once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import json
import re
import secrets
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

LOGIN_ACTION = "/login"
CONSENT_ACTION = "/oauth/authorize/decision"
TOKEN_PATH = "/oauth/token"
FORM_TYPE = "application/x-www-form-urlencoded"
_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]*)">')


@dataclass(frozen=True)
class PartnerApp:
    """A confidential client allowed the code flow, and the user who approves it."""

    client_id: str
    auth: str  # the Basic Authorization header value
    redirect_uri: str
    scope: str
    email: str
    password: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class FormFields(HTMLParser):
    """The fields a browser would submit with the form posting to ``action``:
    hidden and text inputs with their value, checkboxes only when checked."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.found = False
        self.inside = False
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action
            self.found = self.found or self.inside
        elif tag == "input" and self.inside and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "image", "file"):
                self.fields[str(a["name"])] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_fields(html: str, action: str) -> dict[str, str] | None:
    parser = FormFields(action)
    parser.feed(html)
    return parser.fields if parser.found else None


@dataclass
class Browser:
    """One keep-alive HTTP/1.1 connection that keeps the cookies it is given."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, target: str, form: dict[str, str] | None = None, auth: str = ""
    ) -> Answer:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if auth:
            headers["Authorization"] = auth
        body = None if form is None else urlencode(form)
        if body is not None:
            headers["Content-Type"] = FORM_TYPE
        try:
            return self._send(method, target, body, headers)
        except (http.client.RemoteDisconnected, ConnectionError):
            self.close()  # the server closed an idle keep-alive connection: once more
            return self._send(method, target, body, headers)

    def _send(self, method: str, target: str, body: str | None, headers: dict[str, str]) -> Answer:
        if self.conn is None:
            parts = urlsplit(self.base_url)
            self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.conn.request(method, target, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode(errors="replace")
        self._keep(response.headers.get_all("Set-Cookie") or [])
        return Answer(response.status, response.headers, text)

    def _keep(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def pkce_pair() -> tuple[str, str]:
    """RFC 7636: a verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(browser: Browser, app: PartnerApp, challenge: str) -> str:
    """Log in and allow as needed; the code from the redirect's ``Location``."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": app.scope,
            "state": "x",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    target = "/oauth/authorize?" + query
    answer = browser.request("GET", target)
    login = form_fields(answer.text, LOGIN_ACTION) if answer.status == 200 else None
    if login is not None:
        sent = browser.request("POST", LOGIN_ACTION, login | _credentials(app))
        answer = browser.request("GET", continued_to(sent, "login"))
    consent = form_fields(answer.text, CONSENT_ACTION) if answer.status == 200 else None
    if consent is not None:
        decided = browser.request("POST", CONSENT_ACTION, consent | {"decision": "allow"})
        location = continued_to(decided, "authorization")
    else:
        _expect(answer, 303, "authorization")
        location = answer.location
    code = parse_qs(urlsplit(location).query).get("code")
    if not code:
        raise RuntimeError(f"no code in the redirect: {location[:200]}")
    return code[0]


def continued_to(answer: Answer, step: str) -> str:
    """The URL a continue page (a 200 that refreshes at once) sends the browser on to."""
    _expect(answer, 200, step)
    found = _REFRESH.search(answer.text)
    if found is None:
        raise RuntimeError(f"{step} answered no continue page: {answer.text[:300]}")
    return html.unescape(found.group(1))


def _credentials(app: PartnerApp) -> dict[str, str]:
    return {"email": app.email, "password": app.password}


def _expect(answer: Answer, status: int, step: str) -> None:
    if answer.status != status:
        raise RuntimeError(f"{step} answered {answer.status}: {answer.text[:300]}")


def exchange(browser: Browser, app: PartnerApp, code: str, verifier: str) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_uri,
        "code_verifier": verifier,
    }
    answer = browser.request("POST", TOKEN_PATH, form, auth=app.auth)
    _expect(answer, 200, "code exchange")
    data = json.loads(answer.text)
    return data if isinstance(data, dict) else {}


def refresh_tokens(browser: Browser, app: PartnerApp, count: int) -> list[str]:
    """``count`` refresh tokens, each from its own authorization."""
    tokens = []
    for _ in range(count):
        verifier, challenge = pkce_pair()
        data = exchange(browser, app, authorize(browser, app, challenge), verifier)
        if "refresh_token" not in data:
            raise RuntimeError(f"no refresh_token in the code exchange: {str(data)[:200]}")
        tokens.append(str(data["refresh_token"]))
    return tokens
