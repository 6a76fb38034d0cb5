"""What a consumer reads of the tree while it handles one batch of events, read once per batch.

Sixteen uploads into one folder come as one batch; each event's record wants the folder, the
folders above it and the space, so handled one by one they read the same metadata sixteen times.
The tree as of the batch is all a consumer promises (its events are already in the past), so
one read of each node serves the whole batch. Not for longer: that would be a stale cache.
"""

from __future__ import annotations

from infiniscale.core.model.errors import StorageError
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.registry import SpaceRegistry


class BatchLookups:
    def __init__(self, registry: SpaceRegistry) -> None:
        self.registry = registry
        self._nodes: dict[tuple[str, str], NodeInfo | StorageError] = {}
        self._chains: dict[tuple[str, str], list[NodeInfo] | StorageError] = {}
        self._spaces: dict[str, dict | StorageError] = {}

    def stat(self, space_id: str, node_id: str) -> NodeInfo:
        key = (space_id, node_id)
        if key not in self._nodes:
            self._nodes[key] = _outcome(self.registry.stat, space_id, node_id)
        return _given(self._nodes[key])

    def ancestors(self, space_id: str, node: NodeInfo) -> list[NodeInfo]:
        """The chain from the space root down to `node`: the chain above it is read once for all
        the nodes of one folder."""
        if not node.parent_id:
            return self.registry.ancestors(space_id, node)
        key = (space_id, node.parent_id)
        if key not in self._chains:
            try:
                parent = self.stat(space_id, node.parent_id)
            except StorageError as exc:
                self._chains[key] = exc
            else:
                self._chains[key] = _outcome(self.registry.ancestors, space_id, parent)
        return [*_given(self._chains[key]), node]

    def space_info(self, space_id: str) -> dict:
        if space_id not in self._spaces:
            self._spaces[space_id] = _outcome(self.registry.space_info, space_id)
        return _given(self._spaces[space_id])


# what reads the tree: a batch's shared reads, or the registry itself
Lookups = BatchLookups | SpaceRegistry


def _outcome(read, *args):
    try:
        return read(*args)
    except StorageError as exc:  # a node that is gone stays gone for the rest of the batch
        return exc


def _given(outcome):
    if isinstance(outcome, StorageError):
        raise type(outcome)(*outcome.args)  # a fresh one: raising one instance again grows its traceback
    return outcome
