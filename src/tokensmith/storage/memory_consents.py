"""Consent resources in memory, mixed into :class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tokensmith.core.models import CONSENT_AUTHORIZED, CONSENT_AWAITING, ConsentResource

__all__ = ["ConsentResourcesMemoryMixin"]


class ConsentResourcesMemoryMixin:
    """:class:`~tokensmith.core.ports.ConsentResourceStore`; atomic because nothing awaits."""

    @property
    def consent_resources(self) -> dict[str, ConsentResource]:
        found = self.__dict__.get("_consent_resources")
        if found is None:
            found = self.__dict__["_consent_resources"] = {}
        assert isinstance(found, dict)
        return found

    async def add_consent_resource(self, consent: ConsentResource) -> None:
        if consent.consent_id in self.consent_resources:
            raise KeyError("a consent with this id exists")
        self.consent_resources[consent.consent_id] = consent

    async def get_consent_resource(self, consent_id: str) -> ConsentResource | None:
        return self.consent_resources.get(consent_id)

    async def authorize_consent_resource(
        self,
        consent_id: str,
        client_id: str,
        *,
        user_id: str,
        merchant_id: str,
        family_id: str,
        at: float,
        expires_at: float,
    ) -> bool:
        c = self.consent_resources.get(consent_id)
        if (
            c is None
            or c.client_id != client_id
            or c.status != CONSENT_AWAITING
            or at >= c.expires_at
        ):
            return False
        self.consent_resources[consent_id] = dataclasses.replace(
            c,
            status=CONSENT_AUTHORIZED,
            status_updated_at=at,
            user_id=user_id,
            merchant_id=merchant_id,
            family_id=family_id,
            approved_at=at,
            expires_at=expires_at,
        )
        return True

    async def change_consent_resource(
        self,
        consent_id: str,
        old: Sequence[str],
        new: str,
        at: float,
        *,
        user_id: str | None = None,
        merchant_id: str | None = None,
    ) -> bool:
        c = self.consent_resources.get(consent_id)
        if c is None or c.status not in old or at >= c.expires_at:
            return False
        self.consent_resources[consent_id] = dataclasses.replace(
            c,
            status=new,
            status_updated_at=at,
            user_id=c.user_id if user_id is None else user_id,
            merchant_id=c.merchant_id if merchant_id is None else merchant_id,
        )
        return True

    async def list_consent_resources(
        self, *, client_id: str | None = None, merchant_id: str | None = None
    ) -> list[ConsentResource]:
        found = [
            c
            for c in self.consent_resources.values()
            if (client_id is None or c.client_id == client_id)
            and (merchant_id is None or c.merchant_id == merchant_id)
        ]
        return sorted(found, key=lambda c: (c.created_at, c.consent_id))

    async def purge_consent_resources(self, before: float, batch: int) -> int:
        old = [k for k, c in self.consent_resources.items() if c.expires_at < before][:batch]
        for k in old:
            del self.consent_resources[k]
        return len(old)
