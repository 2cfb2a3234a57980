"""The merchant panel's storage in memory, mixed into
:class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tokensmith.core.models import TokenFamily
from tokensmith.core.panel_models import AuthFailure, Reveal, TokenCount

__all__ = ["PanelMemoryMixin"]


@dataclass(slots=True)
class _PanelTables:
    stats: dict[tuple[str, int], TokenCount] = field(default_factory=dict)
    failures: list[AuthFailure] = field(default_factory=list)
    reveals: dict[str, Reveal] = field(default_factory=dict)


class PanelMemoryMixin:
    """Needs ``self.families`` (the store's token families)."""

    families: dict[str, TokenFamily]

    @property
    def panel(self) -> _PanelTables:
        found = self.__dict__.get("_panel_tables")
        if found is None:
            found = self.__dict__["_panel_tables"] = _PanelTables()
        assert isinstance(found, _PanelTables)
        return found

    async def add_token_counts(self, counts: Sequence[TokenCount]) -> None:
        for c in counts:
            key = (c.client_id, c.hour)
            old = self.panel.stats.get(key)
            self.panel.stats[key] = old.plus(c) if old else c

    async def token_counts(self, client_ids: Sequence[str], since: int) -> list[TokenCount]:
        wanted = set(client_ids)
        rows = [c for c in self.panel.stats.values() if c.client_id in wanted and c.hour >= since]
        return sorted(rows, key=lambda c: (c.hour, c.client_id))

    async def last_used(self, client_ids: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for c in await self.token_counts(client_ids, 0):
            if c.last_issued_at is not None:
                found[c.client_id] = max(found.get(c.client_id, 0.0), c.last_issued_at)
        return found

    async def add_auth_failures(self, failures: Sequence[AuthFailure]) -> None:
        self.panel.failures.extend(failures)

    async def recent_auth_failures(self, merchant_id: str | None, limit: int) -> list[AuthFailure]:
        mine = [f for f in enumerate(self.panel.failures) if f[1].merchant_id == merchant_id]
        mine.sort(key=lambda f: (f[1].at, f[0]), reverse=True)
        return [f for _, f in mine[:limit]]

    async def purge_activity(self, stats_before: int, failures_before: float, keep: int) -> int:
        p = self.panel
        old = [k for k, c in p.stats.items() if c.hour < stats_before]
        for k in old:
            del p.stats[k]
        kept = [f for f in p.failures if f.at >= failures_before]
        kept = kept[-keep:] if keep > 0 else []
        deleted = len(old) + len(p.failures) - len(kept)
        p.failures = kept
        return deleted

    async def add_reveal(self, reveal: Reveal) -> None:
        self.panel.reveals[reveal.reveal_hash] = reveal

    async def take_reveal(self, reveal_hash: str, session_hash: str, now: float) -> Reveal | None:
        found = self.panel.reveals.get(reveal_hash)
        if found is None or found.session_hash != session_hash or found.expires_at <= now:
            return None
        return self.panel.reveals.pop(reveal_hash)

    async def purge_reveals(self, before: float) -> int:
        old = [h for h, r in self.panel.reveals.items() if r.expires_at < before]
        for h in old:
            del self.panel.reveals[h]
        return len(old)

    async def merchant_families(self, merchant_id: str) -> list[TokenFamily]:
        mine = [
            f
            for f in self.families.values()
            if f.merchant_id == merchant_id and f.revoked_at is None
        ]
        return sorted(mine, key=lambda f: (f.created_at, f.family_id))
