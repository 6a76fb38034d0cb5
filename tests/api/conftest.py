"""The whole ASGI app in-process (httpx ASGITransport) on a temp data directory."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path

import httpx
import pytest

from infiniscale.runtime import build_app, build_directory
from infiniscale.settings import resolve

MOUNT_ID = "1284d238-aa92-42ce-bdc4-0b0000009157"


def people(settings, users: dict[str, str], groups: dict[str, list[str]]) -> dict[str, str]:
    """Users (name: role, password `<name>-secret`) and groups (name: member user names) in the
    built-in directory; returns every name's id."""
    directory = build_directory(settings)
    ids = {}
    for name, role in users.items():
        ids[name] = str(uuid.uuid4())
        directory.put_user(ids[name], name, f"{name}-secret", name.title(), f"{name}@example.org", role=role)
    for name, members in groups.items():
        ids[name] = str(uuid.uuid4())
        directory.put_group(ids[name], name, members)
    return ids


@contextlib.asynccontextmanager
async def consuming(app, consumer: Callable[[object], Coroutine], users: dict[str, str]
                    ) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Runs an event consumer on the app's bus while the block runs; yields a client per user
    (password `<name>-secret`) and an `anonymous` one."""
    task = asyncio.create_task(consumer(app.webdav.dav.files.bus))
    await asyncio.sleep(0)  # the consumer joins its group before anything happens
    transport = httpx.ASGITransport(app=app)
    clients = {name: httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                       auth=(name, f"{name}-secret")) for name in users}
    clients["anonymous"] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    try:
        yield clients
    finally:
        task.cancel()
        for c in clients.values():
            await c.aclose()


@pytest.fixture
def settings(tmp_path: Path):
    env = {"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "OCIS_URL": "https://cloud.example.org",
           "PROXY_ENABLE_BASIC_AUTH": "true",
           "STORAGE_USERS_MOUNT_ID": MOUNT_ID}
    return resolve(env=env)


@pytest.fixture
def app(settings):
    directory = build_directory(settings)
    directory.put_user("4c510ada-c86b-4815-8820-42cdf82c3d51", "einstein", "relativity", "Albert Einstein",
                       "einstein@example.org")
    directory.put_user(str(uuid.uuid4()), "marie", "radioactivity", "Marie Curie", "marie@example.org")
    return build_app(settings)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 auth=("einstein", "relativity")) as c:
        yield c


DAV = "/remote.php/dav/files/einstein"


# A small organisation for the tests of versions, trash and tags: an admin and four users
# (password `<name>-secret`), each test on its own data directory.
ORG_URL = "https://cloud.example.org"
ORG_USERS = {"admin": "admin", "einstein": "user", "marie": "user", "richard": "user", "moss": "user"}


def world_for(tmp_path: Path, **env: str):
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "OCIS_URL": ORG_URL,
                            "PROXY_ENABLE_BASIC_AUTH": "true", "STORAGE_USERS_MOUNT_ID": MOUNT_ID, **env})
    ids = people(settings, ORG_USERS, {})
    return build_app(settings), ids


async def make_clients(app) -> dict[str, httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    return {name: httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=(name, f"{name}-secret"))
            for name in ORG_USERS}


@pytest.fixture
def world(tmp_path: Path):
    return world_for(tmp_path)


@pytest.fixture
def ids(world) -> dict[str, str]:
    return world[1]


@pytest.fixture
async def clients(world) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = await make_clients(world[0])
    try:
        yield made
    finally:
        for c in made.values():
            await c.aclose()
