"""Real Chromium for the browser tests: Debian's ``chromium`` driven by Python Playwright
(never a browser that ``playwright install`` downloads), and the loopback page a partner
app's redirect lands on. A test that needs them skips cleanly where they are missing."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium", "redirect_listener", "require_chromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Headless, and nothing that reaches out to the network by itself (this machine's
#: network refuses it, many connections at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Any:
    """Playwright's sync API, or a skip if it or Debian's chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    return sync_api


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser, closed afterwards."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class _Landing(http.server.BaseHTTPRequestHandler):
    """A partner app's redirect endpoint: remembers each path it was sent to. With
    ``forward`` set, it sends the browser on there with a 302, as an app whose callback
    hands over to its dashboard does."""

    hits: list[str] = []
    forward: str | None = None

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.forward is not None and self.path.startswith("/callback"):
            self.send_response(302)
            self.send_header("location", self.forward)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = b"<!doctype html><title>Partner</title><h1>Connected</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@contextlib.contextmanager
def redirect_listener(forward: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """A loopback ``.../callback`` URL and the list of paths requested of it."""
    handler = type("Handler", (_Landing,), {"hits": [], "forward": forward})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/callback", handler.hits
    finally:
        httpd.shutdown()
        httpd.server_close()
