"""Retention: deleted items and old versions go away by themselves, per space type.

oCIS keeps both until an admin runs a command, so disks fill up. Here a background job applies the
policy on its own (and the CLI applies it on demand, with a dry run): trash items older than the
space type's limit are purged, versions beyond the count or older than the age are dropped, oldest
first. Only one process runs a round at a time (a cross-process lock); the others skip it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infiniscale.core.model.errors import NotFound
from infiniscale.core.registry import SpaceRegistry

log = logging.getLogger("infiniscale.retention")
NS = 1_000_000_000


@dataclass(frozen=True)
class Policy:
    """Per space type ("personal", "project"); 0 means no limit, a negative age everything."""

    trash_max_age_s: dict[str, int] = field(default_factory=dict)
    versions_max_count: dict[str, int] = field(default_factory=dict)
    versions_max_age_s: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return any(v for d in (self.trash_max_age_s, self.versions_max_count, self.versions_max_age_s)
                   for v in d.values())


@dataclass
class Outcome:
    spaces: int = 0
    trash_items: int = 0
    trash_bytes: int = 0
    versions: int = 0
    version_bytes: int = 0

    def summary(self, dry_run: bool) -> str:
        verb = "would purge" if dry_run else "purged"
        return (f"{self.spaces} spaces: {verb} {self.trash_items} trash items ({self.trash_bytes} bytes) and "
                f"{self.versions} versions ({self.version_bytes} bytes)")


Progress = Callable[[int, int], None]  # (done, total)


class Retention:
    def __init__(self, registry: SpaceRegistry, policy: Policy) -> None:
        self.registry = registry
        self.policy = policy

    def run(self, *, trash: bool = True, versions: bool = True, dry_run: bool = False,
            progress: Progress | None = None, now_s: float | None = None) -> Outcome:
        """One round over every space. Blocking: run it in a thread."""
        now_ns = int((now_s if now_s is not None else time.time()) * NS)
        outcome = Outcome()
        space_ids = self.registry.list_space_ids()
        for done, space_id in enumerate(space_ids, 1):
            try:
                space_type = str(self.registry.space_info(space_id).get("type") or "personal")
            except NotFound:
                continue  # purged meanwhile
            outcome.spaces += 1
            if trash:
                self._trash(space_id, space_type, now_ns, dry_run, outcome)
            if versions:
                self._versions(space_id, space_type, now_ns, dry_run, outcome)
            if progress:
                progress(done, len(space_ids))
        return outcome

    def _trash(self, space_id: str, space_type: str, now_ns: int, dry_run: bool, outcome: Outcome) -> None:
        max_age = self.policy.trash_max_age_s.get(space_type, 0)
        if not max_age:
            return
        cutoff = now_ns - max_age * NS
        if dry_run:
            expired = [i for i in self.registry.list_trash(space_id) if i.deleted_ns < cutoff]
            outcome.trash_items += len(expired)
            outcome.trash_bytes += sum(i.node.size for i in expired)
            return
        items, freed = self.registry.empty_trash(space_id, older_than_ns=cutoff)
        outcome.trash_items += items
        outcome.trash_bytes += freed

    def _versions(self, space_id: str, space_type: str, now_ns: int, dry_run: bool, outcome: Outcome) -> None:
        keep = self.policy.versions_max_count.get(space_type, 0)
        max_age = self.policy.versions_max_age_s.get(space_type, 0)
        if not keep and not max_age:
            return
        count, freed = self.registry.prune_revisions(space_id, keep, now_ns - max_age * NS if max_age else 0,
                                                     dry_run)
        outcome.versions += count
        outcome.version_bytes += freed
