"""RS256 verification with Python integers, checked against joserfc's signatures: genuine tokens
pass; a changed payload, header or signature, another key, `alg: none` or HS256, malformed tokens
and weak keys are refused."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from infiniscale.core import rs256


@pytest.fixture(scope="module")
def key() -> RSAKey:
    made = RSAKey.generate_key(2048, private=True)
    made.ensure_kid()
    return made


def public(key: RSAKey) -> rs256.PublicKey:
    return rs256.PublicKey.from_jwk(key.as_dict(private=False))


def test_a_genuine_token_verifies(key):
    token = jwt.encode({"alg": "RS256", "kid": key.kid}, {"sub": "einstein", "n": 1}, key)
    assert rs256.verify(token, [public(key)]) == {"sub": "einstein", "n": 1}
    no_kid = jwt.encode({"alg": "RS256"}, {"sub": "x"}, key)
    assert rs256.verify(no_kid, [public(key)]) == {"sub": "x"}


def test_tampered_and_foreign_tokens_are_refused(key):
    token = jwt.encode({"alg": "RS256", "kid": key.kid}, {"sub": "einstein"}, key)
    head, body, sig = token.split(".")
    forged_body = rs256.b64url_encode(json.dumps({"sub": "admin"}).encode())
    other = RSAKey.generate_key(2048, private=True)
    other.ensure_kid()
    cases = [
        f"{head}.{forged_body}.{sig}",
        f"{head}.{body}.{sig[:-4]}AAAA",
        f"{rs256.b64url_encode(json.dumps({'alg': 'RS256', 'kid': 'other'}).encode())}.{body}.{sig}",
        jwt.encode({"alg": "RS256", "kid": key.kid}, {"sub": "einstein"}, other),  # right kid, wrong key
        f"{rs256.b64url_encode(json.dumps({'alg': 'none'}).encode())}.{body}.",
        jwt.encode({"alg": "HS256"}, {"sub": "einstein"}, OctKey.import_key("s" * 32)),
        "only.two", "a.b.c.d", "!!.??.**", "",
    ]
    for bad in cases:
        with pytest.raises(rs256.InvalidToken):
            rs256.verify(bad, [public(key)])


def test_weak_keys_are_refused():
    small = RSAKey.generate_key(1024, private=True)
    with pytest.raises(rs256.InvalidToken):
        rs256.PublicKey.from_jwk(small.as_dict(private=False))
    with pytest.raises(rs256.InvalidToken):
        rs256.PublicKey.from_jwk({"kty": "EC", "crv": "P-256"})
