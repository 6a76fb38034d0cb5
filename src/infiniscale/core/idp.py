"""The built-in OpenID Connect provider's logic: clients, authorization codes with PKCE, RS256 access
and ID tokens, refresh tokens with rotation, sessions, and verification of the access tokens it
issued. Protocol details (forms, redirects, JSON) live in protocols/oidc.py; this module knows
nothing of HTTP.

Grants live in the IdpStore (files shared by every worker process): a code is used at most once,
a refresh token is replaced by a new one on every use, and logging out of a session ends every
refresh token it produced."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from infiniscale.core import rs256
from infiniscale.core.model.identity import User
from infiniscale.core.provisioning import ROLE_CLAIM_VALUES

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey

SCOPES = ("openid", "offline_access", "profile", "email", "LibreGraph.UUID", "LibreGraph.RawSub")
CODE_TTL = 60.0
LEEWAY = 30  # seconds of clock skew tolerated when checking a token's times


class OAuthError(Exception):
    """An OAuth 2.0 error: `error` is the standard code, the message its description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class Client:
    id: str
    secret: str | None  # None: a public client (PKCE instead of a secret)
    redirect_uris: tuple[str, ...]  # exact, or fnmatch patterns for loopback ports
    post_logout_redirect_uris: tuple[str, ...] = ()

    def allows_redirect(self, uri: str) -> bool:
        return any(uri == allowed or ("*" in allowed and fnmatch.fnmatchcase(uri, allowed) and _plain_url(uri))
                   for allowed in self.redirect_uris)

    def check_secret(self, secret: str | None) -> bool:
        if self.secret is None:
            return True
        return secret is not None and hmac.compare_digest(secret.encode(), self.secret.encode())


_LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|localhost)(:\d{1,5})?(/[A-Za-z0-9._~!$&'()*+=:@%/-]*)?$")


def _plain_url(uri: str) -> bool:
    """A loopback redirect (the desktop app, any port) must be just that: no user info, no other
    host, a numeric port, no characters that could end up anywhere but a path."""
    return bool(_LOOPBACK.match(uri))


def builtin_clients(base_url: str, web_client_id: str = "web") -> dict[str, Client]:
    """The clients oCIS's identity provider knows: their ids are compiled into the official apps."""
    clients = [
        Client(web_client_id, None, (f"{base_url}/", f"{base_url}/oidc-callback.html",
                                     f"{base_url}/oidc-silent-redirect.html"),
               (f"{base_url}/", f"{base_url}/oidc-callback.html")),
        Client("xdXOt13JKxym1B1QcEncf2XDkLAexMBFwiT9j6EfhhHFJhs2KM9jbjTmf8JBXE69",
               "UBntmLjC2yYCeHwsyj73Uwo9TAaecAetRwMw0xYcvNL9yRdLSUi0hUAHfvCHFeFh",
               ("http://127.0.0.1:*", "http://localhost:*")),
        Client("e4rAsNUSIUs0lF4nbv9FmCeUkTlV9GdgTLDH1b5uie7syb90SzEVrbN7HIpmWJeD",
               "dInFYGV33xKzhbRmpqQltYNdfLdJIfJ9L5ISoKhNoT9qZftpdWSP71VrpGR9pmoD",
               ("oc://android.owncloud.com",)),
        Client("mxd5OQDk6es5LzOzRvidJNfXLUZS2oN3oUFeXPP8LpPrhx3UroJFduGEYIBOxkY1",
               "KFeFWWEZO9TkisIQzR3fo7hfiMXlOpaqP8CFuTbSHzV1TUuGECglPxpiVKJfOXIx",
               ("oc://ios.owncloud.com",)),
    ]
    return {c.id: c for c in clients}


class IdpStore(Protocol):
    def put(self, kind: str, key: str, record: dict) -> None: ...
    def get(self, kind: str, key: str) -> dict | None: ...
    def take(self, kind: str, key: str) -> dict | None: ...  # read and delete; None if another took it
    def delete(self, kind: str, key: str) -> None: ...
    def delete_where(self, kind: str, field_name: str, value: str) -> int: ...


class Users(Protocol):
    def get_by_id(self, user_id: str) -> User | None: ...


@dataclass(frozen=True)
class AuthRequest:
    client: Client
    redirect_uri: str
    scope: tuple[str, ...]
    state: str
    nonce: str
    code_challenge: str
    code_challenge_method: str


@dataclass
class Lifetimes:
    access: int = 300
    id: int = 300
    refresh: int = 2_592_000
    session: int = 86_400 * 14


@dataclass
class TokenSet:
    access_token: str
    id_token: str | None
    refresh_token: str | None
    expires_in: int
    scope: str

    def to_json(self) -> dict:
        out = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
               "scope": self.scope}
        if self.id_token:
            out["id_token"] = self.id_token
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        return out


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class IdentityProvider:
    def __init__(self, issuer: str, load_key: Callable[[], RSAKey], clients: dict[str, Client], store: IdpStore,
                 users: Users, lifetimes: Lifetimes | None = None,
                 load_public: Callable[[], dict] | None = None) -> None:
        """`load_key` gives the private signing key (loaded when the first token is issued),
        `load_public` its public JWK (enough to check tokens, without any JOSE library)."""
        self.issuer = issuer.rstrip("/")
        self._load_key = load_key
        self._load_public = load_public or (lambda: self.key.as_dict(private=False))
        self.clients = clients
        self.store = store
        self.users = users
        self.lifetimes = lifetimes or Lifetimes()

    # The signing key and the JOSE library under it (cryptography, about 10 MiB per process) are
    # loaded when this process first issues a token; checking tokens needs the public key only.
    @cached_property
    def key(self) -> RSAKey:
        return self._load_key()

    @cached_property
    def public_jwk(self) -> dict:
        return self._load_public()

    @cached_property
    def public_keys(self) -> list[rs256.PublicKey]:
        return [rs256.PublicKey.from_jwk(self.public_jwk)]

    # ------------------------------------------------------------------ discovery

    def discovery(self, paths: dict[str, str]) -> dict:
        """The discovery document; `paths` maps endpoint names to their paths on the issuer."""
        url = self.issuer
        return {
            "issuer": url,
            "authorization_endpoint": url + paths["authorize"],
            "token_endpoint": url + paths["token"],
            "userinfo_endpoint": url + paths["userinfo"],
            "jwks_uri": url + paths["jwks"],
            "end_session_endpoint": url + paths["endsession"],
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
                                 "name", "preferred_username", "email", "lg.uuid"],
            "request_parameter_supported": False,
            "claims_parameter_supported": False,
        }

    def jwks(self) -> dict:
        return {"keys": [{**self.public_jwk, "use": "sig", "alg": "RS256"}]}

    # ------------------------------------------------------------------ authorization

    def check_client(self, params: dict[str, str]) -> tuple[Client, str]:
        """The client and redirect URI of an authorization request. Until both are known to match,
        an error must be shown to the user, never sent to the (untrusted) redirect URI."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError("invalid_client", "unknown client")
        redirect_uri = params.get("redirect_uri", "")
        if not client.allows_redirect(redirect_uri):
            raise OAuthError("invalid_request", "the redirect URI is not registered for this client")
        return client, redirect_uri

    def authorization_request(self, params: dict[str, str]) -> AuthRequest:
        """Validates an authorization request (call check_client first)."""
        client, redirect_uri = self.check_client(params)
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only the authorization code flow is supported")
        scope = tuple(s for s in params.get("scope", "").split() if s)
        if "openid" not in scope:
            raise OAuthError("invalid_scope", "the openid scope is required")
        challenge = params.get("code_challenge", "")
        method = params.get("code_challenge_method", "plain" if challenge else "")
        if client.secret is None and not challenge:
            raise OAuthError("invalid_request", "PKCE (code_challenge with S256) is required")
        if challenge and method != "S256":
            raise OAuthError("invalid_request", "only the S256 code challenge method is supported")
        return AuthRequest(client=client, redirect_uri=redirect_uri,
                           scope=tuple(s for s in scope if s in SCOPES), state=params.get("state", ""),
                           nonce=params.get("nonce", ""), code_challenge=challenge, code_challenge_method=method)

    def issue_code(self, request: AuthRequest, user: User, sid: str, auth_time: float) -> str:
        code = secrets.token_urlsafe(32)
        self.store.put("codes", _digest(code), {
            "client_id": request.client.id, "redirect_uri": request.redirect_uri, "user_id": user.id,
            "scope": " ".join(request.scope), "nonce": request.nonce, "challenge": request.code_challenge,
            "session": sid, "auth_time": auth_time, "expires": time.time() + CODE_TTL})
        return code

    # ------------------------------------------------------------------ token endpoint

    def _client(self, client_id: str, secret: str | None) -> Client:
        client = self.clients.get(client_id)
        if client is None or not client.check_secret(secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def exchange_code(self, client_id: str, secret: str | None, code: str, redirect_uri: str,
                      verifier: str) -> TokenSet:
        client = self._client(client_id, secret)
        grant = self.store.take("codes", _digest(code))  # single use, even when it fails below
        if grant is None or grant["expires"] < time.time():
            raise OAuthError("invalid_grant", "the code is invalid, expired or used")
        if grant["client_id"] != client.id or grant["redirect_uri"] != redirect_uri:
            raise OAuthError("invalid_grant", "the code was issued to another client or redirect URI")
        if grant["challenge"]:
            if not verifier or not hmac.compare_digest(pkce_s256(verifier), grant["challenge"]):
                raise OAuthError("invalid_grant", "code challenge failed")
        elif client.secret is None:
            raise OAuthError("invalid_grant", "PKCE is required")
        user = self._live_user(grant["user_id"])
        return self._tokens(client, user, grant["scope"], grant["session"], grant["nonce"], grant["auth_time"])

    def refresh(self, client_id: str, secret: str | None, refresh_token: str) -> TokenSet:
        client = self._client(client_id, secret)
        grant = self.store.take("refresh", _digest(refresh_token))  # rotation: the old one is gone now
        if grant is None or grant["expires"] < time.time() or grant["client_id"] != client.id:
            raise OAuthError("invalid_grant", "the refresh token is invalid, expired or already used")
        if grant["session"] and not self.session_alive(grant["session"]):
            raise OAuthError("invalid_grant", "the session has ended")
        user = self._live_user(grant["user_id"])
        return self._tokens(client, user, grant["scope"], grant["session"], "", grant["auth_time"])

    def _live_user(self, user_id: str) -> User:
        user = self.users.get_by_id(user_id)
        if user is None:
            raise OAuthError("invalid_grant", "the user no longer exists")
        return user

    def _tokens(self, client: Client, user: User, scope: str, session_id: str, nonce: str,
                auth_time: float) -> TokenSet:
        from joserfc import jwt
        now = int(time.time())
        lifetimes = self.lifetimes
        claims = self.user_claims(user, scope.split())
        access = jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "at+jwt"}, {
            "iss": self.issuer, "sub": user.id, "aud": client.id, "client_id": client.id, "iat": now,
            "exp": now + lifetimes.access, "jti": str(uuid.uuid4()), "scope": scope, "sid": session_id,
            **claims}, self.key)
        id_token = None
        if "openid" in scope.split():
            id_claims = {"iss": self.issuer, "sub": user.id, "aud": client.id, "iat": now,
                         "exp": now + lifetimes.id, "auth_time": int(auth_time), "sid": session_id,
                         "at_hash": _half_hash(access), **claims}
            if nonce:
                id_claims["nonce"] = nonce
            id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, id_claims, self.key)
        # every code flow gets a refresh token (the apps renew with it); it is replaced on each use
        refresh_token = secrets.token_urlsafe(48)
        self.store.put("refresh", _digest(refresh_token), {
            "client_id": client.id, "user_id": user.id, "scope": scope, "session": session_id,
            "auth_time": auth_time, "expires": time.time() + lifetimes.refresh})
        return TokenSet(access, id_token, refresh_token, lifetimes.access, scope)

    @staticmethod
    def user_claims(user: User, scope: list[str] | tuple[str, ...]) -> dict:
        claims: dict = {"preferred_username": user.username, "name": user.display_name}
        if "email" in scope or "profile" in scope:
            claims["email"] = user.email
        claims["lg.uuid"] = user.id
        claims["roles"] = [ROLE_CLAIM_VALUES.get(user.role, "ocisUser")]
        return claims

    # ------------------------------------------------------------------ sessions

    def start_session(self, user: User) -> tuple[str, str, float]:
        """A login in the browser: (secret for the session cookie, sid, login time). Tokens name the
        session by its public id (`sid`), so a token never reveals the cookie."""
        secret, sid, now = secrets.token_urlsafe(32), str(uuid.uuid4()), time.time()
        expires = now + self.lifetimes.session
        self.store.put("sids", sid, {"expires": expires})
        self.store.put("sessions", _digest(secret), {"sid": sid, "user_id": user.id, "created": now,
                                                     "expires": expires})
        return secret, sid, now

    def session(self, secret: str) -> tuple[User, float, str] | None:
        """(user, login time, sid) of a live browser session."""
        record = self.store.get("sessions", _digest(secret)) if secret else None
        if record is None or record["expires"] < time.time():
            return None
        user = self.users.get_by_id(record["user_id"])
        return (user, record["created"], record["sid"]) if user else None

    def session_alive(self, sid: str) -> bool:
        record = self.store.get("sids", sid)
        return record is not None and record["expires"] >= time.time()

    def end_session(self, secret: str = "", sid: str = "") -> None:
        """Logs out: the session, its cookie and every refresh token issued in it end."""
        if secret:
            record = self.store.take("sessions", _digest(secret))
            sid = sid or (record or {}).get("sid", "")
        if sid:
            self.store.delete("sids", sid)
            self.store.delete_where("refresh", "session", sid)

    def id_token_session(self, id_token: str) -> tuple[str, str] | None:
        """(client id, sid) of an ID token this provider issued, expired or not (logout hints)."""
        try:
            claims = rs256.verify(id_token, self.public_keys)
        except rs256.InvalidToken:
            return None
        if claims.get("iss") != self.issuer:
            return None
        return str(claims.get("aud", "")), str(claims.get("sid", ""))

    # ------------------------------------------------------------------ verification

    def decode_access_token(self, token: str) -> dict:
        """The claims of a valid access token from this provider (signature, issuer, audience,
        times); raises OAuthError otherwise. Pure computation: its result may be cached."""
        try:
            claims = rs256.verify(token, self.public_keys)
        except rs256.InvalidToken as exc:
            raise OAuthError("invalid_token", f"the token is not valid: {exc}", 401) from None
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise OAuthError("invalid_token", "the token was issued by somebody else", 401)
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] + LEEWAY < now:
            raise OAuthError("invalid_token", "the token has expired", 401)
        if isinstance(claims.get("iat"), int | float) and claims["iat"] - LEEWAY > now:
            raise OAuthError("invalid_token", "the token is from the future", 401)
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else (audiences or [])
        if not any(a in self.clients for a in audiences):
            raise OAuthError("invalid_token", "the token is meant for another audience", 401)
        return claims

    def verify_access_token(self, token: str) -> dict:
        """`decode_access_token`, and the token's session must still be live (not logged out)."""
        claims = self.decode_access_token(token)
        if claims.get("sid") and not self.session_alive(claims["sid"]):
            raise OAuthError("invalid_token", "the session of this token has ended", 401)
        return claims


def _half_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
