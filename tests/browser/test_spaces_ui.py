"""Project spaces in the browser app: create one, manage its members and their roles, rename it, give
it a description, a readme and an image; a member who does not manage it sees it without the menu."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsing, screenshot
from tests.browser.test_files_ui import row
from tests.conftest import ServerProcess
from tests.e2e.test_previews import picture

pytestmark = pytest.mark.e2e


def card(page: Page, name: str):
    return page.locator(f'#space-list .card[data-name="{name}"]')


def manage(page: Page, name: str, action: str) -> None:
    card(page, name).locator(".space-menu").click()
    page.get_by_role("menuitem", name=action, exact=True).click()


def test_a_manager_runs_a_space_from_its_card(browsing: Browsing, web: ServerProcess, tmp_path: Path):
    name = f"Lab {uuid.uuid4().hex[:6]}"
    user = browsing.as_user("einstein")  # a plain user may not create spaces: no button for it
    user.locator("nav.side").get_by_role("link", name="Spaces").click()
    expect(user.locator("main h1")).to_have_text("Spaces")
    expect(user.locator("#new-space")).to_have_count(0)

    page = browsing.as_user("moss")  # a space admin
    page.locator("nav.side").get_by_role("link", name="Spaces").click()
    page.locator("#new-space").click()
    page.locator("#dialog-input").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(card(page, name)).to_be_visible()

    manage(page, name, "Members")
    dialog = page.locator("#share-dialog")
    expect(dialog.locator("#link-form, #link-type")).to_have_count(0)  # spaces have members, not links here
    dialog.locator("#share-search").press_sequentially("mar", delay=30)
    dialog.locator("#share-suggestions [role=option]", has_text="Marie Curie").click()
    dialog.locator("#share-role").select_option(label="Can edit")
    dialog.locator("#share-invite").click()
    marie_row = dialog.locator("#share-list li", has_text="Marie Curie")
    expect(marie_row.locator("option:checked")).to_have_text("Can edit")
    marie_row.locator("select").select_option(label="Can view")
    expect(page.locator(".toast", has_text="Changed the role of Marie Curie")).to_be_visible()
    page.keyboard.press("Escape")

    renamed = f"{name} renamed"
    manage(page, name, "Rename")
    page.locator("#dialog-input").fill(renamed)
    page.get_by_role("button", name="Save").click()
    expect(card(page, renamed)).to_be_visible()

    manage(page, renamed, "Edit description")
    page.locator("#dialog-input").fill("Where the experiments live")
    page.get_by_role("button", name="Save").click()
    expect(card(page, renamed).locator(".description")).to_have_text("Where the experiments live")

    manage(page, renamed, "Edit readme")
    page.locator("#readme-text").fill("# Lab rules\nLabel every sample.")
    page.locator("#readme-save").click()
    expect(card(page, renamed).locator(".readme")).to_contain_text("Label every sample.")

    image = tmp_path / "lab.png"
    image.write_bytes(picture("png", 320, 200))
    with page.expect_file_chooser() as chooser:
        manage(page, renamed, "Set image")
    chooser.value.set_files(str(image))
    expect(card(page, renamed).locator(".card-image img")).to_be_visible()
    expect(card(page, renamed).locator(".card-image img")).to_have_js_property("complete", True)
    assert card(page, renamed).locator(".card-image img").evaluate("img => img.naturalWidth") == 320
    screenshot(page, "spaces")

    with web.client("moss") as c:  # what the server holds now
        drive = next(d for d in c.get(f"{web.base_url}/graph/v1.0/me/drives").json()["value"] if d["name"] == renamed)
        assert drive["description"] == "Where the experiments live"
        assert {s["specialFolder"]["name"] for s in drive["special"]} == {"image", "readme"}
        members = c.get(f"{web.base_url}/graph/v1beta1/drives/{drive['id']}/root/permissions").json()["value"]
        marie = next(m for m in members if m["grantedToV2"].get("user", {}).get("displayName") == "Marie Curie")
        assert marie["roles"] == ["a8d5fe5e-96e3-418d-825b-534dbdf22b99"]  # Can view
        assert c.put(f"{web.base_url}/dav/spaces/{drive['id']}/protocol.txt", content=b"step one").status_code == 201

    viewer = browsing.as_user("marie")
    viewer.locator("nav.side").get_by_role("link", name="Spaces").click()
    expect(card(viewer, renamed)).to_be_visible()
    expect(card(viewer, renamed).locator(".readme")).to_contain_text("Label every sample.")
    expect(card(viewer, renamed).locator(".space-menu")).to_have_count(0)

    # a viewer reads and downloads, but is offered nothing that changes the space
    card(viewer, renamed).get_by_role("link", name=renamed).click()
    expect(row(viewer, "protocol.txt")).to_be_visible()
    expect(viewer.locator("#new-folder")).to_have_count(0)
    expect(viewer.locator("#upload-files")).to_have_count(0)
    row(viewer, "protocol.txt").locator(".row-menu").click()
    offered = viewer.get_by_role("menuitem").all_inner_texts()
    assert "Download" in offered and not {"Rename", "Move", "Delete"} & set(offered), offered
