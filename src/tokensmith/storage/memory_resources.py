"""Registered resources (RFC 8707) in memory, mixed into
:class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

from tokensmith.core.models import Resource

__all__ = ["ResourcesMemoryMixin"]


class ResourcesMemoryMixin:
    """:class:`~tokensmith.core.ports.ResourceStore`; atomic because nothing awaits."""

    @property
    def resources(self) -> dict[str, Resource]:
        found = self.__dict__.get("_resources")
        if found is None:
            found = self.__dict__["_resources"] = {}
        assert isinstance(found, dict)
        return found

    async def add_resource(self, resource: Resource) -> None:
        if resource.identifier in self.resources:
            raise KeyError(resource.identifier)
        self.resources[resource.identifier] = resource

    async def get_resource(self, identifier: str) -> Resource | None:
        return self.resources.get(identifier)

    async def list_resources(self) -> list[Resource]:
        return sorted(self.resources.values(), key=lambda r: r.identifier)

    async def remove_resource(self, identifier: str) -> bool:
        return self.resources.pop(identifier, None) is not None
