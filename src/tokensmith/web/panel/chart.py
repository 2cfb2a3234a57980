"""Bar charts of token counts as plain geometry, drawn as inline SVG by the template.

No JavaScript is needed: each bar carries an SVG ``<title>`` (a native tooltip), and the
page repeats the numbers in a table for screen readers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from tokensmith.core.panel_models import DAY, HOUR, TokenCount, hour_of

__all__ = ["Bar", "Chart", "daily_chart", "hourly_chart"]

WIDTH = 960
HEIGHT = 210
#: Widest bar drawn, in chart units.
MAX_BAR = 56
LEFT = 44
BOTTOM = 28
TOP = 12


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    issued_y: float
    issued_h: float
    refused_y: float
    refused_h: float
    label: str
    period: str
    tip: str
    issued: int
    refused: int
    show_label: bool


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: list[Bar]
    #: (y, label) of the horizontal grid lines.
    ticks: list[tuple[float, str]]
    total_issued: int
    total_refused: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM


def _nice(value: int) -> int:
    """The smallest of 4, 10, 20, 40, 50, 100, 200, ... that is at least ``value``."""
    if value <= 4:
        return 4
    power: int = 10 ** len(str(value)) // 10
    return next(m * power for m in (1, 2, 4, 5, 10) if m * power >= value)


def _sums(counts: Iterable[TokenCount], size: int) -> dict[int, tuple[int, int]]:
    sums: dict[int, tuple[int, int]] = {}
    for c in counts:
        start = c.hour - c.hour % size
        issued, refused = sums.get(start, (0, 0))
        sums[start] = (issued + c.issued, refused + c.refused)
    return sums


def _chart(
    title: str,
    starts: list[int],
    sums: dict[int, tuple[int, int]],
    labels: list[str],
    tips: list[str],
    every: int,
) -> Chart:
    values = [sums.get(s, (0, 0)) for s in starts]
    top = _nice(max((i + r for i, r in values), default=0))
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / len(starts)
    width = min(slot * 0.7, MAX_BAR)
    bars = []
    for n, ((issued, refused), label, tip) in enumerate(zip(values, labels, tips, strict=True)):
        ih, rh = plot_h * issued / top, plot_h * refused / top
        base = HEIGHT - BOTTOM
        words = f"{tip}: {issued} issued" + (f", {refused} refused" if refused else "")
        bars.append(
            Bar(
                x=round(LEFT + (n + 0.5) * slot - width / 2, 2),
                width=round(width, 2),
                issued_y=round(base - ih, 2),
                issued_h=round(ih, 2),
                refused_y=round(base - ih - rh, 2),
                refused_h=round(rh, 2),
                label=label,
                period=tip,
                tip=words,
                issued=issued,
                refused=refused,
                show_label=n % every == 0 or n == len(starts) - 1,
            )
        )
    ticks = [(round(HEIGHT - BOTTOM - plot_h * k / 4, 2), f"{top * k // 4:,}") for k in range(5)]
    return Chart(
        title=title,
        bars=bars,
        ticks=ticks,
        total_issued=sum(i for i, _ in values),
        total_refused=sum(r for _, r in values),
    )


def hourly_chart(counts: Iterable[TokenCount], now: float) -> Chart:
    """The last 24 hours (UTC), one bar an hour, the current hour last."""
    last = hour_of(now)
    starts = [last - HOUR * k for k in range(23, -1, -1)]
    labels = [time.strftime("%H:00", time.gmtime(s)) for s in starts]
    tips = [time.strftime("%d %b %H:00 UTC", time.gmtime(s)) for s in starts]
    return _chart("Last 24 hours", starts, _sums(counts, HOUR), labels, tips, 3)


def daily_chart(counts: Iterable[TokenCount], now: float) -> Chart:
    """The last 7 days (UTC), one bar a day, today last."""
    today = int(now // DAY) * DAY
    starts = [today - DAY * k for k in range(6, -1, -1)]
    labels = [time.strftime("%a %d", time.gmtime(s)) for s in starts]
    tips = [time.strftime("%a %d %b UTC", time.gmtime(s)) for s in starts]
    return _chart("Last 7 days", starts, _sums(counts, DAY), labels, tips, 1)
