"""Notifications with the server as processes (two HTTP workers, the embedded NATS) and a real SMTP
server (aiosmtpd, delivering into a Maildir): a share reaches its recipient as a notification, as
a live `userlog-notification` event and as an e-mail, once each whichever worker handles what; a
mail server that is down delays the e-mail and does not lose it."""

from __future__ import annotations

import contextlib
import mailbox
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO, VENV_BIN, ServerProcess, free_port
from tests.e2e.test_sse import Listener, user_ids

pytestmark = pytest.mark.e2e
NOTIFICATIONS = "/ocs/v2.php/apps/notifications/api/v1/notifications"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"


class SmtpServer:
    """aiosmtpd as a process on a loopback port, every message into a Maildir."""

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.maildir = root / "maildir"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([str(VENV_BIN / "python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
                                      "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            time.sleep(0.05)
        raise RuntimeError("the SMTP server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def messages(self) -> list[dict[str, str]]:
        if not self.maildir.exists():
            return []
        found = []
        for message in mailbox.Maildir(str(self.maildir), create=False):
            found.append({"to": message["To"], "from": str(make_header(decode_header(message["From"]))),
                          "subject": str(make_header(decode_header(message["Subject"]))),
                          "body": message.get_payload(decode=True).decode()})
        return found

    def wait_for(self, subject: str, timeout: float = 10.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages() if m["subject"] == subject]
            if found:
                time.sleep(0.3)  # a second copy would have arrived by now
                return [m for m in self.messages() if m["subject"] == subject]
            time.sleep(0.05)
        raise AssertionError(f"no mail {subject!r}; got {[m['subject'] for m in self.messages()]}")


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[ServerProcess, SmtpServer]]:
    with tempfile.TemporaryDirectory(prefix="notify-") as tmp:
        smtp = SmtpServer(Path(tmp), free_port())
        smtp.start()
        server = ServerProcess(Path(tmp), workers=2, extra_env={
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "NOTIFICATIONS_SMTP_PORT": str(smtp.port),
            "NOTIFICATIONS_SMTP_SENDER": "Infinite Scale <noreply@example.org>",
            "NOTIFICATIONS_SMTP_AUTHENTICATION": "none"})
        server.init()
        server.start()
        try:
            yield server, smtp
        finally:
            server.stop()
            smtp.stop()


def share(server: ServerProcess, owner: str, path: str, with_: str) -> dict:
    with httpx.Client(auth=(owner, DEMO[owner]), timeout=30) as c:
        r = c.post(f"{server.base_url}{SHARES}", params={"format": "json"},
                   data={"path": path, "shareType": "0", "shareWith": with_, "permissions": "1"})
        assert r.status_code == 200, r.text
        return r.json()["ocs"]["data"]


def notifications(server: ServerProcess, user: str) -> list[dict]:
    with httpx.Client(auth=(user, DEMO[user]), timeout=30) as c:
        return c.get(f"{server.base_url}{NOTIFICATIONS}", params={"format": "json"}).json()["ocs"]["data"] or []


def test_a_share_arrives_as_notification_live_event_and_mail_once_each(setup):
    server, smtp = setup
    ids = user_ids(server)
    stream = Listener(server, "marie")
    try:
        with server.client("einstein") as e:
            assert e.put(f"{server.dav()}/orbit.txt", content=b"ellipse").status_code == 201
        shared = share(server, "einstein", "/orbit.txt", "marie")
        _, live = stream.wait_for("userlog-notification", timeout=5)
        assert live["subject"] == "Resource shared" and live["object_id"] == shared["item_source"]
        assert live["message"] == "Albert Einstein shared orbit.txt with you"
        [listed] = [n for n in notifications(server, "marie") if n["object_id"] == shared["item_source"]]
        assert listed["notification_id"] == live["notification_id"]
        assert listed["messageRichParameters"]["user"]["id"] == ids["einstein"]
        assert notifications(server, "einstein") == []
        [mail] = smtp.wait_for("Albert Einstein shared 'orbit.txt' with you")
        assert mail["to"] == "marie@example.org"
        assert mail["from"] == "Albert Einstein via Infinite Scale <noreply@example.org>"
        assert "Hello Marie Curie" in mail["body"]
        assert f"{server.base_url}/files/shares/with-me" in mail["body"]
        time.sleep(0.5)  # a copy from the other worker would have come by now
        assert [k for k in stream.kinds() if k == "userlog-notification"] == []
        assert len([n for n in notifications(server, "marie") if n["object_id"] == shared["item_source"]]) == 1
    finally:
        stream.close()


def test_a_space_invitation_is_mailed_to_the_new_member(setup):
    server, smtp = setup
    ids = user_ids(server)
    with httpx.Client(auth=("admin", "admin"), timeout=30) as admin:
        drive = admin.post(f"{server.base_url}/graph/v1.0/drives", json={"name": "Voyager"}).json()
        r = admin.post(f"{server.base_url}/graph/v1beta1/drives/{drive['id']}/root/invite",
                       json={"recipients": [{"objectId": ids["richard"], "@libre.graph.recipient.type": "user"}],
                             "roles": ["58c63c02-1d89-4572-916a-870abc5a1b7d"]})
        assert r.status_code == 200, r.text
    [mail] = smtp.wait_for("Admin invited you to join Voyager")
    assert mail["to"] == "richard@example.org" and f"/f/{drive['id']}" in mail["body"]
    assert [n["subject"] for n in notifications(server, "richard")] == ["Space shared"]


def test_mail_waits_for_a_mail_server_that_is_down(setup):
    server, smtp = setup
    smtp.stop()
    try:
        with server.client("einstein") as e:
            assert e.put(f"{server.dav()}/later.txt", content=b"later").status_code == 201
        share(server, "einstein", "/later.txt", "richard")
        deadline = time.monotonic() + 10
        while not any(n["message"].endswith("later.txt with you") for n in notifications(server, "richard")):
            assert time.monotonic() < deadline, "no notification"
            time.sleep(0.05)
        time.sleep(3)  # the first attempts fail
    finally:
        smtp.start()
    [mail] = smtp.wait_for("Albert Einstein shared 'later.txt' with you", timeout=20)
    assert mail["to"] == "richard@example.org"
