"""App tokens: random passwords for one user, with an expiry and a label, usable as the password of
HTTP Basic even when password logins are off (WebDAV mounts, scripts, rclone). Only a SHA-256 of
each token is kept: tokens are long and random, so a fast hash is safe and a check costs
microseconds, not an argon2 run."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass

from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.ports.identity import AppTokenStore

ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 32
DEFAULT_LABEL = "Generated via API"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds of a duration as oCIS writes them (`72h`, `30m`, `1h30m`, `90s`)."""
    text = (text or "").strip()
    pos, total = 0, 0.0
    for found in _DURATION.finditer(text):
        if found.start() != pos:
            break
        total += float(found.group(1)) * _UNIT[found.group(2)]
        pos = found.end()
    if not text or pos != len(text) or total <= 0:
        raise InvalidArgument("error parsing expiry. Use e.g. 30m or 72h")
    return total


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AppToken:
    id: str  # the SHA-256 of the token: what a listing shows and a deletion may name
    label: str
    created: float
    expires: float

    @classmethod
    def from_record(cls, record: dict) -> AppToken:
        return cls(id=record["id"], label=record.get("label", ""), created=record["created"],
                   expires=record["expires"])


class AppTokens:
    def __init__(self, store: AppTokenStore) -> None:
        self.store = store

    def create(self, user_id: str, lifetime_s: float, label: str = "") -> tuple[str, AppToken]:
        """A new token (shown once) and its record."""
        token = "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_LENGTH))
        now = time.time()
        record = {"id": token_id(token), "label": label or DEFAULT_LABEL, "created": now,
                  "expires": now + lifetime_s}
        self.store.add(user_id, record)
        return token, AppToken.from_record(record)

    def list(self, user_id: str) -> list[AppToken]:
        now = time.time()
        return [AppToken.from_record(r) for r in self.store.tokens(user_id) if r["expires"] > now]

    def delete(self, user_id: str, token_or_id: str) -> bool:
        """Deletes by the token itself or by the id a listing showed."""
        wanted = token_or_id if re.fullmatch(r"[0-9a-f]{64}", token_or_id) else token_id(token_or_id)
        return self.store.remove(user_id, wanted)

    def verify(self, user_id: str, token: str) -> bool:
        if len(token) != TOKEN_LENGTH:
            return False
        wanted = token_id(token)
        now = time.time()
        found = False
        for record in self.store.tokens(user_id):
            # compare against every record: the time taken does not tell which one matched
            if hmac.compare_digest(record["id"], wanted) and record["expires"] > now:
                found = True
        return found
