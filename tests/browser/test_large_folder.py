"""A folder of 10 000 files in the browser app: it opens and scrolls from top to bottom without a
long task over 200 ms on the page's main thread, as Chromium's performance trace records it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ROOT, Browsing, screenshot
from tests.browser.test_files_ui import open_folder, row
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

FILES = 10_000
LONG_TASK_US = 200_000
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "toplevel"]


def fill(web: ServerProcess, folder: str) -> None:
    """10 000 small files written by the storage core in a process of its own (tests/browser/seed.py):
    as PUTs they would take a minute. eatmydata skips the fsyncs of this setup step only; the server
    keeps its own."""
    subprocess.run(["eatmydata", sys.executable, "-m", "tests.browser.seed", "einstein", folder, str(FILES)],
                   env=web.env, cwd=ROOT, check=True, timeout=300)


def main_thread_tasks(trace: bytes) -> list[float]:
    """Durations (µs) of the tasks run on the renderer's main thread."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    return [e["dur"] for e in events
            if e.get("name") == "RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) in main]


def test_a_folder_of_10000_files_opens_and_scrolls_without_long_tasks(browsing: Browsing, browser: Browser,
                                                                      web: ServerProcess):
    folder = "ten-thousand"
    fill(web, folder)
    page = browsing.as_user("einstein")
    expect(row(page, folder)).to_be_visible()

    browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    open_folder(page, folder)
    expect(page.locator(".files-head .count")).to_have_text("10000 items")
    expect(row(page, "report-00000.txt")).to_be_visible()
    viewport = page.locator(".list-viewport")
    viewport.hover()
    height = viewport.evaluate("v => v.scrollHeight")
    for _ in range(40):  # wheel down through the whole list, a page-ful of rows per step
        page.mouse.wheel(0, height / 40)
        page.wait_for_timeout(25)
    viewport.evaluate("v => { v.scrollTop = v.scrollHeight; }")
    expect(row(page, f"report-{FILES - 1:05}.txt")).to_be_visible()
    assert page.locator(".file-list .row").count() < 200  # only what is on screen is in the DOM
    trace = browser.stop_tracing()
    shot = screenshot(page, "large-folder")
    (shot.parent.parent / "large-folder-trace.json").write_bytes(trace)  # open in chrome://tracing

    tasks = main_thread_tasks(trace)
    assert len(tasks) > 50, "the trace recorded the page's main thread"
    longest = max(tasks)
    assert longest < LONG_TASK_US, f"a task on the main thread took {longest / 1000:.0f} ms"
