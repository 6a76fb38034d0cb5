"""E-mail about shares and space memberships (oCIS's notifications service), sent by the consumer
group `notifications` when a mail server is configured: one message per recipient with an address
(a group's members each; never the one who acted). A mail server that is down delays the messages,
it does not lose them: the event is retried, with growing pauses, until the server takes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from infiniscale.core.model import events
from infiniscale.core.model.errors import StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.ports.events import EventBus
from infiniscale.core.ports.mail import Mailer
from infiniscale.core.registry import SpaceRegistry
from infiniscale.core.userlog import recipients_of, rfc3339_nano

log = logging.getLogger("infiniscale.mail")

GROUP = "notifications"
FIRST_RETRY_S = 2.0
MAX_RETRY_S = 60.0


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    link: str = ""


class MailNotifications:
    def __init__(self, mailer: Mailer, registry: SpaceRegistry, users: Callable[[str], User | None],
                 group_members: Callable[[str], list[str]], base_url: str,
                 first_retry_s: float = FIRST_RETRY_S) -> None:
        self.mailer = mailer
        self.registry = registry
        self.users = users
        self.group_members = group_members
        self.base_url = base_url.rstrip("/")
        self.first_retry_s = first_retry_s

    TYPES = frozenset({events.ShareCreated.type, events.ShareExpired.type, events.SpaceShared.type,
                       events.SpaceUnshared.type})

    async def run(self, bus: EventBus) -> None:
        async for batch in bus.subscribe_batches(GROUP, self.TYPES):
            for event in batch:
                pause = self.first_retry_s
                while True:
                    try:
                        await asyncio.to_thread(self.send_for, event)
                        break
                    except OSError as exc:  # the mail server: try again later, keeping the order
                        log.warning("sending mail failed (%s); retrying in %.0f s", exc, pause)
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, MAX_RETRY_S)

    def send_for(self, event: events.Event) -> int:
        """Mails everybody the event concerns; returns how many messages went out."""
        actor = self.users(event.executant)
        sharer = actor.display_name if actor else "Somebody"
        try:
            mail = self._content(event, sharer)
        except StorageError:
            return 0  # shared and gone again: nothing to point to
        sent = 0
        for user_id in recipients_of(event, self.group_members):
            user = self.users(user_id)
            if user is None or not user.email:
                continue
            body = f"Hello {user.display_name}\n\n{mail.text}\n"
            if mail.link:
                body += f"\nClick here to view it: {mail.link}\n"
            body += f"\n---\nInfinite Scale\n{self.base_url}\n"
            self.mailer.send(user.email, mail.subject, body, on_behalf_of=sharer)
            sent += 1
        return sent

    def _content(self, event: events.Event, sharer: str) -> Mail:
        if isinstance(event, events.ShareCreated | events.ShareExpired):
            name = self.registry.stat(event.space_id, event.node_id).name
            if isinstance(event, events.ShareExpired):
                return Mail(f"Share to '{name}' expired at {rfc3339_nano(event.timestamp_ns)}",
                            f'Your access to "{name}", shared by {sharer}, has expired.')
            return Mail(f"{sharer} shared '{name}' with you", f'{sharer} has shared "{name}" with you.',
                        f"{self.base_url}/files/shares/with-me")
        space_name = str(self.registry.space_info(event.space_id).get("name", ""))
        storage = self.registry.storage_id_of(event.space_id)
        if isinstance(event, events.SpaceUnshared):
            return Mail(f"{sharer} removed you from {space_name}",
                        f'{sharer} has removed you from "{space_name}". You can no longer reach its files.')
        return Mail(f"{sharer} invited you to join {space_name}", f'{sharer} has invited you to join "{space_name}".',
                    f"{self.base_url}/f/{storage}${event.space_id}")
