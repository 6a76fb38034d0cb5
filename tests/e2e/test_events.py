"""Events on NATS JetStream with the server as processes: the audit log (consumer group `audit`)
writes each event exactly once while two HTTP worker processes consume; a separate `--roles
workers` process that was killed catches up on what was published meanwhile."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.e2e
FILES = "/remote.php/dav/files/einstein"


def audit_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def wait_for(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            # the parent pid is the second field after the command name in parentheses
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile
    return found


def command(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def stopped(pid: int) -> bool:
    """Every thread of the process stopped (each stops on its own, some time after the signal)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        states.append(stat[stat.rindex(")") + 2])
    return all(state == "T" for state in states)


def uploaded(records: list[dict]) -> list[str]:
    return [r["name"] for r in records if r["Action"] == "FileUploaded"]


@contextlib.contextmanager
def audited_server(root: Path, audit: Path) -> Iterator[ServerProcess]:
    """Two HTTP workers, the audit log (a consumer group) written to `audit`."""
    server = ServerProcess(root, workers=2, extra_env={"AUDIT_LOG_TO_FILE": "true", "AUDIT_FILEPATH": str(audit)})
    server.init()
    server.start()
    try:
        assert server.proc is not None
        yield server
    finally:
        server.stop()


def test_two_workers_log_each_event_once(tmp_path: Path):
    audit = tmp_path / "audit.log"
    with audited_server(tmp_path, audit) as server:
        with server.client(base_url=server.base_url) as c:
            assert c.request("MKCOL", f"{FILES}/ev").status_code == 201
            for i in range(40):
                assert c.put(f"{FILES}/ev/f{i}.txt", content=b"x").status_code == 201
            assert c.delete(f"{FILES}/ev/f0.txt").status_code == 204
        wait_for(lambda: len(uploaded(audit_records(audit))) >= 40)
        time.sleep(1)  # a duplicate would arrive now
        records = audit_records(audit)
        assert sorted(uploaded(records)) == sorted(f"f{i}.txt" for i in range(40))
        assert [r["Action"] for r in records].count("ContainerCreated") == 1
        assert [r["Action"] for r in records].count("ItemTrashed") == 1
        first = records[0]
        assert first["User"] and first["SpaceID"] and first["Time"].endswith("Z")
        nats = (tmp_path / "data" / "nats" / "nats-server.log")
        assert nats.exists()  # the embedded server, started by `infiniscale server`
        # collecting garbage at half the heap growth, as the environment set no GOGC
        (nats_pid,) = [pid for pid in children(server.proc.pid) if command(pid) == "nats-server"]
        assert b"GOGC=50" in Path(f"/proc/{nats_pid}/environ").read_bytes().split(b"\0")


def test_a_worker_process_catches_up_after_a_restart(tmp_path: Path):
    audit = tmp_path / "audit.log"
    port = free_port()
    env = {"AUDIT_LOG_TO_FILE": "true", "AUDIT_FILEPATH": str(audit), "NATS_NATS_PORT": str(port),
           "INFINISCALE_ROLES": "http"}
    server = ServerProcess(tmp_path, extra_env=env)
    server.init()
    server.start()
    worker_env = {**server.env, "INFINISCALE_ROLES": "workers", "OCIS_EVENTS_ENDPOINT": f"127.0.0.1:{port}"}

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([str(VENV_BIN / "infiniscale"), "server"], env=worker_env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "ab"),
                                start_new_session=True)

    worker = start_worker()
    try:
        with server.client(base_url=server.base_url) as c:
            for i in range(5):
                assert c.put(f"{FILES}/a{i}.txt", content=b"a").status_code == 201
            wait_for(lambda: len(uploaded(audit_records(audit))) == 5)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            for i in range(7):  # published while no worker runs: the HTTP processes do not consume
                assert c.put(f"{FILES}/b{i}.txt", content=b"b").status_code == 201
            time.sleep(1)
            assert len(uploaded(audit_records(audit))) == 5
            worker = start_worker()
            wait_for(lambda: len(uploaded(audit_records(audit))) == 12)
            time.sleep(1)
            names = uploaded(audit_records(audit))
            assert sorted(names) == sorted([f"a{i}.txt" for i in range(5)] + [f"b{i}.txt" for i in range(7)])
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        server.stop()


