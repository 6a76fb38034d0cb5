"""A consumer's reads of the tree for one batch of events: each node, chain and space record read
once, with the same answers (and the same errors) as the storage gives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from infiniscale.core.batch_lookups import BatchLookups
from infiniscale.core.model.errors import NotFound
from infiniscale.core.registry import Provider, SpaceRegistry
from infiniscale.drivers.decomposed.tree import DecomposedStorage

SPACE = "einstein-space"


class CountingRegistry(SpaceRegistry):
    """The real registry, counting what reaches the storage."""

    def __init__(self, providers: list[Provider]) -> None:
        super().__init__(providers)
        self.reads: Counter[str] = Counter()

    def stat(self, space_id, node_id):
        self.reads[f"stat {node_id}"] += 1
        return super().stat(space_id, node_id)

    def ancestors(self, space_id, node):
        self.reads[f"ancestors {node.id}"] += 1
        return super().ancestors(space_id, node)

    def space_info(self, space_id):
        self.reads["space"] += 1
        return super().space_info(space_id)


@pytest.fixture
def tree(tmp_path: Path):
    storage = DecomposedStorage(str(tmp_path / "users"))
    root = storage.create_space(SPACE, "personal", "Einstein", SPACE)
    docs = storage.make_folder(SPACE, root, "docs", SPACE)
    papers = storage.make_folder(SPACE, docs, "papers", SPACE)
    files = [storage.make_folder(SPACE, papers, f"f{i}", SPACE) for i in range(16)]
    return CountingRegistry([Provider("storage-1", storage)]), papers, files


def test_the_folders_above_sixteen_siblings_are_read_once(tree):
    registry, papers, files = tree
    look = BatchLookups(registry)
    for node in files:
        current = look.stat(SPACE, node.id)
        expected = [n.id for n in registry.ancestors(SPACE, current)]  # (counted too, once each)
        assert [n.id for n in look.ancestors(SPACE, current)] == expected
    assert look.space_info(SPACE) == look.space_info(SPACE) == registry.space_info(SPACE)
    assert registry.reads[f"stat {papers.id}"] == 1
    assert registry.reads[f"ancestors {papers.id}"] == 1
    assert all(registry.reads[f"stat {node.id}"] == 1 for node in files)
    assert registry.reads["space"] == 2  # the batch's one and the comparison's


def test_a_node_gone_is_not_found_every_time_it_is_asked_for(tree):
    registry, papers, files = tree
    registry.delete(SPACE, files[0])
    look = BatchLookups(registry)
    for _ in range(3):
        with pytest.raises(NotFound):
            look.stat(SPACE, files[0].id)
    assert registry.reads[f"stat {files[0].id}"] == 1
    registry.delete(SPACE, papers)  # the folder of the nodes asked for next
    fresh = BatchLookups(registry)
    for node in files[1:3]:
        with pytest.raises(NotFound):
            fresh.ancestors(SPACE, node)
    assert registry.reads[f"stat {papers.id}"] == 1
