"""The audit log: every event (files, shares, spaces, users, groups) as one JSON line, written by
the consumer group `audit` so that each event is logged once however many processes run it."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import orjson

from infiniscale.core.model.events import Event, UserNotified
from infiniscale.core.ports.events import EventBus

log = logging.getLogger("infiniscale.audit")
GROUP = "audit"
NOT_AUDITED = frozenset({UserNotified.type})  # the server talking to itself, not an action


def audit_line(event: Event) -> str:
    fields = event.to_dict()
    moment = datetime.datetime.fromtimestamp(event.timestamp_ns / 1e9, datetime.UTC)
    record = {"Time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "Action": event.type,
              "User": event.executant, "SpaceID": event.space_id,
              **{k: v for k, v in fields.items() if k not in ("type", "executant", "space_id", "timestamp_ns")}}
    return orjson.dumps(record).decode()


class AuditLog:
    def __init__(self, bus: EventBus, sinks: list[Callable[[str], None]]) -> None:
        self.bus = bus
        self.sinks = sinks

    async def run(self) -> None:
        async for event in self.bus.subscribe(GROUP):
            if event.type in NOT_AUDITED:
                continue
            line = audit_line(event)
            for sink in self.sinks:
                try:
                    sink(line)
                except OSError:
                    log.exception("writing the audit log failed")
