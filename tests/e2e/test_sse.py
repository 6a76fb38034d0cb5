"""Live updates over server-sent events with the server as processes (two HTTP workers, the embedded
NATS): a user receives share-created within a second of being given a share, whatever worker their
stream and the sharing request landed on; space members see file changes with the initiator id
their client sent; nobody else hears of them."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

pytestmark = pytest.mark.e2e
VIEWER = "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"
SPACE_VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
SSE = "/ocs/v2.php/apps/notifications/api/v1/notifications/sse"
PASSWORDS = {**DEMO, "moss": "vista", "admin": "admin"}


class Listener:
    """A browser-like SSE client in a thread: each event as (arrival time, type, data)."""

    def __init__(self, server: ServerProcess, user: str) -> None:
        self.events: queue.Queue[tuple[float, str, dict]] = queue.Queue()
        self.ready = threading.Event()
        self._conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        self._conn.request("GET", SSE, headers={"Authorization": f"Basic {token}", "Accept": "text/event-stream"})
        response = self._conn.getresponse()
        assert response.status == 200 and response.getheader("content-type") == "text/event-stream"
        self._conn.sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, args=(response,), daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the stream did not open"

    def _read(self, response: http.client.HTTPResponse) -> None:
        kind, data = "", ""
        try:
            while line := response.readline():
                text = line.decode().rstrip("\n")
                if text.startswith(":"):
                    self.ready.set()
                elif text.startswith("event: "):
                    kind = text[7:]
                elif text.startswith("data: "):
                    data = text[6:]
                elif text == "" and kind:
                    self.events.put((time.monotonic(), kind, json.loads(data)))
                    kind, data = "", ""
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the stream was closed (http.client trips over its own closed socket with AttributeError)

    def wait_for(self, kind: str, timeout: float = 5.0, **match: object) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} {match}"
            try:
                at, got, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got == kind and all(data.get(k) == v for k, v in match.items()):
                return at, data

    def kinds(self) -> list[str]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait()[1])
        return out

    def close(self) -> None:
        """Hangs up, as a browser closing the tab: the server ends the stream."""
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="sse-") as tmp:
        s = ServerProcess(Path(tmp), workers=2)
        s.init()
        s.start()
        yield s
        s.stop()


def user_ids(server: ServerProcess) -> dict[str, str]:
    with httpx.Client(auth=("admin", "admin"), timeout=30) as admin:
        return {u["onPremisesSamAccountName"]: u["id"]
                for u in admin.get(f"{server.base_url}/graph/v1.0/users").json()["value"]}


def test_share_created_reaches_the_recipient_within_a_second(server):
    ids = user_ids(server)
    marie, moss, einstein_stream = Listener(server, "marie"), Listener(server, "moss"), Listener(server, "einstein")
    try:
        with httpx.Client(auth=("einstein", DEMO["einstein"]), timeout=30,
                          headers={"Initiator-ID": "einsteins-browser"}) as e:
            assert e.request("MKCOL", f"{server.dav()}/for-marie").status_code == 201
            _, created = einstein_stream.wait_for("folder-created", initiatorid="einsteins-browser")
            assert created["spaceid"].endswith("$" + ids["einstein"]) and created["etag"].startswith('"')
            assert created["itemid"].startswith(created["spaceid"] + "!")
            propfind = e.request("PROPFIND", f"{server.dav()}/for-marie", headers={"Depth": "0"})
            item = propfind.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
            drive = item.split("!")[0]
            for _ in range(3):  # several shares: every one arrives in time, whichever worker serves it
                assert e.post(f"{server.base_url}/graph/v1beta1/drives/{drive}/items/{item}/invite",
                              json={"recipients": [{"objectId": ids["marie"]}], "roles": [VIEWER]}
                              ).status_code == 200
                shared = time.monotonic()
                at, data = marie.wait_for("share-created", itemid=item)
                assert at - shared < 1.0, at - shared
                assert data["affecteduserids"] == [ids["marie"]] and data["initiatorid"] == "einsteins-browser"
                perms = e.get(f"{server.base_url}/graph/v1beta1/drives/{drive}/items/{item}/permissions").json()
                for p in perms["value"]:
                    assert e.delete(f"{server.base_url}/graph/v1beta1/drives/{drive}/items/{item}/permissions/"
                                    f"{p['id']}").status_code == 204
                marie.wait_for("share-removed", itemid=item)
            assert e.request("MOVE", f"{server.dav()}/for-marie",
                             headers={"Destination": f"{server.dav()}/renamed"}).status_code == 201
            einstein_stream.wait_for("item-renamed", itemid=item)
            assert e.delete(f"{server.dav()}/renamed").status_code == 204
            _, trashed = einstein_stream.wait_for("item-trashed", itemid=item)
            assert trashed["etag"] == "" and trashed["parentitemid"] == ""
        time.sleep(0.5)
        assert "share-created" not in moss.kinds() and "folder-created" not in moss.kinds()
    finally:
        for listener in (marie, moss, einstein_stream):
            listener.close()


def test_a_bad_last_event_id_is_refused_and_anonymous_streams_are_not_served(server):
    with httpx.Client(auth=("einstein", DEMO["einstein"]), timeout=10) as c:
        r = c.get(server.base_url + SSE, headers={"Last-Event-ID": "yesterday"})
        assert r.status_code == 400 and b"Last-Event-ID must be a number!" in r.content
        caps = c.get(f"{server.base_url}/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"]
        assert caps["capabilities"]["core"]["support-sse"] is True
    assert httpx.get(server.base_url + SSE, timeout=10).status_code == 401


def test_a_stream_follows_its_users_group_membership_and_deletion(server):
    base = server.base_url
    with httpx.Client(auth=("admin", "admin"), timeout=30) as admin:
        group = next(g for g in admin.get(f"{base}/graph/v1.0/groups").json()["value"]
                     if g["displayName"] == "quantum-lovers")
        created = admin.post(f"{base}/graph/v1.0/drives", json={"name": "Quantum lab"})
        assert created.status_code == 201, created.text
        drive = created.json()["id"]
        invite = admin.post(f"{base}/graph/v1beta1/drives/{drive}/root/invite", json={
            "recipients": [{"objectId": group["id"], "@libre.graph.recipient.type": "group"}], "roles": [SPACE_VIEWER]})
        assert invite.status_code == 200, invite.text
        richard = Listener(server, "richard")  # a member through the group only
        try:
            assert admin.request("MKCOL", f"{base}/dav/spaces/{drive}/before").status_code == 201
            richard.wait_for("folder-created")
            richard_id = user_ids(server)["richard"]
            assert admin.delete(f"{base}/graph/v1.0/groups/{group['id']}/members/{richard_id}/$ref").status_code == 204
            assert admin.request("MKCOL", f"{base}/dav/spaces/{drive}/after").status_code == 201
            time.sleep(1.0)
            assert "folder-created" not in richard.kinds()
        finally:
            richard.close()
            admin.post(f"{base}/graph/v1.0/groups/{group['id']}/members/$ref",
                       json={"@odata.id": f"{base}/graph/v1.0/users/{richard_id}"})

        made = admin.post(f"{base}/graph/v1.0/users", json={
            "onPremisesSamAccountName": "ephemeral", "displayName": "Ephemeral", "mail": "e@example.org",
            "passwordProfile": {"password": "short-lived-pw"}})
        assert made.status_code == 201, made.text
        PASSWORDS["ephemeral"] = "short-lived-pw"
        gone = Listener(server, "ephemeral")
        try:
            assert admin.delete(f"{base}/graph/v1.0/users/{made.json()['id']}").status_code == 204
            assert admin.request("MKCOL", f"{base}/dav/spaces/{drive}/later").status_code == 201
            gone._thread.join(5)  # the server ended the stream of the deleted user
            assert not gone._thread.is_alive()
        finally:
            gone.close()
