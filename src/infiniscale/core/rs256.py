"""Verification of RS256 JSON Web Tokens (RSASSA-PKCS1-v1_5 with SHA-256: RFC 7518 §3.3, RFC 8017
§8.2.2) with Python's own integers. Checking a token needs only the public key, so the worker
processes that check bearer tokens on every request do not load a cryptography library (about
10 MiB each); issuing tokens still uses joserfc.

The whole expected encoding is built and compared, never parsed out of the decrypted block, which
is what keeps forged signatures (Bleichenbacher's e=3 attack and its kin) out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

# DER of the DigestInfo header for SHA-256 (RFC 8017 §9.2, note 1)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_BITS = 2048


class InvalidToken(ValueError):
    pass


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed base64url") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    n: int
    e: int
    kid: str = ""

    @classmethod
    def from_jwk(cls, jwk: dict) -> PublicKey:
        if jwk.get("kty") != "RSA":
            raise InvalidToken("not an RSA key")
        n = int.from_bytes(b64url_decode(str(jwk["n"])), "big")
        e = int.from_bytes(b64url_decode(str(jwk["e"])), "big")
        if n.bit_length() < MIN_BITS or e < 3 or e % 2 == 0:
            raise InvalidToken("the RSA key is too weak")
        return cls(n, e, str(jwk.get("kid", "")))

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def verifies(self, message: bytes, signature: bytes) -> bool:
        k = self.size
        if len(signature) != k:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        encoded = pow(s, self.e, self.n).to_bytes(k, "big")
        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
        return hmac.compare_digest(encoded, expected)


def verify(token: str, keys: Sequence[PublicKey]) -> dict:
    """The claims of a token signed with RS256 by one of `keys` (by `kid` when it names one);
    InvalidToken otherwise. Times, issuer and audience are the caller's to check."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("a JWT has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise InvalidToken("malformed header") from None
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise InvalidToken("only RS256 tokens are accepted")
    kid = header.get("kid")
    candidates = [k for k in keys if not kid or k.kid == kid]
    if not candidates:
        raise InvalidToken("the token names an unknown key")
    message = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    signature = b64url_decode(parts[2])
    if not any(key.verifies(message, signature) for key in candidates):
        raise InvalidToken("the signature does not match")
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        raise InvalidToken("malformed claims") from None
    if not isinstance(claims, dict):
        raise InvalidToken("the claims are not an object")
    return claims
