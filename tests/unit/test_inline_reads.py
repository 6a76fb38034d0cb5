"""Metadata reads run on the event loop while they are fast and the storage is local; a slow one
sends reads to threads for a while; network filesystems are recognised and left to threads."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infiniscale.core.files import FileService
from infiniscale.core.inline_reads import InlineReads
from infiniscale.core.model.identity import User
from infiniscale.drivers.bus_local import LocalEventBus
from infiniscale.drivers.decomposed.fsutil import filesystem_type, on_network_filesystem
from infiniscale.drivers.decomposed.tree import DecomposedStorage

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /srv/data rw,relatime shared:9 - nfs4 files:/export rw,vers=4.2
31 30 0:41 / /srv/data/cache rw shared:10 - tmpfs tmpfs rw
32 22 0:42 / /mnt/my\\040box rw shared:11 - fuse.sshfs me@box: rw
33 22 0:43 / /srv/dataset rw shared:12 - xfs /dev/sdb1 rw
"""


@pytest.mark.parametrize(("path", "kind", "network"), [
    ("/srv/data/users", "nfs4", True),
    ("/srv/data", "nfs4", True),
    ("/srv/data/cache/x", "tmpfs", False),  # a mount inside a mount
    ("/srv/dataset/x", "xfs", False),  # a prefix of the name is not a parent folder
    ("/mnt/my box/files", "fuse.sshfs", True),
    ("/home/x", "ext4", False),
])
def test_the_filesystem_of_a_path(path, kind, network):
    assert filesystem_type(path, MOUNTINFO) == kind
    assert on_network_filesystem(path, MOUNTINFO) is network


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fast_reads_stay_on_the_loop_and_a_slow_one_sends_reads_to_threads_for_a_while():
    clock = Clock()

    def where(delay: float = 0.0) -> int:
        time.sleep(delay)
        return threading.get_ident()

    async def run() -> None:
        loop_thread = threading.get_ident()
        with ThreadPoolExecutor(1) as executor:
            reads = InlineReads(executor, slow_s=0.05, threaded_for_s=10, clock=clock)
            assert await reads(where) == loop_thread
            assert await reads(where, 0.1) == loop_thread  # slow, but already running where it is
            assert await reads(where) != loop_thread  # the next ones go to a thread
            clock.now = 9.9
            assert await reads(where) != loop_thread
            clock.now = 10.1
            assert await reads(where) == loop_thread  # tried on the loop again
            with pytest.raises(ZeroDivisionError):  # errors pass through
                await reads(lambda: 1 / 0)
            assert reads.inline

    asyncio.run(run())


def test_resolving_on_local_storage_takes_no_thread(tmp_path: Path):
    """The path walk of every request: a thread hop cost more than the walk itself."""
    storage = DecomposedStorage(str(tmp_path / "storage"))
    files = FileService(storage, LocalEventBus(), storage_id="s")
    user = User(id="a1b2c3d4-0000-4000-8000-000000000001", username="einstein", display_name="Einstein")
    threads: set[int] = set()
    walk = storage.resolve

    def resolve(*args, **kwargs):
        threads.add(threading.get_ident())
        return walk(*args, **kwargs)

    storage.resolve = resolve  # type: ignore[method-assign]

    async def run() -> None:
        space_id = await files.ensure_personal_space(user)
        root = await files.resolve(user, space_id, [])
        await files.mkdir(user, root, "docs", frozenset())
        chain = await files.resolve(user, space_id, ["docs"])
        assert [n.name for n in chain[1:]] == ["docs"]
        assert threads == {threading.get_ident()}

    asyncio.run(run())


def test_a_small_folder_lists_without_a_thread_and_a_large_one_lists_whole(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "storage"))
    files = FileService(storage, LocalEventBus(), storage_id="s")
    user = User(id="a1b2c3d4-0000-4000-8000-000000000001", username="einstein", display_name="Einstein")
    listed_in: list[int] = []
    scan = storage.iter_children

    def iter_children(*args, **kwargs):
        for node in scan(*args, **kwargs):
            listed_in.append(threading.get_ident())
            yield node

    storage.iter_children = iter_children  # type: ignore[method-assign]

    async def names(folder) -> list[str]:
        listed_in.clear()
        return [n.name async for batch in files.children(folder.space_id, folder) for n in batch]

    async def run() -> None:
        loop_thread = threading.get_ident()
        space_id = await files.ensure_personal_space(user)
        root = await files.resolve(user, space_id, [])
        small = await files.mkdir(user, root, "small", frozenset())
        large = await files.mkdir(user, root, "large", frozenset())
        for i in range(3):
            await files.mkdir(user, [*root, small], f"s{i}", frozenset())
        for i in range(100):
            await files.mkdir(user, [*root, large], f"l{i}", frozenset())
        assert sorted(await names(small)) == ["s0", "s1", "s2"]
        assert set(listed_in) == {loop_thread}
        assert sorted(await names(large)) == sorted(f"l{i}" for i in range(100))
        assert listed_in.count(loop_thread) <= 64 < len(listed_in)  # the rest came from a thread

    asyncio.run(run())