def test_with_search_off_the_other_consumers_still_get_their_events_through_nats(tmp_path: Path):
    """Search off: notifications, activities and the preview janitor still consume the events, so
    they still go through the embedded NATS server, which keeps them for each until it has them."""
    server = ServerProcess(tmp_path, extra_env={"OCIS_EXCLUDE_RUN_SERVICES": "search"})
    server.init()
    server.start()
    try:
        assert (tmp_path / "data" / "nats" / "endpoint").exists()
        with server.client() as c:
            caps = c.get(f"{server.base_url}/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"]
            assert caps["capabilities"]["dav"]["reports"] == []
            body = (b'<oc:search-files xmlns:oc="http://owncloud.org/ns"><oc:search><oc:pattern>x</oc:pattern>'
                    b'</oc:search></oc:search-files>')
            r = c.request("REPORT", f"{server.base_url}/dav/spaces/", content=body)
            assert r.status_code == 501
            assert c.request("MKCOL", f"{server.dav()}/noted").status_code == 201
            assert c.put(f"{server.dav()}/noted/a.txt", content=b"x").status_code == 201
            found = c.request("PROPFIND", f"{server.dav()}/noted", headers={"Depth": "0"}).text
            folder_id = found.split("<oc:fileid>")[1].split("<")[0]
            deadline = time.monotonic() + 10
            while True:  # recorded by the activity log, which took the event from NATS
                r = c.get(server.base_url + "/graph/v1beta1/extensions/org.libregraph/activities",
                          params={"kql": f"itemid:{folder_id} AND depth:1"})
                if (r.status_code == 200 and len(r.json()["value"]) >= 2) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            # the folder's own creation and the file added to it
            assert [a["template"]["message"] for a in r.json()["value"]] == ["{user} added {resource} to {folder}"] * 2
    finally:
        server.stop()


def test_live_updates_cross_workers_without_any_other_consumer(tmp_path: Path):
    """Search and audit off, but two HTTP workers: a live-update stream held by one worker still hears
    of a change made through the other, so events go through NATS here too."""
    from tests.e2e.test_sse import Listener

    server = ServerProcess(tmp_path, workers=2, extra_env={"OCIS_EXCLUDE_RUN_SERVICES": "search"})
    server.init()
    server.start()
    listeners = []
    try:
        assert (tmp_path / "data" / "nats").exists()
        listeners = [Listener(server, "einstein") for _ in range(6)]  # spread over both workers
        with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as c:
            for i in range(3):
                assert c.request("MKCOL", f"{server.base_url}{FILES}/live-{i}").status_code == 201
        for listener in listeners:
            for _ in range(3):
                listener.wait_for("folder-created", timeout=5)
    finally:
        for listener in listeners:
            listener.close()
        server.stop()


def claim_holders(main_pid: int) -> list[int]:
    """The processes holding the consumer claim of the server whose main process is `main_pid`:
    the abstract socket's inode in /proc/net/unix, found among each child's descriptors."""
    name = f"@infiniscale/consumers/{main_pid}"
    inodes = {line.split()[6] for line in Path("/proc/net/unix").read_text().splitlines()[1:]
              if line.split()[-1] == name}
    holders = []
    for pid in children(main_pid):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue  # exited meanwhile
        if any(f"socket:[{inode}]" in links for inode in inodes):
            holders.append(pid)
    return holders


def maps_library(pid: int, name: str) -> bool:
    return name in Path(f"/proc/{pid}/maps").read_text()


