"""The built-in OpenID Connect provider, driven like a browser app would: authlib's OAuth client does
code + PKCE against the real server process; the login form is filled in by plain HTTP."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import ServerProcess
from tests.slapd import Slapd

pytestmark = pytest.mark.e2e

DESKTOP_ID = "xdXOt13JKxym1B1QcEncf2XDkLAexMBFwiT9j6EfhhHFJhs2KM9jbjTmf8JBXE69"
DESKTOP_SECRET = "UBntmLjC2yYCeHwsyj73Uwo9TAaecAetRwMw0xYcvNL9yRdLSUi0hUAHfvCHFeFh"
SCOPE = "openid profile email offline_access"


@pytest.fixture(scope="module", params=["builtin", "ldap"])
def idp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch_module) -> Iterator[ServerProcess]:
    """The same suite against both directories: the built-in one and a real slapd."""
    monkeypatch_module.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks plain http
    env = {"PROXY_ENABLE_BASIC_AUTH": "false"}
    ldap = None
    if request.param == "ldap":
        ldap = Slapd(tmp_path_factory.mktemp("slapd"))
        ldap.start()
        env.update(ldap.env(), IDM_CREATE_DEMO_USERS="false")
    proc = ServerProcess(tmp_path_factory.mktemp("oidc"), workers=2, extra_env=env)
    try:
        proc.init()
        proc.start()
        yield proc
    finally:
        proc.stop()
        if ldap is not None:
            ldap.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def discovery(proc: ServerProcess) -> dict:
    doc = httpx.get(f"{proc.base_url}/.well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == proc.base_url
    return doc


class Login:
    """One browser (its cookies) and one OAuth client going through the authorization code flow."""

    def __init__(self, proc: ServerProcess, client_id: str = "web", secret: str | None = None,
                 redirect_uri: str | None = None) -> None:
        self.proc = proc
        self.doc = discovery(proc)
        self.redirect_uri = redirect_uri or f"{proc.base_url}/oidc-callback.html"
        self.oauth = OAuth2Client(client_id=client_id, client_secret=secret, scope=SCOPE,
                                  redirect_uri=self.redirect_uri, code_challenge_method="S256",
                                  token_endpoint_auth_method="client_secret_basic" if secret else "none")
        self.browser = httpx.Client(follow_redirects=False, timeout=30)
        self.verifier = generate_token(48)
        self.nonce = generate_token(16)

    def authorize_url(self, **extra: str) -> str:
        url, _state = self.oauth.create_authorization_url(self.doc["authorization_endpoint"],
                                                          code_verifier=self.verifier, nonce=self.nonce, **extra)
        return url

    def sign_in(self, username: str = "einstein", password: str = "relativity") -> httpx.Response:
        page = self.browser.get(self.authorize_url())
        assert page.status_code == 200, page.text
        form = dict(re.findall(r'name="(csrf|request)" value="([^"]*)"', page.text))
        return self.browser.post(self.doc["authorization_endpoint"], data={
            "csrf": unescape(form["csrf"]), "request": unescape(form["request"]),
            "username": username, "password": password})

    def tokens(self, username: str = "einstein", password: str = "relativity") -> dict:
        answer = self.sign_in(username, password)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(self.redirect_uri)
        return self.oauth.fetch_token(self.doc["token_endpoint"], authorization_response=location,
                                      code_verifier=self.verifier)


def bearer(proc: ServerProcess, token: str) -> int:
    r = httpx.request("PROPFIND", proc.dav(), headers={"Authorization": f"Bearer {token}", "Depth": "0"},
                      timeout=30)
    return r.status_code


def test_code_flow_tokens_webdav_graph_refresh_and_logout(idp: ServerProcess):
    login = Login(idp)
    token = login.tokens()
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 300
    keys = KeySet.import_key_set(httpx.get(login.doc["jwks_uri"], timeout=10).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert id_token["iss"] == idp.base_url and id_token["aud"] == "web" and id_token["nonce"] == login.nonce
    assert id_token["preferred_username"] == "einstein"
    access = token["access_token"]
    assert bearer(idp, access) == 207
    me = httpx.get(f"{idp.base_url}/graph/v1.0/me?$expand=memberOf",
                   headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert me.status_code == 200 and me.json()["onPremisesSamAccountName"] == "einstein"
    assert any(g["displayName"] == "physics-lovers" for g in me.json()["memberOf"])
    info = httpx.get(login.doc["userinfo_endpoint"], headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert info.status_code == 200 and info.json()["sub"] == id_token["sub"]
    # silent renewal in the web app: the session cookie alone gets a new code
    silent = login.browser.get(login.authorize_url(prompt="none"))
    assert silent.status_code == 303 and "code=" in silent.headers["location"]
    # refresh with rotation: the new refresh token works once, the old one never again
    renewed = login.oauth.refresh_token(login.doc["token_endpoint"], refresh_token=token["refresh_token"])
    assert renewed["refresh_token"] != token["refresh_token"] and bearer(idp, renewed["access_token"]) == 207
    with pytest.raises(OAuthError, match="invalid_grant"):
        login.oauth.refresh_token(login.doc["token_endpoint"], refresh_token=token["refresh_token"])
    # logout ends the session: its tokens stop working at once, also the renewed refresh token
    out = login.browser.get(login.doc["end_session_endpoint"], params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": f"{idp.base_url}/oidc-callback.html"})
    assert out.status_code == 303 and out.headers["location"].startswith(f"{idp.base_url}/oidc-callback.html")
    assert bearer(idp, renewed["access_token"]) == 401
    with pytest.raises(OAuthError, match="invalid_grant"):
        login.oauth.refresh_token(login.doc["token_endpoint"], refresh_token=renewed["refresh_token"])
    again = login.browser.get(login.authorize_url(prompt="none"))
    assert again.status_code == 303 and "error=login_required" in again.headers["location"]


def test_codes_are_single_use_and_bound_to_the_verifier(idp: ServerProcess):
    login = Login(idp)
    answer = login.sign_in()
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
            "client_id": "web", "code_verifier": "wrong" * 10}
    wrong = httpx.post(login.doc["token_endpoint"], data=form, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    replay = httpx.post(login.doc["token_endpoint"], data={**form, "code_verifier": login.verifier}, timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"  # used up by the first try
    # authorizing a public client without PKCE is refused before any login
    plain = login.browser.get(login.doc["authorization_endpoint"], params={
        "client_id": "web", "redirect_uri": login.redirect_uri, "response_type": "code", "scope": "openid"})
    assert plain.status_code == 303 and "error=invalid_request" in plain.headers["location"]


def test_desktop_client_loopback_redirect_and_foreign_redirects(idp: ServerProcess):
    login = Login(idp, DESKTOP_ID, DESKTOP_SECRET, "http://127.0.0.1:43917")
    token = login.tokens()
    assert bearer(idp, token["access_token"]) == 207
    for evil in ("http://evil.example/", "http://127.0.0.1.evil.example:80", "http://user@127.0.0.1:1/"):
        page = httpx.get(login.doc["authorization_endpoint"], params={
            "client_id": DESKTOP_ID, "redirect_uri": evil, "response_type": "code", "scope": "openid"},
            timeout=10)
        assert page.status_code == 400 and "location" not in page.headers, evil
    wrong_secret = httpx.post(login.doc["token_endpoint"], auth=(DESKTOP_ID, "nope"), data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]}, timeout=10)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


def test_login_page_is_accessible_and_protected(idp: ServerProcess):
    login = Login(idp)
    page = login.browser.get(login.authorize_url())
    html = page.text
    assert '<html lang="en">' in html and '<label for="username">' in html and '<label for="password">' in html
    assert 'autocomplete="current-password"' in html
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    form = dict(re.findall(r'name="(csrf|request)" value="([^"]*)"', html))
    forged = httpx.post(login.doc["authorization_endpoint"], data={  # no CSRF cookie: another site's form
        "csrf": unescape(form["csrf"]), "request": unescape(form["request"]),
        "username": "einstein", "password": "relativity"}, timeout=10)
    assert forged.status_code == 400 and "location" not in forged.headers
    wrong = login.sign_in(password="wrong")
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text and "location" not in wrong.headers


def forge(claims: dict, key: RSAKey | None, header: dict | None = None) -> str:
    if key is None:  # alg none: header and claims, no signature
        parts = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
                 for p in ({"alg": "none", "typ": "at+jwt"}, claims)]
        return f"{parts[0]}.{parts[1]}."
    return jwt.encode(header or {"alg": "RS256", "kid": key.kid}, claims, key)


def test_bad_tokens_are_refused(idp: ServerProcess):
    good = Login(idp).tokens()["access_token"]
    claims = jwt.decode(good, KeySet.import_key_set(httpx.get(f"{idp.base_url}/konnect/v1/jwks.json",
                                                              timeout=10).json())).claims
    server_key = RSAKey.import_key((Path(idp.root) / "data" / "idp" / "private-key.pem").read_bytes())
    server_key.ensure_kid()
    other_key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    now = int(time.time())
    header, _payload, signature = good.split(".")
    tampered_payload = base64.urlsafe_b64encode(
        json.dumps({**claims, "preferred_username": "marie"}).encode()).rstrip(b"=").decode()
    cases = {
        "garbage": "not-a-token",
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "expired": forge({**claims, "iat": now - 3600, "exp": now - 600}, server_key),
        "wrong audience": forge({**claims, "aud": "somebody-else"}, server_key),
        "wrong issuer": forge({**claims, "iss": "https://evil.example"}, server_key),
        "alg none": forge(claims, None),
        "foreign key": forge(claims, other_key),
    }
    assert bearer(idp, good) == 207
    assert bearer(idp, forge(claims, server_key)) == 207  # the forging itself is sound
    for name, token in cases.items():
        assert bearer(idp, token) == 401, name


def test_webfinger_names_the_issuer_and_with_a_token_the_instance(idp: ServerProcess):
    url = f"{idp.base_url}/.well-known/webfinger"
    resource = f"acct:einstein@{urlsplit(idp.base_url).netloc}"
    anonymous = httpx.get(url, params={"resource": resource}, timeout=10)
    assert anonymous.status_code == 200 and anonymous.headers["content-type"] == "application/jrd+json"
    assert anonymous.json() == {"subject": resource, "links": [
        {"rel": "http://openid.net/specs/connect/1.0/issuer", "href": idp.base_url}]}
    access = Login(idp).tokens()["access_token"]
    known = httpx.get(url, params={"resource": resource}, headers={"Authorization": f"Bearer {access}"},
                      timeout=10).json()
    assert {"rel": "http://webfinger.owncloud/rel/server-instance", "href": idp.base_url,
            "titles": {"en": "oCIS Instance"}} in known["links"]
    assert httpx.get(url, timeout=10).status_code == 400


def test_app_tokens_made_with_a_bearer_token(idp: ServerProcess):
    access = Login(idp).tokens()["access_token"]
    made = httpx.post(f"{idp.base_url}/auth-app/tokens?expiry=1h&label=mount",
                      headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert made.status_code == 200
    token = made.json()["token"]
    ok = httpx.request("PROPFIND", idp.dav(), auth=("einstein", token), headers={"Depth": "0"}, timeout=10)
    assert ok.status_code == 207
    refused = httpx.request("PROPFIND", idp.dav(), auth=("einstein", "relativity"), headers={"Depth": "0"},
                            timeout=10)
    assert refused.status_code == 401  # passwords over Basic are off
