"""The browser app speaks the browser's language: German strings, German plural forms, decimal
commas and unit names in sizes; every English string has a German one."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, Browsing
from tests.browser.test_files_ui import open_folder, row
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e
ASSETS = ROOT / "src" / "infiniscale" / "web" / "assets"


def english_keys() -> set[str]:
    source = (ASSETS / "i18n.js").read_text()
    table = source[source.index("const EN = {"):source.index("\n};")]
    return set(re.findall(r"^  (\w+):", table, re.M)) - {"appName"}


def test_every_english_string_has_a_german_one():
    german = json.loads((ASSETS / "l10n" / "de.json").read_text())
    assert sorted(english_keys() - set(german)) == []
    assert sorted(set(german) - english_keys() - {"emptyTrashQuestion_one"}) == []


def test_a_german_browser_gets_german_words_numbers_and_plurals(browsing: Browsing, web: ServerProcess):
    one, two = f"eins-{uuid.uuid4().hex[:6]}", f"zwei-{uuid.uuid4().hex[:6]}"
    with web.client() as c:
        for folder, files in ((one, {"a.bin": 1500}), (two, {"a.bin": 10, "b.bin": 20})):
            assert c.request("MKCOL", f"{web.dav()}/{folder}").status_code == 201
            for name, size in files.items():
                assert c.put(f"{web.dav()}/{folder}/{name}", content=b"x" * size).status_code == 201
    page = browsing.as_user("einstein", locale="de-DE")
    expect(page.locator("nav.side").get_by_role("link", name="Persönlich")).to_be_visible()
    expect(page.locator(".skip")).to_have_text("Zum Inhalt springen")
    open_folder(page, one)
    expect(page.locator(".files-head .count")).to_have_text("1 Element")
    expect(row(page, "a.bin")).to_contain_text("1,5 kB")
    page.locator(".breadcrumbs a").first.click()
    open_folder(page, two)
    expect(page.locator(".files-head .count")).to_have_text("2 Elemente")
