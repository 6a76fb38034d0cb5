"""axe-core (the copy axe-playwright-python ships) over the main screens of the browser app: the
login page, files in list and grid view, the share dialog, trash, shares, spaces, search, dark mode
and a public link's password and folder pages. No violation may be critical or serious."""

from __future__ import annotations

import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsing
from tests.browser.test_files_ui import row, row_action
from tests.browser.test_sharing_ui import LINK_PASSWORD, create_link, make_folder
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

BLOCKING = ("critical", "serious")


def violations(page: Page, screen: str) -> list[str]:
    found = Axe().run(page).response["violations"]
    return [f"{screen}: {v['impact']} {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes'][:3]]}"
            for v in found if v["impact"] in BLOCKING]


def test_main_screens_have_no_critical_or_serious_violations(browsing: Browsing, web: ServerProcess):
    folder = f"a11y-{uuid.uuid4().hex[:6]}"
    make_folder(web, folder, {"notes.txt": b"accessible", "photo.svg": b"<svg/>"})
    found: list[str] = []

    login = browsing.context().new_page()
    login.goto("/")
    expect(login.locator("#username")).to_be_visible()
    found += violations(login, "login")

    page = browsing.as_user("einstein")
    expect(row(page, folder)).to_be_visible()
    found += violations(page, "files")
    page.locator("#view-toggle").click()
    expect(page.locator(".file-list.grid-mode")).to_be_visible()
    found += violations(page, "files, grid")
    page.locator("#view-toggle").click()  # back to the list

    row_action(page, folder, "Share")
    expect(page.locator("#share-search")).to_be_focused()
    found += violations(page, "share dialog")
    url = create_link(page, "view", LINK_PASSWORD)
    page.keyboard.press("Escape")

    row_action(page, folder, "Details")
    expect(page.locator(".details-body .details-section").first).to_be_visible()
    found += violations(page, "details panel")

    page.locator("nav.side").get_by_role("link", name="Trash").click()
    expect(page.locator("main h1")).to_be_visible()
    found += violations(page, "trash")
    page.locator("nav.side").get_by_role("link", name="Shared with me").click()
    expect(page.locator("main h1")).to_be_visible()
    found += violations(page, "shares")
    page.locator("nav.side").get_by_role("link", name="Spaces").click()
    expect(page.locator("main h1")).to_be_visible()
    found += violations(page, "spaces")

    page.locator("#search").fill("notes")
    expect(page.locator("#search-results [role=option]").first).to_be_visible()
    found += violations(page, "search")
    page.keyboard.press("Escape")

    toggle = page.get_by_role("button", name="Dark mode")
    before = page.evaluate("document.documentElement.dataset.theme")
    toggle.click()
    expect(page.locator("html")).not_to_have_attribute("data-theme", before)
    toggle.click()  # and back, from the same button
    expect(page.locator("html")).to_have_attribute("data-theme", before)
    if before != "dark":
        toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.locator("nav.side").get_by_role("link", name="Personal").click()
    expect(row(page, folder)).to_be_visible()
    found += violations(page, "files, dark mode")

    visitor = browsing.context().new_page()
    visitor.goto(url)
    expect(visitor.locator("#public-password")).to_be_visible()
    found += violations(visitor, "public link password")
    visitor.locator("#public-password").fill(LINK_PASSWORD)
    visitor.locator("#public-open").click()
    expect(visitor.locator("#public-list")).to_be_visible()
    found += violations(visitor, "public link folder")

    assert not found, "\n".join(found)
