"""cadaver 0.24 (neon 0.32): one scripted interactive session, then an independent look at the server."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import DAV_NS, need_binary, run, sha1_bytes, tree

pytestmark = pytest.mark.e2e

CADAVER_NS = "http://webdav.org/cadaver/custom-properties/"
UTF8_NAME = "Grüße · 日本語.txt"
UTF8_DATA = "Grüße aus Köln · 日本語 🎉\n".encode()
BIG_NAME = "big 6m #1.bin"


def split_session(output: str) -> list[tuple[str, str]]:
    """Cut cadaver's transcript into (command, response) pairs at its `dav:/path/> ` prompts."""
    pieces = re.split(r"^dav:/[^\n>]*> ", output, flags=re.M)[1:]
    pairs = []
    for piece in pieces:
        command, _, response = piece.partition("\n")
        pairs.append((command.strip(), response))
    return pairs


def propfind(client, url: str, body: str, depth: str = "0") -> etree._Element:
    resp = client.request("PROPFIND", url, headers={"Depth": depth, "Content-Type": "application/xml"},
                          content=body)
    assert resp.status_code == 207, (resp.status_code, resp.text[:500])
    return etree.fromstring(resp.content)


def test_cadaver_session(server: ServerProcess, folder: str, tmp_path: Path) -> None:
    binary = need_binary("cadaver")
    home, up, down = tmp_path / "home", tmp_path / "up", tmp_path / "down"
    for d in (home, up, down):
        d.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin einstein\npassword {DEMO['einstein']}\n")
    netrc.chmod(0o600)
    (home / ".cadaverrc").write_text("")
    (up / "a.txt").write_bytes(b"alpha\n")
    (up / UTF8_NAME).write_bytes(UTF8_DATA)
    big = os.urandom(6 * 1024 * 1024 + 7)
    (up / "big.bin").write_bytes(big)

    script = f"""\
mkcol sub
cd sub
lcd {up}
put a.txt
put "{UTF8_NAME}"
put big.bin "{BIG_NAME}"
ls
propset "{UTF8_NAME}" custom "value-ü ✓"
propset "{UTF8_NAME}" gone "to be deleted"
propget "{UTF8_NAME}" custom
propdel "{UTF8_NAME}" gone
propget "{UTF8_NAME}" gone
propnames "{UTF8_NAME}"
lock a.txt
discover a.txt
unlock a.txt
discover a.txt
copy a.txt "copy of a.txt"
move "copy of a.txt" "moved ✓.txt"
mkcol nested
copy "{UTF8_NAME}" nested/
lcd {down}
get "moved ✓.txt" moved.txt
get "{BIG_NAME}" big.bin
get "{UTF8_NAME}" utf8.txt
delete a.txt
cd ..
mkcol "to be removed"
rmcol "to be removed"
ls sub
lock "sub/{BIG_NAME}"
quit
"""
    # a wide, dumb terminal keeps readline from wrapping or decorating the echoed commands
    env = {**os.environ, "HOME": str(home), "TERM": "dumb", "COLUMNS": "4000"}
    proc = run([binary, folder + "/"], timeout=120, env=env, cwd=tmp_path, stdin=script)
    transcript = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"cadaver exited {proc.returncode}:\n{transcript[-4000:]}"
    session = split_session(proc.stdout)
    sent = [line.strip() for line in script.splitlines() if line.strip()]
    assert [c for c, _ in session] == sent, f"cadaver did not run the whole script:\n{transcript[-4000:]}"

    for i, (command, response) in enumerate(session):
        verb = command.split()[0]
        where = f"`{command}`:\n{response}"
        if verb in ("lcd", "cd", "quit"):
            assert "fail" not in response.lower() and "not" not in response.lower(), where
        elif verb == "propget" and command.endswith(" gone"):
            assert "Could not fetch property: 404 Not Found" in response, where
        elif verb == "propget":
            assert "Value of custom is: value-ü ✓" in response, where
        elif verb == "propnames":
            assert "succeeded" in response and f"{CADAVER_NS} custom" in response, where
            assert f"{CADAVER_NS} gone" not in response, where
        elif verb == "discover":
            if session[i - 1][0].startswith("lock"):
                assert re.search(r"Lock token <opaquelocktoken:[^>]+>", response), where
                assert "Scope: exclusive  Type: write" in response, where
            else:
                assert "no locks found" in response, where
        elif verb == "ls" and command == "ls":
            assert "succeeded" in response, where
            listing = response.splitlines()[1:]
            assert any(UTF8_NAME in line and f" {len(UTF8_DATA)} " in line for line in listing), where
            assert any(BIG_NAME in line and f" {len(big)} " in line for line in listing), where
            assert any("a.txt" in line and " 6 " in line for line in listing), where
        elif verb == "ls":
            assert "succeeded" in response, where
            assert re.search(r"^Coll:\s+nested\s", response, re.M), where
            for name in (UTF8_NAME, BIG_NAME, "moved ✓.txt"):
                assert name in response, where
            assert not re.search(r"\sa\.txt\s", response), where  # deleted
        else:
            assert "succeeded" in response and "failed" not in response, where

    # downloads are byte-identical
    assert (down / "moved.txt").read_bytes() == b"alpha\n"
    assert (down / "big.bin").read_bytes() == big
    assert (down / "utf8.txt").read_bytes() == UTF8_DATA

    # the server, seen without cadaver
    with server.client() as client:
        state = tree(client, folder)
        assert {k: v["type"] for k, v in state.items()} == {
            "sub": "dir", "sub/nested": "dir", f"sub/{UTF8_NAME}": "file", f"sub/nested/{UTF8_NAME}": "file",
            f"sub/{BIG_NAME}": "file", "sub/moved ✓.txt": "file"}
        expected = {f"sub/{UTF8_NAME}": UTF8_DATA, f"sub/nested/{UTF8_NAME}": UTF8_DATA,
                    f"sub/{BIG_NAME}": big, "sub/moved ✓.txt": b"alpha\n"}
        for rel, data in expected.items():
            assert state[rel]["size"] == len(data), rel
            assert "SHA1:" + sha1_bytes(data) in state[rel]["checksums"], (rel, state[rel]["checksums"])
            got = client.get(f"{folder}/{quote(rel)}")
            assert got.status_code == 200 and got.content == data, rel

        # the dead property set with propset, and the one removed with propdel
        root = propfind(client, f"{folder}/sub/{quote(UTF8_NAME)}",
                        f'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:c="{CADAVER_NS}">'
                        "<d:prop><c:custom/><c:gone/></d:prop></d:propfind>")
        found = {}
        for propstat in root.iter(f"{{{DAV_NS}}}propstat"):
            status = propstat.findtext(f"{{{DAV_NS}}}status")
            for prop in propstat.find(f"{{{DAV_NS}}}prop"):
                found[prop.tag] = (status, prop.text)
        assert found[f"{{{CADAVER_NS}}}custom"] == ("HTTP/1.1 200 OK", "value-ü ✓"), found
        assert found[f"{{{CADAVER_NS}}}gone"][0] == "HTTP/1.1 404 Not Found", found

        # a.txt was unlocked; the big file is still locked by cadaver's last command
        big_url = f"{folder}/sub/{quote(BIG_NAME)}"
        lockdiscovery = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/>'
                         "</d:prop></d:propfind>")
        root = propfind(client, f"{folder}/sub/moved%20%E2%9C%93.txt", lockdiscovery)
        assert root.find(f".//{{{DAV_NS}}}activelock") is None
        root = propfind(client, big_url, lockdiscovery)
        token = root.findtext(f".//{{{DAV_NS}}}activelock/{{{DAV_NS}}}locktoken/{{{DAV_NS}}}href")
        assert token and token.startswith("opaquelocktoken:"), etree.tostring(root)
        assert root.find(f".//{{{DAV_NS}}}activelock/{{{DAV_NS}}}lockscope/{{{DAV_NS}}}exclusive") is not None
        assert client.put(big_url, content=b"overwrite").status_code == 423
        assert client.request("UNLOCK", big_url, headers={"Lock-Token": f"<{token}>"}).status_code == 204
        root = propfind(client, big_url, lockdiscovery)
        assert root.find(f".//{{{DAV_NS}}}activelock") is None
        assert client.get(big_url).content == big
