"""Sharing in the browser app: the share dialog invites another user, who finds the folder under
Shares and opens it; a password-protected link opens for a visitor in a fresh context, who downloads
from it; a file drop link takes an upload from a visitor."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsing, screenshot
from tests.browser.test_files_ui import row, row_action
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

LINK_PASSWORD = "Lens-of-Mars-42!"


def make_folder(web: ServerProcess, name: str, files: dict[str, bytes]) -> None:
    with web.client() as c:
        assert c.request("MKCOL", f"{web.dav()}/{name}").status_code == 201
        for file, content in files.items():
            assert c.put(f"{web.dav()}/{name}/{file}", content=content).status_code == 201


def create_link(page: Page, link_type: str, password: str) -> str:
    before = page.locator("#link-list .link-url").count()
    page.locator("#link-type").select_option(link_type)
    page.locator("#link-password").fill(password)
    page.locator("#link-create").click()
    expect(page.locator("#link-list .link-url")).to_have_count(before + 1)
    return page.locator("#link-list .link-url").last.input_value()


def test_a_folder_shared_with_marie_shows_under_her_shares_and_opens(browsing: Browsing, web: ServerProcess):
    folder = f"expedition-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"itinerary.txt": b"day one: the glacier"})
    page = browsing.as_user("einstein")
    row_action(page, folder, "Share")
    dialog = page.locator("#share-dialog")
    expect(dialog.locator("#share-search")).to_be_focused()
    dialog.locator("#share-search").press_sequentially("mar", delay=30)
    suggestion = dialog.locator("#share-suggestions [role=option]", has_text="Marie Curie")
    expect(suggestion).to_be_visible()
    suggestion.click()
    dialog.locator("#share-role").select_option(label="Can edit")
    dialog.locator("#share-invite").click()
    expect(dialog.locator("#share-list li", has_text="Marie Curie").locator("option:checked")).to_have_text("Can edit")
    screenshot(page, "share-dialog")

    marie = browsing.as_user("marie")
    marie.locator("nav.side").get_by_role("link", name="Shared with me").click()
    shared = marie.locator(f'#shares-list tr[data-name="{folder}"]')
    expect(shared).to_contain_text("Albert Einstein")
    accept = shared.get_by_role("button", name="Accept")
    if accept.count():  # shares wait for acceptance where auto-accept is off
        accept.click()
    expect(shared).to_contain_text("Accepted")
    shared.get_by_role("link", name=folder).click()
    expect(marie.locator(".breadcrumbs [aria-current=page]")).to_have_text(folder)
    expect(row(marie, "itinerary.txt")).to_be_visible()
    # marie may edit: her new folder lands in einstein's folder
    marie.locator("#new-folder").click()
    marie.locator("#dialog-input").fill("from-marie")
    marie.get_by_role("button", name="Create").click()
    expect(row(marie, "from-marie")).to_be_visible()
    with web.client() as c:
        assert c.request("PROPFIND", f"{web.dav()}/{folder}/from-marie", headers={"Depth": "0"}).status_code == 207

    # hidden from the list, and back again
    marie.locator("nav.side").get_by_role("link", name="Shared with me").click()
    shared.get_by_role("button", name="Hide").click()
    expect(shared).to_have_count(0)
    marie.locator("#show-hidden").click()
    expect(shared).to_be_visible()
    shared.get_by_role("button", name="Show again").click()
    expect(shared.get_by_role("button", name="Hide")).to_be_visible()
    marie.locator("#show-hidden").click()
    expect(marie.locator("#show-hidden")).to_have_count(0)  # nothing hidden any more
    expect(shared).to_be_visible()


def test_a_password_protected_link_opens_for_a_visitor_who_downloads(browsing: Browsing, web: ServerProcess,
                                                                      tmp_path: Path):
    folder = f"press-kit-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"statement.txt": b"we are pleased to announce", "logo.svg": b"<svg/>"})
    page = browsing.as_user("einstein")
    row_action(page, folder, "Share")
    url = create_link(page, "view", LINK_PASSWORD)
    assert re.fullmatch(rf"{re.escape(web.base_url)}/s/[A-Za-z0-9]+", url), url
    expect(page.locator("#link-list li").last).to_contain_text("password protected")

    visitor = browsing.context().new_page()  # a fresh context: no session, no cookies
    visitor.goto(url)
    password = visitor.locator("#public-password")
    expect(password).to_be_focused()
    password.fill("not the password")
    visitor.locator("#public-open").click()
    expect(visitor.locator("#password-error")).to_have_text(re.compile("wrong", re.I))
    password.fill(LINK_PASSWORD)
    screenshot(visitor, "public-link-password")
    visitor.locator("#public-open").click()
    listed = visitor.locator('#public-list li[data-name="statement.txt"]')
    expect(listed).to_be_visible()
    expect(visitor.locator("#public-drop")).to_have_count(0)  # a view link takes no uploads
    screenshot(visitor, "public-link")
    with visitor.expect_download() as download:
        listed.get_by_role("button", name=re.compile("Download")).click()
    assert "OC-Signature=" in download.value.url  # signed with the link's key: streamed to disk
    saved = tmp_path / "statement.txt"
    download.value.save_as(saved)
    assert saved.read_bytes() == b"we are pleased to announce"


def test_a_file_drop_link_takes_an_upload_from_a_visitor(browsing: Browsing, web: ServerProcess, tmp_path: Path):
    folder = f"submissions-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"private-notes.txt": b"not for visitors"})
    page = browsing.as_user("einstein")
    row_action(page, folder, "Share")
    url = create_link(page, "createOnly", LINK_PASSWORD)

    visitor = browsing.context().new_page()
    visitor.goto(url)
    visitor.locator("#public-password").fill(LINK_PASSWORD)
    visitor.locator("#public-open").click()
    drop = visitor.locator("#public-drop")
    expect(drop).to_be_visible()
    expect(visitor.locator("#public-list")).to_have_count(0)  # a drop shows nothing of what is inside
    expect(visitor.get_by_text("private-notes.txt")).to_have_count(0)
    paper = tmp_path / "paper.pdf"
    paper.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 400)
    visitor.locator("#public-upload-input").set_input_files(str(paper))
    expect(visitor.locator('.upload[data-name="paper.pdf"] .upload-state')).to_have_text("100 %")
    screenshot(visitor, "public-drop")
    with web.client() as c:
        assert c.get(f"{web.dav()}/{folder}/paper.pdf").content == paper.read_bytes()


def test_a_link_is_changed_in_place(browsing: Browsing, web: ServerProcess):
    folder = f"drafts-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"draft.txt": b"v1"})
    page = browsing.as_user("einstein")
    row_action(page, folder, "Share")
    url = create_link(page, "view", LINK_PASSWORD)
    link = page.locator("#link-list li").last
    link.get_by_role("button", name="Edit").click()
    editor = link.locator(".link-editor")
    editor.get_by_label("Link type").select_option("edit")
    editor.get_by_label("Expires").fill("2099-03-01")
    editor.get_by_label("New password").fill("Another-Secret-77!")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#link-list li").last).to_contain_text("Can edit")
    expect(page.locator("#link-list li").last).to_contain_text("expires")

    token = url.rsplit("/", 1)[1]
    with web.client() as c:
        drive_item = c.request("PROPFIND", f"{web.dav()}/{folder}", headers={"Depth": "0"}).text
        item = drive_item.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
        found = c.get(f"{web.base_url}/graph/v1beta1/drives/{item.split('!')[0]}/items/{item}/permissions").json()
        changed = next(p for p in found["value"] if p.get("link", {}).get("webUrl") == url)
        assert changed["link"]["type"] == "edit" and changed["expirationDateTime"].startswith("2099-03-01")
    info = f"{web.base_url}/ocs/v1.php/apps/files_sharing/api/v1/tokeninfo/protected/{token}?format=json"
    for password, accepted in (("Another-Secret-77!", True), (LINK_PASSWORD, False)):
        reply = httpx.get(info, auth=("public", password), timeout=10)
        ok = reply.status_code == 200 and reply.json()["ocs"]["meta"]["statuscode"] in (100, 200)
        assert ok == accepted, (password, reply.status_code, reply.text[:200])


def test_the_bell_rings_live_when_something_is_shared(browsing: Browsing, web: ServerProcess):
    folder = f"live-share-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"note.txt": b"for richard"})
    richard = browsing.as_user("richard")
    badge = richard.locator("#notification-count")
    before = int(badge.inner_text() or 0) if badge.is_visible() else 0
    richard.locator("nav.side").get_by_role("link", name="Spaces").click()  # the bell stays across views
    with web.client() as c, web.client("admin") as admin:
        richard_id = next(u["id"] for u in admin.get(f"{web.base_url}/graph/v1.0/users").json()["value"]
                          if u["onPremisesSamAccountName"] == "richard")
        found = c.request("PROPFIND", f"{web.dav()}/{folder}", headers={"Depth": "0"}).text
        item = found.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
        invite = c.post(f"{web.base_url}/graph/v1beta1/drives/{item.split('!')[0]}/items/{item}/invite",
                        json={"recipients": [{"objectId": richard_id}],
                              "roles": ["b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"]})
        assert invite.status_code == 200, invite.text
    expect(badge).to_have_text(str(before + 1), timeout=10_000)  # no reload: it came over the event stream
    richard.locator(".bell").click()
    expect(richard.locator("#notifications")).to_contain_text(folder)
