"""In-process EventBus: consumer groups over asyncio queues, with a bounded backlog per group."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from infiniscale.core.model.events import Event

log = logging.getLogger("infiniscale.events")


class LocalEventBus:
    def __init__(self, backlog: int = 10_000) -> None:
        self.backlog = backlog
        self._groups: dict[str, tuple[asyncio.Queue[Event], frozenset[str] | None]] = {}
        self.published = 0
        self._listeners: list[tuple[asyncio.Queue[Event], frozenset[str] | None]] = []

    async def publish(self, event: Event) -> None:
        self.published += 1
        for queue, types in list(self._listeners):
            if (types is None or event.type in types) and not queue.full():
                queue.put_nowait(event)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event %s", event.type, extra={"event": event.to_dict()})
        for name, (queue, types) in self._groups.items():
            if types is not None and event.type not in types:
                continue
            if queue.full():
                log.warning("event backlog of group %s is full, dropping the oldest event", name)
                queue.get_nowait()
            queue.put_nowait(event)

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator[Event]:
        """Joins `group` now (events published from here on are kept), then iterates them."""
        queue, _ = self._groups.setdefault(group, (asyncio.Queue(self.backlog), types))

        async def events() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        return events()

    def subscribe_batches(self, group: str, types: frozenset[str] | None = None,
                          max_batch: int = 256, linger_s: float = 0.0) -> AsyncIterator[list[Event]]:
        queue, _ = self._groups.setdefault(group, (asyncio.Queue(self.backlog), types))

        async def batches() -> AsyncIterator[list[Event]]:
            loop = asyncio.get_running_loop()
            while True:
                batch = [await queue.get()]
                until = loop.time() + linger_s
                while len(batch) < max_batch:
                    if not queue.empty():
                        batch.append(queue.get_nowait())
                        continue
                    left = until - loop.time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), left))
                    except TimeoutError:
                        break
                yield batch

        return batches()

    def listen(self, types: frozenset[str] | None = None,
               subscribed: Callable[[], None] | None = None) -> AsyncIterator[Event]:
        entry: tuple[asyncio.Queue[Event], frozenset[str] | None] = (asyncio.Queue(self.backlog), types)
        self._listeners.append(entry)
        if subscribed is not None:
            subscribed()

        async def events() -> AsyncIterator[Event]:
            try:
                while True:
                    yield await entry[0].get()
            finally:
                self._listeners.remove(entry)

        return events()
