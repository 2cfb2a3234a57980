"""Splitting URIs that come from outside (RFC 3986 §3) without trusting them to parse.

:func:`urllib.parse.urlsplit` raises :class:`ValueError` on an unclosed or invalid IPv6
literal (``http://[::1/cb``), and the ``port`` of its result raises on a port that is not
a number from 0 to 65535. Every URI a client, a form or a command line hands us goes
through :func:`split_uri` instead, which answers ``None`` for such a URI, so that a
malformed URI is refused like any other unacceptable one and never raises.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

__all__ = ["SCRIPT_SCHEMES", "split_uri"]

#: Schemes that run or embed content in the page that navigates to them; never a place to
#: send a browser (RFC 9700 §4.1 on redirect URI validation, RFC 8252 §7.1 for the
#: private-use schemes native apps may use instead).
SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "data", "blob", "file", "about"})


#: What no URI holds (RFC 3986 §2; RFC 3987 §2.2 excludes them from IRIs too): C0
#: controls, space and DEL. ``urlsplit`` silently drops some of them.
_NOT_IN_URIS = re.compile(r"[\x00-\x20\x7f]")


def split_uri(value: str) -> SplitResult | None:
    """The parts of ``value``, or ``None`` when it is not a well-formed URI reference:
    a control character or a space (RFC 3986 §2), a malformed IPv6 literal (§3.2.2) or a
    port outside 0-65535 (§3.2.3)."""
    if _NOT_IN_URIS.search(value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts
