"""WebDAV write locks: which locks cover a node, whether a request may write, lock creation."""

from __future__ import annotations

import time
import uuid

from infiniscale.core.model.errors import Locked
from infiniscale.core.model.nodes import LockInfo, NodeInfo

MAX_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_TIMEOUT_S = 3600


def live_locks(node: NodeInfo, now_ns: int | None = None) -> tuple[LockInfo, ...]:
    now_ns = now_ns or time.time_ns()
    return tuple(lk for lk in node.locks if not lk.expires_ns or lk.expires_ns > now_ns)


def covering_locks(chain: list[NodeInfo]) -> list[LockInfo]:
    """Locks that apply to the last node of `chain` (root first): its own, and depth-infinity
    locks of its ancestors."""
    now = time.time_ns()
    found: list[LockInfo] = []
    for index, node in enumerate(chain):
        own = index == len(chain) - 1
        for lock in live_locks(node, now):
            if own or lock.depth == "infinity":
                found.append(lock)
    return found


def require_unlocked(chain: list[NodeInfo], tokens: frozenset[str], user_id: str) -> None:
    """Raises Locked unless the node is free or the request presented a token of a covering lock."""
    locks = covering_locks(chain)
    if not locks:
        return
    if any(lock.token in tokens and lock.user_id == user_id for lock in locks):
        return
    raise Locked("the resource is locked")


def new_lock(scope: str, depth: str, owner_xml: str, timeout_s: int, user_id: str,
             root_node_id: str) -> LockInfo:
    timeout_s = min(max(timeout_s, 0), MAX_TIMEOUT_S) if timeout_s else 0
    expires = time.time_ns() + timeout_s * 1_000_000_000 if timeout_s else 0
    return LockInfo(token=f"opaquelocktoken:{uuid.uuid4()}", scope=scope, depth=depth, owner_xml=owner_xml,
                    timeout_s=timeout_s, expires_ns=expires, user_id=user_id, root_node_id=root_node_id)


def conflicts(chain: list[NodeInfo], scope: str) -> bool:
    """Whether a new lock of `scope` on the last node of `chain` conflicts with existing locks."""
    existing = covering_locks(chain)
    if not existing:
        return False
    if scope == "exclusive":
        return True
    return any(lock.scope == "exclusive" for lock in existing)


def refreshed(lock: LockInfo, timeout_s: int) -> LockInfo:
    timeout_s = min(max(timeout_s, 0), MAX_TIMEOUT_S) if timeout_s else 0
    expires = time.time_ns() + timeout_s * 1_000_000_000 if timeout_s else 0
    return LockInfo(lock.token, lock.scope, lock.depth, lock.owner_xml, timeout_s, expires, lock.user_id,
                    lock.root_node_id)
