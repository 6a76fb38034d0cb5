"""Users from an external provider's claims: creation, updates and roles from the role claim."""

from __future__ import annotations

from pathlib import Path

from infiniscale.core.provisioning import Provisioner, ProvisioningPolicy
from infiniscale.drivers.directory_builtin import BuiltinDirectory


def claims(**extra):
    return {"preferred_username": "ada", "name": "Ada Lovelace", "email": "ada@example.org", **extra}


def test_autoprovision_creates_and_keeps_users_in_step(tmp_path: Path):
    directory = BuiltinDirectory(str(tmp_path / "users.mpk"))
    off = Provisioner(directory, ProvisioningPolicy(autoprovision=False))
    assert off.user_for(claims()) is None  # unknown and not to be created
    on = Provisioner(directory, ProvisioningPolicy(autoprovision=True))
    ada = on.user_for(claims())
    assert ada is not None and ada.display_name == "Ada Lovelace" and ada.role == "user"
    assert on.user_for(claims(name="Countess Lovelace")).display_name == "Countess Lovelace"
    assert on.user_for(claims()).id == ada.id  # the same user, not a second one
    assert on.user_for({"name": "no user name"}) is None


def test_roles_from_the_claim_first_match_wins_and_unmapped_is_refused(tmp_path: Path):
    directory = BuiltinDirectory(str(tmp_path / "users.mpk"))
    roles = Provisioner(directory, ProvisioningPolicy(autoprovision=True, roles_from_claim=True))
    assert roles.user_for(claims(roles=["ocisUser", "ocisAdmin"])).role == "admin"
    assert roles.user_for(claims(roles="ocisGuest")).role == "user-light"  # demoted at the next login
    assert roles.user_for(claims(roles=["somethingElse"])) is None
    assert roles.user_for(claims()) is None
