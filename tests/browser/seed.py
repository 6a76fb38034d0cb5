"""Fills a folder of a user's personal space with many small files through the storage core itself,
in its own process with the server's settings: what takes a client minutes of PUTs (a request each)
is a few seconds here. The running server sees them at once: all metadata lives on the storage.

    python -m tests.browser.seed <user> <folder> <count>
"""

from __future__ import annotations

import asyncio
import sys

from infiniscale.cli import resolve
from infiniscale.core.files import FileService
from infiniscale.core.spaces import Limits, Spaces
from infiniscale.drivers.bus_local import LocalEventBus
from infiniscale.runtime import build_directory
from infiniscale.storage_setup import build_registry


async def seed(username: str, folder: str, count: int) -> None:
    settings = resolve()
    registry = build_registry(settings)
    files = FileService(registry, LocalEventBus(), spaces=Spaces(registry, Limits()))
    user = build_directory(settings).get_by_name(username)
    assert user is not None, f"no user {username}"
    space_id = await files.ensure_personal_space(user)
    root = await files.resolve(user, space_id, [])
    await files.mkdir(user, root, folder, frozenset())
    for i in range(count):
        await files.upload_small(user, space_id, [folder, f"report-{i:05}.txt"], b"%d" % i,
                                 validate=lambda parent, existing: None)


if __name__ == "__main__":
    asyncio.run(seed(sys.argv[1], sys.argv[2], int(sys.argv[3])))
