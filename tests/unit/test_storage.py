"""The storage contract, run against the decomposed driver with each blob store (local files, and
S3 on a real SeaweedFS server): ids, propagation, O(1) moves, trash, journal, check."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import msgpack
import pytest

from infiniscale.core.model.errors import AlreadyExists, Conflict, NotFound
from infiniscale.drivers.decomposed.check import check
from infiniscale.drivers.decomposed.fsutil import flocked
from infiniscale.drivers.decomposed.s3blobs import S3Blobs, S3Config
from infiniscale.drivers.decomposed.tree import DecomposedStorage
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY

SPACE = "4c510ada-c86b-4815-8820-42cdf82c3d51"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DecomposedStorage]:
    if request.param == "local":
        s = DecomposedStorage(str(tmp_path / "users"))
    else:
        s3 = request.getfixturevalue("s3_server")
        config = S3Config(endpoint=s3.endpoint, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                          bucket="storage-contract", prefix=f"{uuid.uuid4()}/", part_size=5 << 20)
        s = DecomposedStorage(str(tmp_path / "users"), blobs=partial(S3Blobs, config))
    s.create_space(SPACE, "personal", "Einstein", SPACE)
    yield s
    if hasattr(s.blobs, "close"):
        s.blobs.close()


def content(storage: DecomposedStorage, node) -> bytes:
    async def read() -> bytes:
        source = storage.open_blob(SPACE, node)
        try:
            return b"".join([chunk async for chunk in source.chunks(0, source.size - 1)])
        finally:
            source.close()

    return asyncio.run(read())


def put(storage: DecomposedStorage, parent, name: str, data: bytes):
    path = storage.new_upload_path(SPACE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_bytes(data)
    node, created = storage.commit_upload(SPACE, parent, name, path, len(data), {"sha1": "x"}, None, SPACE)
    return node, created


def root(storage):
    return storage.stat(SPACE, SPACE)


def test_create_space_is_idempotent(storage):
    again = storage.create_space(SPACE, "personal", "Einstein", SPACE)
    assert again.id == SPACE and again.is_folder
    assert storage.list_space_ids() == [SPACE]


def test_tree_size_and_etag_propagate_to_the_root(storage):
    before = root(storage)
    a = storage.make_folder(SPACE, before, "a", SPACE)
    b = storage.make_folder(SPACE, a, "b", SPACE)
    put(storage, b, "f.txt", b"12345")
    r, a2, b2 = storage.resolve(SPACE, ["a", "b"])
    assert (r.size, a2.size, b2.size) == (5, 5, 5)
    assert r.etag != before.etag and a2.etag != a.etag
    _node, created = put(storage, b2, "f.txt", b"1")
    assert not created
    assert [n.size for n in storage.resolve(SPACE, ["a", "b"])] == [1, 1, 1]
    assert check(storage).clean


def test_lookup_by_id_survives_rename_and_move(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    b = storage.make_folder(SPACE, root(storage), "b", SPACE)
    f, _ = put(storage, a, "f.txt", b"data")
    moved, replaced = storage.move(SPACE, a, b, "a2", overwrite=False)
    assert not replaced and moved.id == a.id
    chain = storage.resolve(SPACE, ["b", "a2", "f.txt"])
    assert chain[-1].id == f.id
    assert [n.name for n in storage.ancestors(SPACE, storage.stat(SPACE, f.id))] == ["", "b", "a2", "f.txt"]
    with pytest.raises(NotFound):
        storage.resolve(SPACE, ["a"])
    assert root(storage).size == 4
    assert check(storage).clean


def test_move_cost_does_not_depend_on_folder_size(storage, monkeypatch):
    big = storage.make_folder(SPACE, root(storage), "big", SPACE)
    for i in range(50):
        put(storage, big, f"{i}.bin", b"x")
    touched = []
    original = storage._write_node
    monkeypatch.setattr(storage, "_write_node", lambda layout, node, **kw: (touched.append(node.id),
                                                                           original(layout, node, **kw)))
    storage.move(SPACE, big, root(storage), "renamed", overwrite=False)
    # the moved node and the root's propagation updates only: no child is rewritten
    assert set(touched) <= {big.id, SPACE}


def test_move_refuses_a_cycle(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    b = storage.make_folder(SPACE, a, "b", SPACE)
    with pytest.raises(Conflict):
        storage.move(SPACE, a, b, "a", overwrite=False)


def test_mkdir_twice_and_in_missing_parent(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    with pytest.raises(AlreadyExists):
        storage.make_folder(SPACE, root(storage), "a", SPACE)
    storage.delete(SPACE, a)
    with pytest.raises(Conflict):
        storage.make_folder(SPACE, a, "child", SPACE)


def test_delete_moves_the_subtree_to_trash(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    put(storage, a, "f", b"abc")
    storage.delete(SPACE, storage.resolve(SPACE, ["a"])[-1])
    assert root(storage).size == 0
    assert list(storage.iter_children(SPACE, SPACE)) == []
    report = check(storage)
    assert report.clean and report.trashed == 1


def test_copy_shares_blobs_and_gets_new_ids(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    f, _ = put(storage, a, "f", b"hello")
    copy, _replaced = storage.copy(SPACE, storage.resolve(SPACE, ["a"])[-1], root(storage), "c", False, True, SPACE)
    copied_file = storage.resolve(SPACE, ["c", "f"])[-1]
    assert copy.id != a.id and copied_file.id != f.id
    assert content(storage, copied_file) == b"hello"
    assert root(storage).size == 10
    assert check(storage).clean


def test_interrupted_move_is_finished_by_the_journal(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    f, _ = put(storage, a, "f", b"abc")
    layout = storage.layout(SPACE)
    # simulate a crash right after the commit point: new link made, nothing else
    op = {"op": "move", "node": f.id, "from": [a.id, "f"], "to": [SPACE, "g"], "replaced": ""}
    storage._journal_begin(layout, op)
    storage._replace_link(layout, SPACE, "g", f.id)
    assert not check(storage).clean
    report = check(storage, repair=True)
    assert report.repaired
    assert storage.resolve(SPACE, ["g"])[-1].id == f.id
    with pytest.raises(NotFound):
        storage.resolve(SPACE, ["a", "f"])
    assert check(storage).clean


def test_move_interrupted_after_its_intent_is_rolled_forward(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    f, _ = put(storage, a, "f", b"abc")
    old, _ = put(storage, root(storage), "g", b"old")
    layout = storage.layout(SPACE)
    storage._journal_begin(layout, {"op": "move", "node": f.id, "from": [a.id, "f"], "to": [SPACE, "g"],
                                    "replaced": old.id})
    check(storage, repair=True)
    assert storage.resolve(SPACE, ["g"])[-1].id == f.id
    with pytest.raises(NotFound):
        storage.resolve(SPACE, ["a", "f"])
    report = check(storage)
    assert report.clean and report.trashed == 1


def test_check_finds_a_wrong_tree_size_and_repair_fixes_it(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    put(storage, a, "f", b"abc")
    layout = storage.layout(SPACE)
    path = layout.meta_path(a.id)
    data = msgpack.unpackb(Path(path).read_bytes())
    data["s"] = 999
    Path(path).write_bytes(msgpack.packb(data))
    report = check(storage)
    assert not report.clean and "tree size" in report.errors[0]
    check(storage, repair=True)
    assert check(storage).clean


def test_check_finds_a_missing_blob(storage):
    f, _ = put(storage, root(storage), "f", b"abc")
    storage.blobs.delete(SPACE, f.blob_id)
    report = check(storage)
    assert not report.clean and "missing" in report.errors[0]


def test_unfinished_upload_is_garbage_not_an_error(storage):
    path = storage.new_upload_path(SPACE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_bytes(b"partial")
    report = check(storage)
    assert report.clean and report.garbage
    check(storage, repair=True)
    assert not os.path.exists(path)


def test_a_leftover_temp_link_is_garbage_reported_as_plain_text(storage):
    from infiniscale.drivers.decomposed.fsutil import TEMP_PREFIX

    folder = os.fsencode(storage.layout(SPACE).node_dir(SPACE))
    leftover = os.path.join(folder, TEMP_PREFIX + b"interrupted")
    os.symlink(b"no-such-node", leftover)
    report = check(storage)
    assert report.clean and report.garbage_count == 1
    summary = report.summary()
    summary.encode("utf-8")  # strict: no surrogates that would break a UTF-8 terminal or log
    assert "\\xff.tmp-interrupted" in summary
    check(storage, repair=True)
    assert not os.path.lexists(leftover)


def test_ids_that_could_escape_are_refused(storage):
    from infiniscale.core.model.errors import InvalidArgument

    for bad in ("../../etc", "a/b/c/d", "....", "x"):
        with pytest.raises((InvalidArgument, NotFound)):
            storage.stat(SPACE, bad)


def test_listing_cache_is_used_and_never_stale(storage):
    from infiniscale.drivers.decomposed import listing

    folder = storage.make_folder(SPACE, root(storage), "many", SPACE)
    for i in range(100):
        put(storage, folder, f"f{i}", b"x" * i)
    scanned = sorted((n.name, n.size, n.etag) for n in storage.iter_children(SPACE, folder.id, cached=True))
    layout = storage.layout(SPACE)
    assert os.path.exists(listing.cache_path(layout, folder.id))
    cached = sorted((n.name, n.size, n.etag) for n in storage.iter_children(SPACE, folder.id, cached=True))
    assert cached == scanned and len(cached) == 100
    folder = storage.stat(SPACE, folder.id)
    put(storage, folder, "f5", b"changed content")
    storage.delete(SPACE, storage.resolve(SPACE, ["many", "f6"])[-1])
    fresh = {n.name: n.size for n in storage.iter_children(SPACE, folder.id, cached=True)}
    assert fresh["f5"] == len(b"changed content") and "f6" not in fresh and len(fresh) == 99
    assert fresh == {n.name: n.size for n in storage.iter_children(SPACE, folder.id)}
    assert check(storage).clean
    check(storage, repair=True)
    assert not os.path.exists(listing.cache_path(layout, folder.id))


def test_an_abandoned_listing_leaves_no_cache(storage):
    from infiniscale.drivers.decomposed import listing

    folder = storage.make_folder(SPACE, root(storage), "many", SPACE)
    for i in range(80):
        put(storage, folder, f"f{i}", b"x")
    iterator = storage.iter_children(SPACE, folder.id, cached=True)
    next(iterator)
    iterator.close()
    assert not os.path.exists(listing.cache_path(storage.layout(SPACE), folder.id))
    assert check(storage).clean and not check(storage).garbage


def test_a_favorite_set_while_a_listing_is_built_is_not_lost(storage):
    from infiniscale.core.model.nodes import FAVORITE_PREFIX
    from infiniscale.drivers.decomposed import listing

    folder = storage.make_folder(SPACE, root(storage), "many", SPACE)
    for i in range(80):
        put(storage, folder, f"f{i:02}", b"x")
    folder = storage.stat(SPACE, folder.id)
    building = storage.iter_children(SPACE, folder.id, cached=True)
    first = next(building)  # the scan has begun, with the flags as they were
    storage.set_favorite(SPACE, SPACE, storage.resolve(SPACE, ["many", "f79"])[-1].id, True)
    rest = list(building)  # the scan ends: its cache, built partly before the change, is not kept
    assert len(rest) + 1 == 80 and first is not None
    assert not os.path.exists(listing.cache_path(storage.layout(SPACE), folder.id))
    flags = {n.name: FAVORITE_PREFIX + SPACE in n.props for n in storage.iter_children(SPACE, folder.id, cached=True)}
    assert flags["f79"] and sum(flags.values()) == 1
    assert check(storage).clean and not check(storage).garbage


def test_concurrent_writes_propagate_exact_sizes(storage):
    from concurrent.futures import ThreadPoolExecutor

    folder = storage.make_folder(SPACE, root(storage), "busy", SPACE)
    sub = storage.make_folder(SPACE, folder, "sub", SPACE)

    def write(i: int) -> None:
        target = sub if i % 3 == 0 else storage.stat(SPACE, folder.id)
        put(storage, target, f"f{i % 40}", b"x" * (i % 17))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(400)))
    report = check(storage)
    assert report.clean, report.errors
    total = sum(n.size for n in storage.iter_children(SPACE, folder.id))
    assert storage.stat(SPACE, folder.id).size == total == root(storage).size


def test_propagator_batches_and_sums():
    import threading

    from infiniscale.drivers.decomposed.propagate import Propagator

    parents = {"c": "b", "b": "a", "a": ""}
    sizes = dict.fromkeys(parents, 0)
    writes = []
    gate = threading.Event()

    def apply_one(space_id: str, node_id: str, delta: int) -> str:
        gate.wait(1)
        writes.append(node_id)
        sizes[node_id] += delta
        return parents[node_id]

    propagator = Propagator(apply_one)
    threads = [threading.Thread(target=propagator.propagate, args=("s", "c", 1)) for _ in range(20)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert sizes == {"c": 20, "b": 20, "a": 20}
    assert len(writes) < 60  # 20 changes, each ancestor written far fewer than 20 times


def sink_put(storage: DecomposedStorage, parent, name: str, data: bytes, step: int = 1 << 20):
    sink = storage.new_blob(SPACE)
    try:
        for start in range(0, len(data), step):
            sink.write(data[start:start + step])
        sink.finish()
        return storage.commit_blob(SPACE, parent, name, sink, len(data), {}, None, SPACE)
    finally:
        sink.discard()


def test_streamed_content_in_many_parts_reads_back_whole_and_in_ranges(storage):
    data = os.urandom(12 << 20)  # more than two 5 MiB parts with the S3 store
    node, created = sink_put(storage, root(storage), "big.bin", data)
    assert created and node.size == len(data)
    assert content(storage, node) == data

    async def ranged(start: int, end: int) -> bytes:
        source = storage.open_blob(SPACE, node)
        try:
            return b"".join([chunk async for chunk in source.chunks(start, end)])
        finally:
            source.close()

    assert asyncio.run(ranged(5 << 20, (5 << 20) + 99)) == data[5 << 20:(5 << 20) + 100]
    assert asyncio.run(ranged(len(data) - 1, len(data) - 1)) == data[-1:]
    assert check(storage).clean and check(storage).garbage_count == 0


def test_a_large_assembled_file_is_stored_and_the_local_file_consumed(storage):
    data = os.urandom(11 << 20)
    node, _ = put(storage, root(storage), "assembled.bin", data)
    assert content(storage, node) == data
    assert storage.blobs.sizes(SPACE)[node.blob_id] == len(data)


def test_overwrite_keeps_the_old_blob_as_a_revision_and_copy_makes_an_independent_one(storage):
    first, _ = sink_put(storage, root(storage), "f", b"one")
    second, created = sink_put(storage, root(storage), "f", b"two!")
    assert not created and second.blob_id != first.blob_id
    assert [r.blob_id for r in storage.list_revisions(SPACE, first.id)] == [first.blob_id]
    copied, _ = storage.copy(SPACE, second, root(storage), "g", False, False, SPACE)
    storage.delete(SPACE, storage.resolve(SPACE, ["f"])[-1])
    assert content(storage, copied) == b"two!"
    # the trash keeps the deleted file's blob and its revision's
    assert set(storage.blobs.sizes(SPACE)) == {first.blob_id, second.blob_id, copied.blob_id}
    assert storage.list_revisions(SPACE, copied.id) == []


def test_a_refused_commit_leaves_no_blob_behind(storage):
    sink_put(storage, root(storage), "f", b"old")

    def refuse(current):
        raise Conflict("no")

    sink = storage.new_blob(SPACE)
    sink.write(b"new content")
    sink.finish()
    with pytest.raises(Conflict):
        storage.commit_blob(SPACE, root(storage), "f", sink, 11, {}, None, SPACE, refuse)
    sink.discard()
    assert list(storage.blobs.sizes(SPACE)) == [storage.resolve(SPACE, ["f"])[-1].blob_id]


def test_a_discarded_sink_leaves_nothing_even_midway_through_parts(storage):
    sink = storage.new_blob(SPACE)
    sink.write(os.urandom(6 << 20))  # with S3: a multipart upload is under way
    sink.discard()
    assert storage.blobs.sizes(SPACE) == {}
    if storage.remote_blobs(SPACE):
        assert storage.blobs.abort_stale_uploads(0) == 0  # aborted already, nothing left over


def test_purging_a_space_removes_its_blobs(storage):
    sink_put(storage, root(storage), "f", b"data")
    storage.purge_space(SPACE)
    assert storage.blobs.sizes(SPACE) == {}
    assert not storage.space_exists(SPACE)


def test_check_reports_and_repairs_an_unreferenced_blob(storage):
    sink = storage.new_blob(SPACE)
    sink.write(b"orphan")
    sink.finish()  # stored, never committed: what a crash right before the commit leaves
    report = check(storage)
    assert report.clean and report.garbage_count == 1
    check(storage, repair=True)
    assert storage.blobs.sizes(SPACE) == {}


def test_s3_cleanup_aborts_what_a_crash_left_midway_through_a_multipart_upload(s3_server, tmp_path):
    prefix = f"{uuid.uuid4()}/"
    config = S3Config(endpoint=s3_server.endpoint, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                      bucket="storage-contract", prefix=prefix, part_size=5 << 20)
    storage = DecomposedStorage(str(tmp_path / "users"), blobs=partial(S3Blobs, config))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    sink = storage.new_blob(SPACE)
    sink.write(os.urandom(11 << 20))
    for future in list(sink.in_flight):
        future.result()  # two parts uploaded; then the process "dies": no finish, no discard
    assert storage.blobs.sizes(SPACE) == {}  # nothing visible
    assert storage.blobs.abort_stale_uploads(3600) == 0  # too young for the periodic cleanup
    assert storage.blobs.abort_stale_uploads(0) == 1
    assert storage.blobs.abort_stale_uploads(0) == 0
    storage.blobs.close()


def test_s3_copies_objects_beyond_the_single_copy_limit_in_parts(s3_server, tmp_path, monkeypatch):
    from infiniscale.drivers.decomposed import s3blobs

    monkeypatch.setattr(s3blobs, "COPY_LIMIT", 1 << 20)  # what is true of 5 GiB, at a testable size
    monkeypatch.setattr(s3blobs, "COPY_PART", 5 << 20)
    config = S3Config(endpoint=s3_server.endpoint, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                      bucket="storage-contract", prefix=f"{uuid.uuid4()}/", part_size=5 << 20)
    storage = DecomposedStorage(str(tmp_path / "users"), blobs=partial(S3Blobs, config))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    data = os.urandom(11 << 20)
    node, _ = sink_put(storage, root(storage), "f", data)
    copied, _ = storage.copy(SPACE, node, root(storage), "g", False, False, SPACE)
    assert copied.blob_id != node.blob_id
    assert content(storage, copied) == data
    storage.blobs.close()


def test_spaces_are_listed_by_type_from_the_index(storage):
    project = "7f1c9a52-3b1d-4f7e-9a55-0d6f5c1e2b33"
    storage.create_space(project, "project", "Team", SPACE)
    assert storage.list_space_ids("project") == [project]
    assert storage.list_space_ids("personal") == [SPACE]
    assert storage.list_space_ids() == sorted([SPACE, project])
    storage.purge_space(project)
    assert storage.list_space_ids("project") == []


def test_the_type_index_is_rebuilt_for_a_storage_made_without_it(storage):
    import shutil

    shutil.rmtree(os.path.join(storage.root, "indexes"))
    assert storage.list_space_ids("project") == []
    assert storage.list_space_ids("personal") == [SPACE]


# --- revisions and trash bin ---------------------------------------------------------------------

def test_an_overwrite_keeps_the_old_content_as_a_revision_and_restore_swaps_them(storage):
    first, _ = put(storage, root(storage), "f", b"one")
    second, created = put(storage, root(storage), "f", b"two!")
    assert not created and second.id == first.id
    revs = storage.list_revisions(SPACE, first.id)
    assert [(r.size, r.blob_id, r.mtime_ns) for r in revs] == [(3, first.blob_id, first.mtime_ns)]
    assert set(storage.blobs.sizes(SPACE)) == {first.blob_id, second.blob_id}
    source = storage.open_revision(SPACE, revs[0])
    try:
        assert asyncio.run(_read_all(source)) == b"one"
    finally:
        source.close()
    before = root(storage)
    restored = storage.restore_revision(SPACE, second, revs[0].key)
    assert content(storage, restored) == b"one" and restored.etag != second.etag
    assert restored.mtime_ns > second.mtime_ns  # restoring is a change of its own
    assert root(storage).size == 3 and root(storage).etag != before.etag
    # the replaced content is a revision now, the restored one is consumed
    assert [(r.size, r.blob_id) for r in storage.list_revisions(SPACE, first.id)] == [(4, second.blob_id)]
    report = check(storage)
    assert report.clean and report.revisions == 1 and report.garbage_count == 0


async def _read_all(source) -> bytes:
    return b"".join([chunk async for chunk in source.chunks(0, source.size - 1)])


def test_revisions_with_the_same_mtime_get_distinct_keys(storage):
    for data in (b"a", b"bb", b"ccc"):
        path = storage.new_upload_path(SPACE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).write_bytes(data)
        node, _ = storage.commit_upload(SPACE, root(storage), "f", path, len(data), {}, 10**18, SPACE)
    revs = storage.list_revisions(SPACE, node.id)
    assert [r.size for r in revs] == [1, 2] and len({r.key for r in revs}) == 2


def test_without_versioning_an_overwrite_drops_the_old_blob(tmp_path):
    storage = DecomposedStorage(str(tmp_path / "users"), versioning=False)
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    first, _ = put(storage, root(storage), "f", b"one")
    second, _ = put(storage, root(storage), "f", b"two")
    assert storage.list_revisions(SPACE, first.id) == []
    assert set(storage.blobs.sizes(SPACE)) == {second.blob_id}


def test_trash_lists_restores_and_purges_in_place(storage):
    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    b = storage.make_folder(SPACE, a, "b", SPACE)
    f, _ = put(storage, b, "f", b"abc")
    put(storage, b, "f", b"abcd")  # a revision that must go with a purge
    storage.delete(SPACE, storage.resolve(SPACE, ["a", "b"])[-1])
    (item,) = storage.list_trash(SPACE)
    assert (item.node.id, item.origin_path, item.origin_parent_id, item.origin_name) == (b.id, "a/b", a.id, "b")
    assert root(storage).size == 0
    # restore somewhere else under another name: the subtree comes back whole
    restored, replaced = storage.restore_trash(SPACE, b.id, root(storage), "back", False)
    assert not replaced and restored.id == b.id
    assert storage.list_trash(SPACE) == []
    assert content(storage, storage.resolve(SPACE, ["back", "f"])[-1]) == b"abcd"
    assert root(storage).size == 4
    assert check(storage).clean
    # delete again and purge: nodes, blobs and revisions go
    storage.delete(SPACE, storage.resolve(SPACE, ["back"])[-1])
    assert storage.purge_trash(SPACE, b.id) == 4 + 3
    assert storage.list_trash(SPACE) == [] and storage.blobs.sizes(SPACE) == {}
    report = check(storage)
    assert report.clean and report.garbage_count == 0
    with pytest.raises(NotFound):
        storage.purge_trash(SPACE, b.id)
    with pytest.raises(NotFound):
        storage.trash_item(SPACE, f.id)  # inside a trashed folder is not an item of its own


def test_restore_onto_an_existing_name_needs_overwrite_and_trashes_what_was_there(storage):
    old, _ = put(storage, root(storage), "f", b"old")
    storage.delete(SPACE, old)
    newer, _ = put(storage, root(storage), "f", b"newer")
    with pytest.raises(AlreadyExists):
        storage.restore_trash(SPACE, old.id, root(storage), "f", False)
    storage.restore_trash(SPACE, old.id, root(storage), "f", True)
    assert content(storage, storage.resolve(SPACE, ["f"])[-1]) == b"old"
    assert [item.node.id for item in storage.list_trash(SPACE)] == [newer.id]
    assert root(storage).size == 3 and check(storage).clean


def test_an_interrupted_restore_is_finished_by_the_journal(storage, monkeypatch):
    f, _ = put(storage, root(storage), "f", b"abc")
    storage.delete(SPACE, f)
    original = storage._replace_link

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(storage, "_replace_link", crash)
    with pytest.raises(OSError):
        storage.restore_trash(SPACE, f.id, root(storage), "f", False)
    monkeypatch.setattr(storage, "_replace_link", original)
    assert storage.replay_journal(SPACE) == 1
    assert content(storage, storage.resolve(SPACE, ["f"])[-1]) == b"abc"
    assert storage.list_trash(SPACE) == []
    assert check(storage, repair=True).clean and check(storage).clean


def test_empty_trash_by_age(storage):
    a, _ = put(storage, root(storage), "a", b"1")
    storage.delete(SPACE, a)
    (item,) = storage.list_trash(SPACE)
    b, _ = put(storage, root(storage), "b", b"22")
    storage.delete(SPACE, b)
    assert storage.empty_trash(SPACE, older_than_ns=item.deleted_ns + 1) == (1, 1)
    assert [i.node.id for i in storage.list_trash(SPACE)] == [b.id]
    assert storage.empty_trash(SPACE) == (1, 2)
    assert check(storage).clean


def test_check_reclaims_a_revision_left_equal_to_the_current_content(storage):
    from infiniscale.drivers.decomposed import revisions

    f, _ = put(storage, root(storage), "f", b"abc")
    revisions.keep(storage.layout(SPACE), f)  # as if a crash hit between the record and the node update
    report = check(storage)
    assert report.clean and report.garbage_count == 1
    check(storage, repair=True)
    assert storage.list_revisions(SPACE, f.id) == [] and content(storage, f) == b"abc"


def test_scrub_reads_every_blob_and_reports_a_missing_one(storage):
    from infiniscale.drivers.decomposed.scrub import Scrubber

    a = storage.make_folder(SPACE, root(storage), "a", SPACE)
    sink_put(storage, a, "f", b"one")
    sink_put(storage, a, "f", b"two!")  # "one" stays as a version
    gone, _ = sink_put(storage, a, "g", b"gone")
    storage.delete(SPACE, storage.resolve(SPACE, ["a", "f"])[-1])  # the trash is scrubbed too
    report = Scrubber(storage).run()
    assert report.clean and report.blobs == 3 and report.bytes == 3 + 4 + 4, report.summary()
    storage.blobs.delete(SPACE, gone.blob_id)
    report = Scrubber(storage).run()
    assert [(f.path, f.problem) for f in report.missing] == [("/a/g", "missing")]
    assert not report.corrupt and not report.orphans


# ---------------------------------------------------------------- commits from the event loop

def _sink(storage: DecomposedStorage, data: bytes):
    sink = storage.new_blob(SPACE)
    sink.write(data)
    sink.finish()
    return sink


def _inline(storage: DecomposedStorage, parent, name: str, data: bytes):
    async def commit():
        return await storage.commit_blob_inline(SPACE, parent, name, _sink(storage, data), len(data),
                                                {"sha1": "x"}, None, SPACE)

    return asyncio.run(commit())


def test_inline_commits_create_and_overwrite_like_threaded_ones(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "users"))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    folder = storage.make_folder(SPACE, root(storage), "docs", SPACE)
    etag_before = root(storage).etag
    node, created = _inline(storage, folder, "a.txt", b"first")
    assert created and content(storage, node) == b"first"
    assert storage.stat(SPACE, folder.id).size == 5 and root(storage).size == 5
    assert root(storage).etag != etag_before
    again, created = _inline(storage, folder, "a.txt", b"second!")
    assert not created and again.id == node.id and content(storage, again) == b"second!"
    assert root(storage).size == 7
    assert [r.size for r in storage.list_revisions(SPACE, node.id)] == [5]
    assert check(storage).clean


def test_an_inline_commit_that_would_wait_for_a_lock_commits_nothing(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "users"))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    sink = _sink(storage, b"data")
    held, release = threading.Event(), threading.Event()

    def structure_change() -> None:  # e.g. a move in another process holds the namespace
        with flocked(storage.layout(SPACE).ns_lock):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=structure_change)
    thread.start()
    assert held.wait(5)

    async def commit():
        return await storage.commit_blob_inline(SPACE, root(storage), "a.txt", sink, 4, {}, None, SPACE)

    try:
        assert asyncio.run(commit()) is None
        assert storage.child(SPACE, SPACE, "a.txt") is None
    finally:
        release.set()
        thread.join()
    node, created = storage.commit_blob(SPACE, root(storage), "a.txt", sink, 4, {}, None, SPACE)  # in a thread
    assert created and content(storage, node) == b"data"
    assert check(storage).clean


def test_an_inline_commit_runs_to_its_end_when_its_request_is_cancelled(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "users"))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)

    async def main() -> None:
        sink = _sink(storage, b"payload")
        request = asyncio.ensure_future(storage.commit_blob_inline(SPACE, root(storage), "a.txt", sink, 7, {},
                                                                   None, SPACE))
        await asyncio.sleep(0)  # the commit has begun: it waits for its first flush
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        for _ in range(200):  # the commit itself goes on
            if storage.child(SPACE, SPACE, "a.txt") is not None and root(storage).size == 7:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    node = storage.child(SPACE, SPACE, "a.txt")
    assert node is not None and content(storage, node) == b"payload"
    assert check(storage).clean


def test_propagation_rewrites_small_sidecars_in_place_and_others_by_rename(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "users"))
    storage.create_space(SPACE, "personal", "Einstein", SPACE)
    folder = storage.make_folder(SPACE, root(storage), "docs", SPACE)
    meta = Path(storage.layout(SPACE).meta_path(folder.id))
    inode = meta.stat().st_ino
    put(storage, folder, "a", b"x" * 100)
    assert meta.stat().st_ino == inode  # the same length: one write in place, no new file
    assert storage.stat(SPACE, folder.id).size == 100
    put(storage, folder, "b", b"y" * 70_000)  # the size needs a wider number: the sidecar grows
    assert meta.stat().st_ino != inode
    assert storage.stat(SPACE, folder.id).size == 70_100 and root(storage).size == 70_100
    assert check(storage).clean
