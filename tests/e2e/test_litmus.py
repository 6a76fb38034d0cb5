"""The litmus 0.13 WebDAV compliance suites (neon based), each against its own fresh collection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import need_binary, run

pytestmark = pytest.mark.e2e

SUITE_DIR = Path("/usr/libexec/litmus")
HTDOCS = Path("/usr/share/litmus/htdocs")

# Number of tests each suite of litmus 0.13 runs; all of them must pass.
EXPECTED = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}

SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


@pytest.mark.parametrize("suite", list(EXPECTED))
def test_litmus_suite(suite: str, server: ServerProcess, folder: str, tmp_path: Path) -> None:
    need_binary("litmus")
    program = SUITE_DIR / suite
    assert program.is_file(), f"litmus suite program {program} is missing (Debian package litmus)"
    assert HTDOCS.is_dir(), f"litmus htdocs {HTDOCS} is missing (Debian package litmus)"

    # litmus writes debug.log and child.log into its working directory
    proc = run([str(program), "--htdocs", str(HTDOCS), folder + "/", "einstein", DEMO["einstein"]],
               timeout=120, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    failures = [line for line in output.splitlines() if "FAIL" in line]
    summaries = SUMMARY.findall(output)
    assert summaries, f"litmus {suite} printed no summary (exit {proc.returncode}):\n{output[-4000:]}"
    name, ran, passed, failed = summaries[-1]
    assert name == suite
    report = "\n".join(failures) or output[-4000:]
    assert (int(ran), int(passed), int(failed)) == (EXPECTED[suite], EXPECTED[suite], 0), (
        f"litmus {suite}: {passed} of {ran} passed, {failed} failed (expected {EXPECTED[suite]} of "
        f"{EXPECTED[suite]}):\n{report}")
    assert proc.returncode == 0, f"litmus {suite} exited {proc.returncode}:\n{report}"
