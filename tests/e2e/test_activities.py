"""Activities with the server as processes (two HTTP workers, the embedded NATS): the one
`activitylog` consumer records each change once, and every worker answers queries from the same
log, whichever of them handled the change."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e
ACTIVITIES = "/graph/v1beta1/extensions/org.libregraph/activities"


def file_id(c: httpx.Client, url: str) -> str:
    r = c.request("PROPFIND", url, headers={"Depth": "0"})
    assert r.status_code == 207, r.text
    return re.search(r"<oc:fileid>([^<]+)<", r.text).group(1)


def messages_from_each_connection(server: ServerProcess, kql: str, rounds: int = 6) -> list[list[str]]:
    """The query asked over fresh connections (which the two workers take in turn)."""
    answers = []
    for _ in range(rounds):
        with server.client() as c:
            r = c.get(server.base_url + ACTIVITIES, params={"kql": kql})
            assert r.status_code == 200, r.text
            answers.append([a["template"]["message"] for a in r.json()["value"]])
    return answers


def test_each_change_is_recorded_once_and_every_worker_reads_it(server: ServerProcess, folder: str) -> None:
    with server.client() as c:
        for i in range(5):  # over new connections: both workers publish
            with server.client() as each:
                assert each.put(f"{folder}/f{i}.txt", content=b"x").status_code == 201
        assert c.put(f"{folder}/f0.txt", content=b"second").status_code == 204
        folder_id = file_id(c, folder)
    expected = ["{user} added {resource} to {folder}"] * 6 + ["{user} updated {resource} in {folder}"]
    deadline = time.monotonic() + 10
    while True:
        answers = messages_from_each_connection(server, f"itemid:{folder_id} AND depth:1")
        if all(a == expected for a in answers) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all(a == expected for a in answers), answers
