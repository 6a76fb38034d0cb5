"""The browser app in Debian's chromium, driven by Playwright: the server runs as a subprocess, every
test gets fresh browser contexts (one per user), screenshots go to artifacts/screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import DEMO, ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("INFINISCALE_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

expect.set_options(timeout=15_000)
PASSWORDS = {**DEMO, "admin": "admin"}


# Package scope, not session: while sync_playwright is open it marks its event loop as running in the
# main thread, and every asyncio.run() of the tests collected after this package would fail.
@pytest.fixture(scope="package")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("web"), workers=2) as proc:
        yield proc


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


class Browsing:
    """Contexts opened by one test, closed after it; `as_user` signs in through the login page."""

    def __init__(self, browser: Browser, server: ServerProcess) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []

    def context(self, **kwargs) -> BrowserContext:
        ctx = self.browser.new_context(base_url=self.server.base_url, viewport={"width": 1280, "height": 800},
                                       accept_downloads=True, **kwargs)
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        return ctx

    def as_user(self, user: str = "einstein", **kwargs) -> Page:
        page = self.context(**kwargs).new_page()
        page.goto("/")
        page.locator("#username").fill(user)
        page.locator("#password").fill(PASSWORDS[user])
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".file-list")).to_be_visible()
        return page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def browsing(browser: Browser, web: ServerProcess) -> Iterator[Browsing]:
    session = Browsing(browser, web)
    try:
        yield session
    finally:
        session.close()


def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
