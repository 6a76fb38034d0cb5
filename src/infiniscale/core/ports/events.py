"""EventBus port: the core publishes; consumers subscribe with a group name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from infiniscale.core.model.events import Event


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator[Event]: ...

    def subscribe_batches(self, group: str, types: frozenset[str] | None = None,
                          max_batch: int = 256, linger_s: float = 0.0) -> AsyncIterator[list[Event]]:
        """Like `subscribe`, but hands over whatever is waiting (at least one event) at once; a batch
        counts as handled when the subscriber asks for the next one. For consumers whose commit is
        costly (an index), which then commit once per batch. With `linger_s`, a batch that is not
        full gathers what else arrives for that long after its first event: a steady trickle of
        events then makes one commit per `linger_s` instead of one per event."""
        ...

    def listen(self, types: frozenset[str] | None = None,
               subscribed: Callable[[], None] | None = None) -> AsyncIterator[Event]:
        """Every event published from now on, in every process that listens (no group, nothing
        kept for a listener that is away): for what each process must see, like live updates.
        `subscribed` is called once what is published from then on is sure to arrive (with a
        remote bus, after the first step of the iteration has subscribed there)."""
        ...
