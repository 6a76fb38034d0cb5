"""Small uploads update the folders above them from the event loop while their locks are free, and
hand an ancestor whose lock is held elsewhere to a thread that waits for it: sizes add up either way."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from infiniscale.core.files import FileService
from infiniscale.core.model.identity import User
from infiniscale.drivers.bus_local import LocalEventBus
from infiniscale.drivers.decomposed.check import check
from infiniscale.drivers.decomposed.fsutil import WouldBlock, flocked
from infiniscale.drivers.decomposed.propagate import apply_unless_locked
from infiniscale.drivers.decomposed.tree import DecomposedStorage

USER = User(id="a1b2c3d4-0000-4000-8000-000000000001", username="einstein", display_name="Einstein")


def test_deltas_stop_at_a_locked_ancestor_and_are_left_there_summed():
    parents = {"c1": "b", "c2": "b", "b": "a", "a": ""}
    applied: dict[str, int] = {}

    def apply_one(space_id: str, node_id: str, delta: int) -> str:
        if node_id == "b":
            raise WouldBlock(node_id)
        applied[node_id] = applied.get(node_id, 0) + delta
        return parents[node_id]

    left = apply_unless_locked(apply_one, {("s", "c1"): 3, ("s", "c2"): 4})
    assert applied == {"c1": 3, "c2": 4}
    assert left == {("s", "b"): 7}  # b and everything above it, for the thread


def test_small_uploads_propagate_on_the_loop_and_wait_in_a_thread_for_a_held_lock(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "storage"))
    files = FileService(storage, LocalEventBus(), storage_id="s")
    applied_in: list[int] = []
    apply = storage._propagate_one

    def recording(*args, **kwargs):
        result = apply(*args, **kwargs)
        applied_in.append(threading.get_ident())
        return result

    storage._propagate_one = recording  # type: ignore[method-assign]
    storage._propagator._apply_one = recording  # the thread's way

    async def run() -> None:
        loop_thread = threading.get_ident()
        space_id = await files.ensure_personal_space(USER)
        root = await files.resolve(USER, space_id, [])
        await files.mkdir(USER, root, "docs", frozenset())
        applied_in.clear()
        await files.upload_small(USER, space_id, ["docs", "a.txt"], b"12345", validate=lambda parent, node: None)
        assert applied_in and set(applied_in) == {loop_thread}  # no thread: every lock was free

        applied_in.clear()
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:  # another holder of the root's lock (its own open: like another process)
            with flocked(storage.layout(space_id).stripe(space_id)):
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(5)
        upload = asyncio.ensure_future(files.upload_small(USER, space_id, ["docs", "b.txt"], b"123",
                                                          validate=lambda parent, node: None))
        await asyncio.sleep(0.3)
        assert not upload.done()  # answered only once the folders above are updated
        release.set()
        await asyncio.wait_for(upload, 10)
        holder.join()
        assert applied_in[0] == loop_thread  # the folder, whose lock was free
        assert len(applied_in) == 2 and applied_in[1] != loop_thread  # the root, in a thread
        assert (await files.resolve(USER, space_id, ["docs"]))[-1].size == 8
        assert (await files.resolve(USER, space_id, []))[-1].size == 8

    asyncio.run(run())
    report = check(storage)
    assert report.clean, report.errors
