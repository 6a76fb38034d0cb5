"""Access tokens of an external OpenID Connect provider (Keycloak, another instance, ...): its keys
come from its discovery document and JWKS, are cached, and are fetched again when a token names a
key not seen before (key rotation), at most once a minute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson

from infiniscale.core import rs256
from infiniscale.core.idp import LEEWAY, OAuthError

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
REFETCH_AFTER = 60.0


class ExternalIssuer:
    def __init__(self, issuer: str, audiences: set[str], fetch_json: Callable[[str], dict]) -> None:
        self.issuer = issuer.rstrip("/")
        self.audiences = audiences
        self.fetch_json = fetch_json
        self._jwks: dict | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _key_set(self, force: bool = False) -> dict:
        """The provider's JWKS document, fetched again on `force` (at most once a minute)."""
        with self._lock:
            stale = force and time.monotonic() - self._fetched > REFETCH_AFTER
            if self._jwks is None or stale:
                discovery = self.fetch_json(f"{self.issuer}/.well-known/openid-configuration")
                if discovery.get("issuer", "").rstrip("/") != self.issuer:
                    raise OAuthError("invalid_token", "the provider's discovery names another issuer", 401)
                self._jwks = self.fetch_json(discovery["jwks_uri"])
                self._fetched = time.monotonic()
            return self._jwks

    @staticmethod
    def _rsa_keys(jwks: dict) -> list[rs256.PublicKey]:
        keys = []
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("use", "sig") == "sig" and jwk.get("alg", "RS256") == "RS256":
                try:
                    keys.append(rs256.PublicKey.from_jwk(jwk))
                except (rs256.InvalidToken, KeyError):
                    continue
        return keys

    def _verify(self, token: str) -> dict:
        """RS256 (what providers sign with by default) in Python integers; other algorithms through
        joserfc, which loads the cryptography library."""
        head = token.split(".", 1)[0]
        try:
            algorithm = orjson.loads(rs256.b64url_decode(head)).get("alg")
        except (rs256.InvalidToken, ValueError, AttributeError):
            raise OAuthError("invalid_token", "the token is not valid: malformed header", 401) from None
        if algorithm == "RS256":
            try:
                try:
                    return rs256.verify(token, self._rsa_keys(self._key_set()))
                except rs256.InvalidToken as exc:
                    if "unknown key" not in str(exc):
                        raise
                    # a key we have not seen: the provider may have rotated
                    return rs256.verify(token, self._rsa_keys(self._key_set(force=True)))
            except rs256.InvalidToken as exc:
                raise OAuthError("invalid_token", f"the token is not valid: {exc}", 401) from None
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError
        from joserfc.jwk import KeySet

        try:
            try:
                return jwt.decode(token, KeySet.import_key_set(self._key_set()), algorithms=ALGORITHMS).claims
            except InvalidKeyIdError:
                return jwt.decode(token, KeySet.import_key_set(self._key_set(force=True)),
                                  algorithms=ALGORITHMS).claims
        except (JoseError, ValueError) as exc:
            raise OAuthError("invalid_token", f"the token is not valid: {exc}", 401) from None

    def decode_access_token(self, token: str) -> dict:
        claims = self._verify(token)
        now = time.time()
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise OAuthError("invalid_token", "the token was issued by somebody else", 401)
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] + LEEWAY < now:
            raise OAuthError("invalid_token", "the token has expired", 401)
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
        if claims.get("azp"):
            audiences.append(claims["azp"])
        if self.audiences and not self.audiences.intersection(audiences):
            raise OAuthError("invalid_token", "the token is meant for another audience", 401)
        return claims

    def session_alive(self, sid: str) -> bool:
        return True  # the provider's sessions are its own business; tokens are short-lived
