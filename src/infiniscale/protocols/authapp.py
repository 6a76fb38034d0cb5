"""`/auth-app/tokens`: create (POST `?expiry=72h[&label=]`), list (GET) and delete (DELETE `?token=`)
app tokens of the authenticated user, with oCIS's JSON shapes. An admin may create one for somebody
else (`userID=` or `userName=`) when impersonation is allowed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import parse_qs

import orjson

from infiniscale.core.apptokens import AppToken, AppTokens, parse_duration
from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.model.identity import Group, User
from infiniscale.protocols.http import Request, respond

JSON = [("content-type", "application/json")]
TEXT = [("content-type", "text/plain; charset=utf-8")]


class UserLookup(Protocol):
    def get_by_name(self, username: str) -> User | None: ...
    def get_by_id(self, user_id: str) -> User | None: ...
    def groups(self) -> list[Group]: ...


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _document(token: str, record: AppToken) -> dict:
    return {"token": token, "expiration_date": _time(record.expires), "created_date": _time(record.created),
            "label": record.label}


async def tokens(req: Request, user: User, app_tokens: AppTokens, users: UserLookup,
                 allow_impersonation: bool) -> None:
    query = {k: v[-1] for k, v in parse_qs(req.query_string).items()}
    loop = asyncio.get_running_loop()
    await req.drain()
    if req.method == "GET":
        listed = await loop.run_in_executor(None, app_tokens.list, user.id)
        await respond(req.send, 200, JSON, orjson.dumps([_document(t.id, t) for t in listed]))
    elif req.method == "POST":
        try:
            lifetime = parse_duration(query.get("expiry", ""))
        except InvalidArgument as exc:
            await respond(req.send, 400, TEXT, str(exc).encode())
            return
        owner, label = user, query.get("label", "")
        if query.get("userID") or query.get("userName"):
            if not allow_impersonation:
                await respond(req.send, 403, TEXT, b"impersonation is not allowed")
                return
            if user.role != "admin":
                await respond(req.send, 403, TEXT, b"only admins may create tokens for other users")
                return
            other = await loop.run_in_executor(
                None, users.get_by_id if query.get("userID") else users.get_by_name,
                query.get("userID") or query.get("userName"))
            if other is None:
                await respond(req.send, 404, TEXT, b"user not found")
                return
            owner, label = other, label or "Generated via Impersonation API"
        token, record = await loop.run_in_executor(None, app_tokens.create, owner.id, lifetime, label)
        await respond(req.send, 200, JSON, orjson.dumps(_document(token, record)))
    elif req.method == "DELETE":
        value = query.get("token", "")
        if not value:
            await respond(req.send, 400, TEXT, b"missing auth-app token. Set 'token' parameter")
            return
        removed = await loop.run_in_executor(None, app_tokens.delete, user.id, value)
        await respond(req.send, 200 if removed else 404, TEXT, b"" if removed else b"token not found")
    else:
        await respond(req.send, 405, [*TEXT, ("allow", "GET, POST, DELETE")], b"method not allowed")
