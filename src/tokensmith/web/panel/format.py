"""Jinja filters of the panel's templates: times and scopes in words."""

from __future__ import annotations

import time

from jinja2 import Environment

from tokensmith.core.authorize import describe_scope

__all__ = ["ago", "install_filters", "iso", "when"]


def when(at: float | None) -> str:
    """``22 Nov 2025, 14:05 UTC``."""
    if at is None:
        return "\u2014"
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(at))


def iso(at: float | None) -> str:
    """For ``<time datetime>``."""
    return "" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def ago(at: float | None, now: float) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 days ago``, else the date."""
    if at is None:
        return "Never"
    seconds = max(0, int(now - at))
    if seconds < 60:
        return "Just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 30 * 86400:
        days = seconds // 86400
        return f"{days} day{'s' if days > 1 else ''} ago"
    return time.strftime("%d %b %Y", time.gmtime(at))


def until(at: float | None, now: float) -> str:
    """``in 5 min``, ``in 3 h``, ``in 2 days``."""
    if at is None:
        return ""
    seconds = max(0, int(at - now))
    if seconds < 3600:
        return f"in {max(1, seconds // 60)} min"
    if seconds < 86400:
        return f"in {seconds // 3600} h"
    return f"in {seconds // 86400} days"


def install_filters(env: Environment) -> None:
    env.filters.update(
        panel_when=when, panel_iso=iso, panel_ago=ago, panel_until=until, scope_words=describe_scope
    )