def test_one_worker_consumes_and_another_takes_over_when_it_dies(tmp_path: Path):
    audit = tmp_path / "audit.log"
    with audited_server(tmp_path, audit) as server:
        main = server.proc.pid
        workers = [pid for pid in children(main) if command(pid) != "nats-server"]
        assert len(workers) == 2
        wait_for(lambda: len(claim_holders(main)) == 1)
        (holder,) = claim_holders(main)
        assert holder in workers
        # the search index (and its library) opens where it is used: the indexer runs in the holder
        wait_for(lambda: maps_library(holder, "tantivy"))
        assert not any(maps_library(pid, "tantivy") for pid in workers if pid != holder)
        with server.client(base_url=server.base_url) as c:
            assert c.request("MKCOL", f"{FILES}/ev").status_code == 201
            for i in range(10):
                assert c.put(f"{FILES}/ev/before{i}.txt", content=b"x").status_code == 201
            wait_for(lambda: len(uploaded(audit_records(audit))) == 10)
            os.kill(holder, signal.SIGKILL)  # granian starts a new worker in its place
            wait_for(lambda: [p for p in claim_holders(main) if p != holder])
            for i in range(10):
                assert c.put(f"{FILES}/ev/after{i}.txt", content=b"x").status_code == 201
        wait_for(lambda: len(uploaded(audit_records(audit))) >= 20)
        assert sorted(uploaded(audit_records(audit))) == sorted(
            [f"before{i}.txt" for i in range(10)] + [f"after{i}.txt" for i in range(10)])


def test_uploads_go_on_while_nats_is_frozen_and_their_events_outlive_a_crash(tmp_path: Path):
    """With the NATS server frozen, uploads are answered at once (their events wait in the
    server's outbox); the server and its NATS server are then killed; the next start sends the
    events, and the audit log has each upload once."""
    audit = tmp_path / "audit.log"
    server = ServerProcess(tmp_path, extra_env={"AUDIT_LOG_TO_FILE": "true", "AUDIT_FILEPATH": str(audit)})
    server.init()
    server.start()
    (nats,) = [pid for pid in children(server.proc.pid) if command(pid) == "nats-server"]
    try:
        with server.client(base_url=server.base_url) as c:
            assert c.put(f"{FILES}/before.txt", content=b"x").status_code == 201
            wait_for(lambda: uploaded(audit_records(audit)) == ["before.txt"])
            os.kill(nats, signal.SIGSTOP)
            wait_for(lambda: stopped(nats))  # the signal takes effect a moment later
            for i in range(5):
                started = time.monotonic()
                assert c.put(f"{FILES}/frozen{i}.txt", content=b"y").status_code == 201
                assert time.monotonic() - started < 2.0  # waiting for NATS took 5 s, then failed
            assert c.request("MKCOL", f"{FILES}/frozen-folder").status_code == 201
    finally:
        # NATS first: the end of its server would wake it (the kernel continues a stopped process
        # whose process group loses its parent) and it would take the publication it has waiting
        os.kill(nats, signal.SIGKILL)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{nats}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uploaded(audit_records(audit)) == ["before.txt"]
    assert len(list((tmp_path / "data" / "outbox").iterdir())) == 1  # the killed server's

    server.proc = None
    server.start()
    try:
        wait_for(lambda: {f"frozen{i}.txt" for i in range(5)} <= set(uploaded(audit_records(audit))))
        time.sleep(1)  # a duplicate would arrive now
        records = audit_records(audit)
        # before.txt may come again: its consumer had not acknowledged it when the crash came
        assert [name for name in uploaded(records) if name != "before.txt"] == [f"frozen{i}.txt" for i in range(5)]
        assert [r["Action"] for r in records].count("ContainerCreated") == 1
        assert [p.name for p in (tmp_path / "data" / "outbox").iterdir()] != []  # the running server's own
    finally:
        server.stop()
    assert list((tmp_path / "data" / "outbox").iterdir()) == []  # a clean stop leaves none
