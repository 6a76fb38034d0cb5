"""Mailer port: sends one e-mail (blocking)."""

from __future__ import annotations

from typing import Protocol


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str, on_behalf_of: str = "") -> None:
        """`on_behalf_of` names who the message is from (shown beside the sender address). Raises
        OSError when the mail server cannot be reached or refuses the message."""
        ...
