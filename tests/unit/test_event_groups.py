"""`event_groups` names exactly the consumer groups the event consumers subscribe with, and their
event types: the bus creates those groups before anything subscribes, and the stream keeps an
event only for groups that exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infiniscale.runtime import (
    build_activities,
    build_directory,
    build_mail_notifications,
    build_previews,
    build_registry,
    build_search_index,
    build_userlog,
    consumer_jobs,
    event_groups,
)
from infiniscale.settings import resolve


class RecordingBus:
    """Records the groups subscribed to; delivers nothing."""

    def __init__(self) -> None:
        self.groups: dict[str, frozenset[str] | None] = {}

    async def publish(self, event) -> None:
        pass

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator:
        self.groups[group] = frozenset(types) if types else None
        return self._nothing()

    def subscribe_batches(self, group: str, types: frozenset[str] | None = None, max_batch: int = 256,
                          linger_s: float = 0.0) -> AsyncIterator:
        return self.subscribe(group, types)

    def listen(self, types: frozenset[str] | None = None, subscribed=None) -> AsyncIterator:
        return self._nothing()

    async def _nothing(self) -> AsyncIterator:
        await asyncio.Event().wait()
        yield


def subscribed_groups(tmp_path: Path, env: dict[str, str]) -> tuple[dict, dict]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path / "data"),
                            "OCIS_CONFIG_DIR": str(tmp_path / "config"), **env})
    bus = RecordingBus()
    registry = build_registry(settings)
    directory = build_directory(settings)
    jobs = consumer_jobs(settings, bus, registry, build_search_index(settings), build_previews(settings),
                         build_userlog(settings, registry, directory),
                         build_mail_notifications(settings, registry, directory),
                         build_activities(settings, registry, directory))

    async def run() -> None:
        tasks = [asyncio.create_task(job()) for job in jobs]
        async with asyncio.timeout(10):
            while len(bus.groups) < len(event_groups(settings)):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # room for a group event_groups does not name
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    return bus.groups, event_groups(settings)


@pytest.mark.parametrize("env", [
    {},
    {"NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "AUDIT_LOG_TO_FILE": "true"},
    {"OCIS_EXCLUDE_RUN_SERVICES": "search,activitylog", "OCIS_DISABLE_PREVIEWS": "true"},
], ids=["default", "mail-and-audit", "fewest"])
def test_event_groups_are_the_groups_the_consumers_subscribe_with(tmp_path: Path, env: dict[str, str]) -> None:
    subscribed, declared = subscribed_groups(tmp_path, env)
    assert subscribed == declared
