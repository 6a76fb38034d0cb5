"""Users who log in with an external provider's token: found by a claim, created on first login when
autoprovisioning is on, their display name and mail kept in step with the claims, and their role
taken from a claim when the role assignment driver is `oidc` (oCIS's mapping; a token whose roles
map to none is refused)."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Protocol

from infiniscale.core.accounts import AccountError
from infiniscale.core.model.identity import User

# oCIS's default mapping of role claim values, first match wins
OIDC_ROLE_MAPPING = (("ocisAdmin", "admin"), ("ocisSpaceAdmin", "spaceadmin"), ("ocisUser", "user"),
                     ("ocisGuest", "user-light"))
ROLE_CLAIM_VALUES = {role: claim for claim, role in OIDC_ROLE_MAPPING}


class WritableDirectory(Protocol):
    def get_by_name(self, username: str) -> User | None: ...
    def put_user(self, user_id: str, username: str, password: str, display_name: str, email: str,
                 role: str = "user") -> None: ...
    def update_user(self, username: str, *, display_name: str | None = None, email: str | None = None,
                    role: str | None = None) -> User | None: ...


@dataclass
class ProvisioningPolicy:
    autoprovision: bool = False
    claim_username: str = "preferred_username"
    claim_email: str = "email"
    claim_display_name: str = "name"
    roles_from_claim: bool = False
    roles_claim: str = "roles"


class Provisioner:
    def __init__(self, directory: WritableDirectory, policy: ProvisioningPolicy) -> None:
        self.directory = directory
        self.policy = policy

    def role_of(self, claims: dict) -> str | None:
        values = claims.get(self.policy.roles_claim)
        values = [values] if isinstance(values, str) else list(values or [])
        for claim_value, role in OIDC_ROLE_MAPPING:
            if claim_value in values:
                return role
        return None

    def user_for(self, claims: dict) -> User | None:
        """Blocking: may write the directory."""
        policy = self.policy
        username = claims.get(policy.claim_username)
        if not isinstance(username, str) or not username or len(username) > 255:
            return None
        role = None
        if policy.roles_from_claim:
            role = self.role_of(claims)
            if role is None:
                return None  # as oCIS: no mapped role, no login
        display = str(claims.get(policy.claim_display_name) or username)
        email = str(claims.get(policy.claim_email) or "")
        user = self.directory.get_by_name(username)
        if user is None:
            if not policy.autoprovision:
                return None
            # a random password nobody knows: this user logs in through the provider only
            with contextlib.suppress(AccountError):  # another request made them meanwhile: theirs stands
                self.directory.put_user(str(uuid.uuid4()), username, secrets.token_urlsafe(32), display, email,
                                        role or "user")
            return self.directory.get_by_name(username)
        changes: dict = {}
        if role is not None and role != user.role:
            changes["role"] = role
        if policy.autoprovision and (display != user.display_name or (email and email != user.email)):
            changes.update(display_name=display, email=email or user.email)
        return self.directory.update_user(username, **changes) if changes else user
