"""What a user does every day in the browser app, against the real server: sign in, create, upload
(a folder of 50 files and a 100 MiB file through TUS), rename, move, delete and restore, restore a
version, search, and the error a full quota gives."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsing, screenshot
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def row(page: Page, name: str):
    return page.locator(f'.file-list .row[data-name="{name}"]')


def row_action(page: Page, name: str, action: str) -> None:
    row(page, name).locator(".row-menu").click()
    page.get_by_role("menuitem", name=action, exact=True).click()


def new_folder(page: Page, name: str) -> None:
    page.locator("#new-folder").click()
    page.locator("#dialog-input").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(row(page, name)).to_be_visible()


def open_folder(page: Page, name: str) -> None:
    row(page, name).locator("a.name").click()
    expect(page.locator(".breadcrumbs [aria-current=page]")).to_have_text(name)


def test_sign_in_shows_the_personal_space_and_sign_out_ends_the_session(browsing: Browsing):
    page = browsing.as_user("einstein")
    expect(page.locator("#user-name")).to_have_text("Albert Einstein")
    expect(page).to_have_url(re.compile(r"/files/"))
    expect(page.locator("nav.side").get_by_role("link", name="Personal")).to_have_attribute("aria-current", "page")
    # the token in this tab is refreshed silently: a new one replaces it without a login page
    before = page.evaluate("JSON.parse(sessionStorage.getItem('infiniscale.tokens')).access_token")
    page.evaluate("import('/assets/auth.js').then((a) => a.refresh())")
    page.wait_for_function("(old) => JSON.parse(sessionStorage.getItem('infiniscale.tokens')).access_token !== old",
                           arg=before)
    page.reload()
    expect(page.locator(".file-list")).to_be_visible()
    page.locator("#sign-out").click()
    expect(page.locator("#username")).to_be_visible()  # back at the login page after the redirect
    page.goto("/")
    expect(page.locator("#username")).to_be_visible()  # and a new visit asks again


def test_create_upload_rename_move_delete_and_restore(browsing: Browsing, web: ServerProcess, tmp_path: Path):
    page = browsing.as_user("einstein")
    base = f"work-{uuid.uuid4().hex[:6]}"
    new_folder(page, base)
    open_folder(page, base)

    # a folder of 50 files through the folder picker, with progress shown
    album = tmp_path / "album"
    album.mkdir()
    for i in range(50):
        (album / f"photo-{i:02}.txt").write_bytes(os.urandom(2000 + i))
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-folder").click()
    chooser.value.set_files(str(album))
    expect(page.locator("#uploads")).to_be_visible()
    expect(page.locator("#uploads progress").first).to_be_visible()
    expect(page.locator("#upload-total")).to_contain_text("50 of 50", timeout=60_000)
    expect(row(page, "album")).to_be_visible()
    with web.client() as c:
        listing = c.request("PROPFIND", f"{web.dav()}/{base}/album", headers={"Depth": "1"})
        assert listing.text.count("<d:response>") == 51
        assert c.get(f"{web.dav()}/{base}/album/photo-07.txt").content == (album / "photo-07.txt").read_bytes()

    # a 100 MiB file, sent in chunks
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-files").click()
    chooser.value.set_files(str(big))
    expect(page.locator('.upload[data-name="big.bin"] progress')).to_be_visible()
    expect(page.locator('.upload[data-name="big.bin"] .upload-state')).to_have_text("100 %", timeout=120_000)
    expect(row(page, "big.bin")).to_be_visible()
    with web.client() as c, c.stream("GET", f"{web.dav()}/{base}/big.bin") as res:
        digest = hashlib.sha256()
        for chunk in res.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    page.locator("#uploads .icon-button").click()  # close the finished uploads panel
    screenshot(page, "files")

    # rename
    row_action(page, "big.bin", "Rename")
    page.locator("#dialog-input").fill("renamed.bin")
    page.get_by_role("button", name="Save").click()
    expect(row(page, "renamed.bin")).to_be_visible()
    expect(row(page, "big.bin")).to_have_count(0)

    # move into the uploaded folder with the folder picker
    row_action(page, "renamed.bin", "Move")
    page.locator(".picker-list button", has_text="album").click()
    expect(page.locator(".picker-where")).to_have_text(f"/{base}/album")
    page.locator("#pick-here").click()
    expect(row(page, "renamed.bin")).to_have_count(0)
    open_folder(page, "album")
    expect(page.locator(".files-head .count")).to_have_text("51 items")
    expect(row(page, "renamed.bin")).to_have_count(0)  # the list is virtual: the last row is not in the DOM
    page.locator(".list-viewport").evaluate("v => { v.scrollTop = v.scrollHeight; }")
    expect(row(page, "renamed.bin")).to_be_visible()

    # delete to the trash and restore from there
    page.locator(".list-viewport").evaluate("v => { v.scrollTop = 0; }")
    row_action(page, "photo-03.txt", "Delete")
    expect(row(page, "photo-03.txt")).to_have_count(0)
    page.get_by_role("link", name="Trash").click()
    trashed = page.locator('#trash-list tr[data-name="photo-03.txt"]')
    expect(trashed).to_be_visible()
    screenshot(page, "trash")
    trashed.get_by_role("button", name=re.compile("^Restore")).click()
    expect(trashed).to_have_count(0)
    with web.client() as c:
        assert c.get(f"{web.dav()}/{base}/album/photo-03.txt").content == (album / "photo-03.txt").read_bytes()


def test_an_earlier_version_is_restored_from_the_details_panel(browsing: Browsing, web: ServerProcess):
    name = f"notes-{uuid.uuid4().hex[:6]}.txt"
    with web.client() as c:
        assert c.put(f"{web.dav()}/{name}", content=b"first draft").status_code == 201
        assert c.put(f"{web.dav()}/{name}", content=b"second draft").status_code == 204
    page = browsing.as_user("einstein")
    row_action(page, name, "Details")
    versions = page.locator("#versions .version")
    expect(versions).to_have_count(1)
    versions.first.get_by_role("button", name="Restore").click()
    expect(page.locator(".toast", has_text=f"Restored {name}")).to_be_visible()
    with web.client() as c:
        assert c.get(f"{web.dav()}/{name}").content == b"first draft"


def test_search_by_name_finds_as_you_type(browsing: Browsing, web: ServerProcess):
    word = f"quasar{uuid.uuid4().hex[:6]}"
    with web.client() as c:
        c.request("MKCOL", f"{web.dav()}/deep-{word}")
        assert c.put(f"{web.dav()}/deep-{word}/{word}-report.txt", content=b"x").status_code == 201
    page = browsing.as_user("einstein")
    page.locator("#search").fill(word[:-1])
    result = page.locator("#search-results [role=option]", has_text=f"{word}-report.txt")
    expect(result).to_be_visible(timeout=10_000)
    result.click()
    expect(page.locator(".breadcrumbs [aria-current=page]")).to_have_text(f"deep-{word}")
    expect(row(page, f"{word}-report.txt")).to_be_visible()


def test_an_upload_over_the_quota_shows_the_error(browsing: Browsing, web: ServerProcess, tmp_path: Path):
    with httpx.Client(auth=("admin", "admin"), timeout=30) as admin, web.client("richard") as richard:
        drive = next(d for d in richard.get(f"{web.base_url}/graph/v1.0/me/drives").json()["value"]
                     if d["driveType"] == "personal")
        res = admin.patch(f"{web.base_url}/graph/v1.0/drives/{drive['id']}", json={"quota": {"total": 100_000}})
        assert res.status_code == 200, res.text
    page = browsing.as_user("richard")
    too_big = tmp_path / "too-big.bin"
    too_big.write_bytes(os.urandom(200_000))
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-files").click()
    chooser.value.set_files(str(too_big))
    expect(page.get_by_role("alert").filter(has_text="quota is exceeded")).to_be_visible()
    expect(page.locator('.upload[data-name="too-big.bin"] .upload-state')).to_contain_text("quota")
    with web.client("richard") as richard:
        assert richard.get(f"{web.dav('richard')}/too-big.bin").status_code == 404


def test_changes_by_others_show_live_in_one_listing_per_burst(browsing: Browsing, web: ServerProcess):
    here, elsewhere = f"live-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    with web.client() as c:
        for folder in (here, elsewhere):
            assert c.request("MKCOL", f"{web.dav()}/{folder}").status_code == 201
    page = browsing.as_user("einstein")
    open_folder(page, here)
    listings: list[str] = []
    page.on("request", lambda r: listings.append(r.url) if r.method == "PROPFIND" else None)

    with web.client() as c:  # another client, not this tab: its changes arrive as live events
        for i in range(20):
            assert c.put(f"{web.dav()}/{here}/new-{i:02}.txt", content=b"live").status_code == 201
    expect(page.locator(".files-head .count")).to_have_text("20 items")
    page.wait_for_timeout(1000)  # what is still to come of the burst
    assert 1 <= len(listings) <= 5, listings  # coalesced: not one listing per event

    listings.clear()
    with web.client() as c:  # a change in another folder of the space does not list this one again
        assert c.put(f"{web.dav()}/{elsewhere}/far.txt", content=b"away").status_code == 201
    page.wait_for_timeout(1500)
    assert listings == []


def test_downloads_stream_from_signed_urls(browsing: Browsing, web: ServerProcess):
    folder = f"dl-{uuid.uuid4().hex[:6]}"
    content = {"one.bin": os.urandom(300_000), "two.txt": b"second file"}
    with web.client() as c:
        assert c.request("MKCOL", f"{web.dav()}/{folder}").status_code == 201
        for name, data in content.items():
            assert c.put(f"{web.dav()}/{folder}/{name}", content=data).status_code == 201
    page = browsing.as_user("einstein")
    open_folder(page, folder)

    with page.expect_download() as one:
        row_action(page, "one.bin", "Download")
    # the browser fetched it itself, from a URL signed with the user's key: no copy in the page's memory
    assert "OC-Signature=" in one.value.url and "OC-Credential=einstein" in one.value.url
    assert one.value.suggested_filename == "one.bin"
    assert Path(one.value.path()).read_bytes() == content["one.bin"]

    for name in content:
        row(page, name).locator("input[type=checkbox]").check()
    with page.expect_download() as archive:
        page.get_by_role("button", name="Download as archive").click()
    assert "/archiver?" in archive.value.url and "OC-Signature=" in archive.value.url
    with zipfile.ZipFile(archive.value.path()) as zipped:
        assert {n: zipped.read(n) for n in zipped.namelist()} == content

    signed = one.value.url  # not valid once tampered with
    assert httpx.get(signed.replace("one.bin", "two.txt"), timeout=10).status_code == 401


def test_purging_from_the_trash_asks_first(browsing: Browsing, web: ServerProcess):
    folder = f"purge-{uuid.uuid4().hex[:6]}"
    with web.client("richard") as c:
        assert c.request("MKCOL", f"{web.dav('richard')}/{folder}").status_code == 201
        for name in ("keep.txt", "gone.txt", "also-gone.txt"):
            assert c.put(f"{web.dav('richard')}/{folder}/{name}", content=name.encode()).status_code == 201
            assert c.delete(f"{web.dav('richard')}/{folder}/{name}").status_code == 204
    page = browsing.as_user("richard")
    page.locator("nav.side").get_by_role("link", name="Trash").click()
    gone = page.locator('#trash-list tr[data-name="gone.txt"]')
    gone.get_by_role("button", name=re.compile("^Delete permanently")).click()
    page.get_by_role("button", name="Cancel").click()  # asked first: nothing happens on cancel
    expect(gone).to_be_visible()
    gone.get_by_role("button", name=re.compile("^Delete permanently")).click()
    page.locator("#confirm-yes").click()
    expect(gone).to_have_count(0)
    expect(page.locator('#trash-list tr[data-name="keep.txt"]')).to_be_visible()

    page.locator("#empty-trash").click()
    expect(page.get_by_role("dialog")).to_contain_text("Delete all 2 items")
    page.locator("#confirm-yes").click()
    expect(page.locator(".empty", has_text="The trash is empty")).to_be_visible()
    expect(page.locator("#empty-trash")).to_be_hidden()
    with web.client("richard") as c:
        listing = c.request("PROPFIND", f"{web.base_url}/remote.php/dav/trash-bin/richard/", headers={"Depth": "1"})
        assert listing.status_code == 207 and listing.text.count("<d:response>") == 1  # the trash root only


def test_the_keyboard_reaches_everything(browsing: Browsing, web: ServerProcess):
    word = f"kestrel{uuid.uuid4().hex[:6]}"
    folder = f"keys-{uuid.uuid4().hex[:6]}"
    with web.client() as c:
        assert c.request("MKCOL", f"{web.dav()}/{folder}").status_code == 201
        for i in range(3):
            assert c.put(f"{web.dav()}/{folder}/{word}-{i}.txt", content=b"k").status_code == 201
        for i in range(80):
            assert c.put(f"{web.dav()}/{folder}/row-{i:02}.txt", content=b"r").status_code == 201
    page = browsing.as_user("einstein")

    # search results: arrow keys walk the options, Escape goes back to the box
    page.locator("#search").fill(word)
    expect(page.locator("#search-results [role=option]")).to_have_count(3)
    page.locator("#search").press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#search-results [role=option]").nth(1)).to_be_focused()
    expect(page.locator("#search-results [role=option]").nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#search")).to_be_focused()
    page.locator("#search").press("ArrowDown")
    page.keyboard.press("Escape")
    expect(page.locator("#search")).to_be_focused()
    expect(page.locator("#search-results [role=option]")).to_have_count(0)

    # the notification popover closes with Escape, the focus back on its button
    page.locator(".bell").click()
    expect(page.locator("#notifications")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#notifications")).to_be_hidden()
    expect(page.locator(".bell")).to_be_focused()

    # a row scrolled out of the list's DOM is still reached with Tab
    open_folder(page, folder)
    row(page, f"{word}-0.txt").click()
    expect(row(page, f"{word}-0.txt")).to_be_focused()
    page.locator("#new-folder").focus()
    page.locator(".list-viewport").evaluate("v => { v.scrollTop = v.scrollHeight; }")
    expect(row(page, f"{word}-0.txt")).to_have_count(0)  # scrolled away without the focus: not in the DOM
    for _ in range(8):  # Tab from the toolbar gets to it again
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('row')"):
            break
    expect(row(page, f"{word}-0.txt")).to_be_focused()


def test_an_upload_survives_a_dropped_connection_and_a_pause(browsing: Browsing, web: ServerProcess, tmp_path: Path):
    folder = f"resume-{uuid.uuid4().hex[:6]}"
    with web.client() as c:
        assert c.request("MKCOL", f"{web.dav()}/{folder}").status_code == 201
    page = browsing.as_user("einstein")
    open_folder(page, folder)
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)

    # the second chunk's connection drops: the upload asks the server how far it got and goes on
    dropped = tmp_path / "dropped.bin"
    dropped.write_bytes(os.urandom(35_000_000))  # four chunks of 10 MB
    cut = {"done": False}

    def drop_second_chunk(route) -> None:
        if route.request.method == "PATCH" and len(patches) >= 2 and not cut["done"]:
            cut["done"] = True
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"/data/"), drop_second_chunk)
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-files").click()
    chooser.value.set_files(str(dropped))
    state = page.locator('.upload[data-name="dropped.bin"] .upload-state')
    expect(state).to_have_text("100 %", timeout=60_000)
    assert cut["done"]
    page.unroute(re.compile(r"/data/"))

    # paused after its first chunk: nothing more is sent until it is resumed
    paused = tmp_path / "paused.bin"
    paused.write_bytes(os.urandom(80_000_000))  # eight chunks: time to press Pause while it runs
    patches.clear()
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-files").click()
    with page.expect_request(lambda r: r.method == "PATCH"):
        chooser.value.set_files(str(paused))
    pause = page.locator('.upload[data-name="paused.bin"]').get_by_role("button", name="Pause")
    button = pause.element_handle()
    progress = page.locator('.upload[data-name="paused.bin"] .upload-state')
    before = progress.text_content()
    expect(progress).not_to_have_text(before or "", timeout=30_000)
    # progress repaints the row in place: the button under the pointer stays the same element
    assert button.evaluate("b => b.isConnected")
    pause.click()
    resume = page.locator('.upload[data-name="paused.bin"]').get_by_role("button", name="Resume")
    expect(resume).to_be_visible()
    sent = len(patches)
    page.wait_for_timeout(1500)
    assert len(patches) == sent  # paused: no chunk went out meanwhile

    # the server may still be finishing the chunk the pause cut off: it answers 423 while it holds
    # the upload and 409 once its offset moved past the one HEAD gave; the upload asks again for both
    refused = ["423", "409"]

    def busy_then_moved(route) -> None:
        if route.request.method == "PATCH" and refused:
            route.fulfill(status=int(refused.pop(0)), body="")
        else:
            route.continue_()

    page.route(re.compile(r"/data/"), busy_then_moved)
    resume.click()
    expect(page.locator('.upload[data-name="paused.bin"] .upload-state')).to_have_text("100 %", timeout=60_000)
    assert not refused
    page.unroute(re.compile(r"/data/"))

    with web.client() as c:
        for source in (dropped, paused):
            got = c.get(f"{web.dav()}/{folder}/{source.name}").content
            sent_bytes = source.read_bytes()
            if got != sent_bytes:  # say where: which chunk, and whether bytes are missing or wrong
                first = next((i for i, (a, b) in enumerate(zip(got, sent_bytes, strict=False)) if a != b),
                             min(len(got), len(sent_bytes)))
                log = web.log_path.read_text(errors="replace").splitlines()
                patch_log = [line[:300] for line in log if '"PATCH"' in line or '"HEAD"' in line]
                raise AssertionError(f"{source.name}: {len(got)} bytes arrived of {len(sent_bytes)}, first difference "
                                     f"at {first} (chunk {first // 10_000_000}); requests: {patch_log[-30:]}")
