"""An external OpenID Connect provider: a second server process issues the tokens, the server under
test trusts its issuer, creates users on their first login and takes their role from the token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.test_oidc import Login, bearer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        proc = ServerProcess(tmp_path_factory.mktemp("provider"))
        proc.init()
        proc.start()
        yield proc
        proc.stop()


@pytest.fixture(scope="module")
def relying(tmp_path_factory: pytest.TempPathFactory, provider: ServerProcess) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("relying"), extra_env={
        "OCIS_OIDC_ISSUER": provider.base_url, "PROXY_AUTOPROVISION_ACCOUNTS": "true",
        "PROXY_ROLE_ASSIGNMENT_DRIVER": "oidc", "IDM_CREATE_DEMO_USERS": "false",
        "PROXY_ENABLE_BASIC_AUTH": "false"})
    proc.init()
    proc.start()
    yield proc
    proc.stop()


def test_tokens_of_the_external_provider_log_in_and_provision(provider: ServerProcess, relying: ServerProcess):
    einstein = Login(provider).tokens()["access_token"]
    assert bearer(relying, einstein) == 207  # einstein did not exist here: created from the claims
    me = httpx.get(f"{relying.base_url}/graph/v1.0/me", headers={"Authorization": f"Bearer {einstein}"},
                   timeout=10).json()
    assert me["onPremisesSamAccountName"] == "einstein" and me["displayName"] == "Albert Einstein"
    assert me["mail"] == "einstein@example.org"
    # the built-in provider of the relying server is off: its tokens come from elsewhere
    assert httpx.get(f"{relying.base_url}/konnect/v1/jwks.json", timeout=10).status_code == 404
    # not an admin by its token's role claim: other users stay hidden
    hidden = httpx.get(f"{relying.base_url}/ocs/v1.php/cloud/users/admin?format=json",
                       headers={"Authorization": f"Bearer {einstein}"}, timeout=10)
    assert hidden.status_code == 200 and hidden.json()["ocs"]["meta"]["statuscode"] == 404
    admin = Login(provider).tokens("admin", "admin")["access_token"]
    seen = httpx.get(f"{relying.base_url}/ocs/v1.php/cloud/users/einstein?format=json",
                     headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert seen.json()["ocs"]["meta"]["statuscode"] == 100  # admin, from the role claim


def test_tokens_of_another_issuer_are_refused(relying: ServerProcess, tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        stranger = ServerProcess(tmp_path_factory.mktemp("stranger"))
        stranger.init()
        stranger.start()
        try:
            token = Login(stranger).tokens()["access_token"]
            assert bearer(stranger, token) == 207
            assert bearer(relying, token) == 401
        finally:
            stranger.stop()


def test_webfinger_sends_clients_to_the_external_provider(provider: ServerProcess, relying: ServerProcess):
    found = httpx.get(f"{relying.base_url}/.well-known/webfinger", params={"resource": "acct:einstein@x"},
                      timeout=10)
    assert found.status_code == 200
    assert found.json()["links"][0] == {"rel": "http://openid.net/specs/connect/1.0/issuer",
                                        "href": provider.base_url}
