"""EventBus port: the core publishes; consumers subscribe with a group name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from infiniscale.core.model.events import Event


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator[Event]: ...
