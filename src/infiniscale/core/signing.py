"""Signed URLs, as ownCloud Web makes them for downloads it cannot send an Authorization header
with: each user has a signing key (GET /ocs/v1.php/cloud/user/signing-key); a URL carries
OC-Credential (user name), OC-Date (ISO 8601), OC-Expires (seconds), OC-Verb, OC-Algo and
OC-Signature = hex(PBKDF2-HMAC-SHA512(the URL up to OC-Algo, salt = the key, 10000 rounds, 32
bytes)). Keys are documents (`signing-keys/<user id>`), shared by every server process."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

from infiniscale.core.ports.documents import DocumentStore
from infiniscale.core.sharing import principal_key

ITERATIONS = 10_000
KEY_BYTES = 32
MAX_CLOCK_SKEW_S = 300


class SigningKeys:
    def __init__(self, docs: DocumentStore) -> None:
        self.docs = docs

    def key_of(self, user_id: str) -> str:
        """The user's signing key, made on first use (blocking)."""
        key = self.docs.read(f"signing-keys/{principal_key(user_id)}").get("key")
        if key:
            return key
        with self.docs.updating(f"signing-keys/{principal_key(user_id)}") as doc:
            doc.setdefault("key", secrets.token_hex(32))
            return doc["key"]

    def existing_key(self, user_id: str) -> str:
        return self.docs.read(f"signing-keys/{principal_key(user_id)}").get("key", "")


def signature(url: str, key: str) -> str:
    return hashlib.pbkdf2_hmac("sha512", url.encode(), key.encode(), ITERATIONS, KEY_BYTES).hex()


def valid(signed_urls: list[str], given: str, key: str, date: str, expires: str, now: float | None = None) -> bool:
    """Whether `given` signs one of the URLs the client may have signed, with time left."""
    try:
        issued = datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()
        lifetime = int(expires)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if issued > now + MAX_CLOCK_SKEW_S or issued + lifetime < now or lifetime <= 0 or not key:
        return False
    return any(hmac.compare_digest(signature(url, key), given.lower()) for url in signed_urls)
