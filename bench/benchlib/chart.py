"""Bar chart of req/s per scenario; run with the bench venv's python (it has matplotlib).

Usage: python chart.py RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "tokensmith": "#d62728",
    "floor": "#7f7f7f",
    "node-oidc-provider": "#2ca02c",
    "authlib": "#1f77b4",
    "django-oauth-toolkit": "#9467bd",
}


def _label(r: dict[str, Any]) -> str:
    return f"{r['server']} · {r['db']} · {r['workers']}w"


def _panel(ax: Any, scenario: str, rows: list[dict[str, Any]]) -> None:
    rows = sorted(rows, key=lambda r: r["rps"])
    values = [r["rps"] for r in rows]
    ax.barh(
        [_label(r) for r in rows], values, color=[COLORS.get(r["family"], "#444444") for r in rows]
    )
    if max(values) / max(min(values), 1e-9) > 50:
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 8)
    else:
        ax.set_xlim(0, max(values) * 1.35)
    for i, r in enumerate(rows):
        ax.text(
            r["rps"], i, f" {r['rps']:,.0f}/s  p99 {r['p99_ms']:.1f} ms", va="center", fontsize=7
        )
    ax.set_title(scenario, fontsize=10, loc="left")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("requests per second", fontsize=8)


def main(src: str, out: str) -> None:
    with open(src) as fh:
        doc = json.load(fh)
    ok = [r for r in doc["results"] if r["status"] == "ok" and r["rps"] > 0]
    scenarios = list(dict.fromkeys(r["scenario"] for r in ok))
    if not scenarios:
        return
    heights = [max(1.2, 0.32 * sum(r["scenario"] == s for r in ok) + 0.8) for s in scenarios]
    fig, axes = plt.subplots(
        len(scenarios),
        1,
        figsize=(11, sum(heights) + 0.5),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        _panel(ax, scenario, [r for r in ok if r["scenario"] == scenario])
    families = list(dict.fromkeys(r["family"] for r in ok))
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS.get(f, "#444444")) for f in families]
    fig.legend(handles, families, loc="lower center", ncol=len(families), fontsize=8)
    fig.suptitle(f"tokensmith benchmark {doc['date']} (wrk, 32 connections)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
