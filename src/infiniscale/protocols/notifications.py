"""`/ocs/v2.php/apps/notifications/api/v1/notifications` (oCIS's userlog API): GET lists the caller's
notifications (`data` is null when there are none, as oCIS answers), DELETE with `{"ids": [...]}`
dismisses some; `…/notifications/global` POST announces and DELETE withdraws the instance's
deprovisioning, for admins or callers with the configured `secret` header (others get a 404)."""

from __future__ import annotations

import asyncio
import hmac

import orjson

from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.model.identity import User
from infiniscale.core.roles import can
from infiniscale.core.userlog import Userlog
from infiniscale.protocols.http import BodyTooLarge, Request, respond

PATH = "apps/notifications/api/v1/notifications"
GLOBAL_PATH = PATH + "/global"
JSON = [("content-type", "application/json; charset=utf-8")]
MAX_BODY = 1 << 20


def envelope(data: object, status: int = 200, message: str = "") -> bytes:
    return orjson.dumps({"ocs": {"meta": {"message": message, "status": "", "statuscode": status}, "data": data}})


class BadBody(ValueError):
    pass


async def _json_body(req: Request) -> dict:
    try:
        doc = orjson.loads(await req.body(MAX_BODY))
    except (BodyTooLarge, orjson.JSONDecodeError) as exc:
        raise BadBody(str(exc) or "the body is too large") from None
    if not isinstance(doc, dict):
        raise BadBody("the body must be a JSON object")
    return doc


def _ids(doc: dict) -> list[str]:
    ids = doc.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadBody("ids must be a list of strings")
    return ids


async def handle(req: Request, user: User, userlog: Userlog) -> None:
    if req.method == "GET":
        items = await asyncio.to_thread(userlog.list, user)
        await respond(req.send, 200, JSON, envelope(items or None))
        return
    if req.method == "DELETE":
        try:
            ids = _ids(await _json_body(req))
        except BadBody as exc:
            await respond(req.send, 400, JSON, envelope(None, 400, f"bad request: {exc}"))
            return
        await asyncio.to_thread(userlog.dismiss, user, ids)
        await respond(req.send, 200, JSON, b"")
        return
    await req.drain()
    await respond(req.send, 405, [*JSON, ("allow", "GET, DELETE")], envelope(None, 405, "method not allowed"))


async def handle_global(req: Request, user: User, userlog: Userlog, secret: str) -> None:
    given = req.header("secret") or ""
    allowed = can(user.role, "Accounts.ReadWrite") or bool(secret and hmac.compare_digest(given, secret))
    if not allowed or req.method not in ("POST", "DELETE"):
        await req.drain()
        status, code, text = (404, "itemNotFound", "Not found") if not allowed else (405, "notAllowed",
                                                                                     "method not allowed")
        await respond(req.send, status, JSON, orjson.dumps({"error": {"code": code, "message": text}}))
        return
    try:
        doc = await _json_body(req)
        if req.method == "POST":
            kind = doc.get("type")
            if not isinstance(kind, str):
                raise BadBody("type is missing")
            await asyncio.to_thread(userlog.set_global, kind, doc.get("data"))
        else:
            await asyncio.to_thread(userlog.remove_global, _ids(doc))
    except BadBody as exc:
        await respond(req.send, 400, JSON, envelope(None, 400, f"bad request: {exc}"))
        return
    except InvalidArgument as exc:  # oCIS answers an unknown type or a bad date with a 500; a 400 says why
        await respond(req.send, 400, JSON, envelope(None, 400, str(exc)))
        return
    await respond(req.send, 200, JSON, b"")
