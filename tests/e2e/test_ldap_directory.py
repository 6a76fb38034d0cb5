"""The LDAP directory driver against a real slapd: lookups, password binds, group membership, writes
when enabled, refusals when read-only, and Graph user management going to LDAP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infiniscale.core.accounts import AccountError
from infiniscale.drivers.directory_ldap import LdapConfig, LdapDirectory
from tests.slapd import ADMIN_DN, ADMIN_PASSWORD, BASE, Slapd

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


def directory(slapd: Slapd, tmp_path: Path, write: bool) -> LdapDirectory:
    return LdapDirectory(LdapConfig(uri=slapd.uri, bind_dn=ADMIN_DN, bind_password=ADMIN_PASSWORD,
                                    user_base_dn=f"ou=users,{BASE}", group_base_dn=f"ou=groups,{BASE}",
                                    write_enabled=write), str(tmp_path / "idm"))


def test_lookups_binds_and_groups(slapd: Slapd, tmp_path: Path):
    d = directory(slapd, tmp_path, write=False)
    einstein = d.get_by_name("einstein")
    assert einstein is not None and einstein.display_name == "Albert Einstein" and einstein.role == "user"
    assert d.get_by_id(einstein.id) == einstein  # the id is the entry's entryUUID, stable
    assert d.authenticate("einstein", "relativity") == einstein
    assert d.authenticate("einstein", "wrong") is None
    assert d.authenticate("einstein", "") is None  # never an anonymous bind
    assert d.authenticate("nobody", "x") is None
    assert d.get_by_name("*") is None and d.get_by_name("einstein)(uid=*") is None  # filters are escaped
    groups = {g.name: g for g in d.groups()}
    assert set(groups["physics-lovers"].members) == {"einstein", "marie"}
    assert groups["physics-lovers"].id in einstein.groups
    with pytest.raises(AccountError) as refused:
        d.put_user("", "grace", "pw", "Grace", "grace@example.org")
    assert refused.value.status == 403


def test_writes_when_enabled(slapd: Slapd, tmp_path: Path):
    d = directory(slapd, tmp_path, write=True)
    d.put_user("", "ada", "engine-1843", "Ada Lovelace", "ada@example.org", role="spaceadmin")
    ada = d.get_by_name("ada")
    assert ada is not None and ada.role == "spaceadmin" and d.authenticate("ada", "engine-1843") == ada
    d.put_group("", "analysts", [])
    group = next(g for g in d.groups() if g.name == "analysts")
    assert group.members == ()
    assert d.set_members(group.id, add=["ada"]) and next(g for g in d.groups() if g.name == "analysts").members == (
        "ada",)
    assert d.update_user("ada", display_name="Countess Lovelace").display_name == "Countess Lovelace"
    assert d.set_password("ada", "difference") and d.authenticate("ada", "difference") is not None
    renamed = d.rename_user(ada.id, "lovelace")
    assert renamed is not None and renamed.id == ada.id and renamed.username == "lovelace"
    assert d.delete_user(ada.id) and d.get_by_name("lovelace") is None
    assert d.delete_group(group.id)


def test_graph_manages_ldap_users(slapd: Slapd, tmp_path: Path):
    from tests.conftest import ServerProcess

    proc = ServerProcess(tmp_path / "server", extra_env={**slapd.env(write=True), "IDM_CREATE_DEMO_USERS": "false"})
    proc.root.mkdir()
    proc.init()
    admin_id = directory(slapd, tmp_path, write=False).get_by_name("admin").id
    proc.env["OCIS_ADMIN_USER_ID"] = admin_id  # an LDAP account becomes the admin
    proc.start()
    try:
        made = httpx.post(f"{proc.base_url}/graph/v1.0/users", auth=("admin", "admin"), timeout=10, json={
            "onPremisesSamAccountName": "hopper", "displayName": "Grace Hopper", "mail": "grace@example.org",
            "passwordProfile": {"password": "cobol-1959"}})
        assert made.status_code == 201, made.text
        assert directory(slapd, tmp_path, write=False).authenticate("hopper", "cobol-1959") is not None
        mine = httpx.request("PROPFIND", proc.dav("hopper"), auth=("hopper", "cobol-1959"),
                             headers={"Depth": "0"}, timeout=10)
        assert mine.status_code == 207
        denied = httpx.post(f"{proc.base_url}/graph/v1.0/users", auth=("hopper", "cobol-1959"), timeout=10,
                            json={"onPremisesSamAccountName": "x", "displayName": "X"})
        assert denied.status_code == 403
    finally:
        proc.stop()
