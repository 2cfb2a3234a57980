"""The ``authorization_details`` types registered with the CLI (RFC 9396 §2) in memory,
mixed into :class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

__all__ = ["DetailsTypesMemoryMixin"]


class DetailsTypesMemoryMixin:
    """:class:`~tokensmith.core.ports.DetailsTypeStore`: type -> JSON Schema text."""

    @property
    def details_types(self) -> dict[str, str]:
        found = self.__dict__.get("_details_types")
        if found is None:
            found = self.__dict__["_details_types"] = {}
        assert isinstance(found, dict)
        return found

    async def list_details_types(self) -> dict[str, str]:
        return dict(sorted(self.details_types.items()))

    async def save_details_type(self, name: str, schema: str, at: float) -> None:
        self.details_types[name] = schema

    async def remove_details_type(self, name: str) -> bool:
        return self.details_types.pop(name, None) is not None
