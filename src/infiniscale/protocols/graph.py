"""Libre Graph: the parts served so far. `GET /graph/v1.0/me` (with `$expand=memberOf`)."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qs

import orjson

from infiniscale.core.model.identity import Group, User
from infiniscale.protocols.http import Request, respond

JSON = [("content-type", "application/json")]
PREFIX = "/graph/"


class Directory(Protocol):
    def groups(self) -> list[Group]: ...


def error(code: str, message: str, request_id: str = "") -> bytes:
    """The OData error body oCIS answers with."""
    return orjson.dumps({"error": {"code": code, "message": message,
                                   "innererror": {"request-id": request_id}}})


def user_document(user: User, groups: list[Group] | None = None) -> dict:
    doc = {"id": user.id, "displayName": user.display_name, "mail": user.email,
           "onPremisesSamAccountName": user.username, "userType": "Member", "accountEnabled": True}
    if groups is not None:
        doc["memberOf"] = [{"id": g.id, "displayName": g.name, "onPremisesSamAccountName": g.name}
                           for g in groups if g.id in user.groups]
    return doc


async def graph(req: Request, user: User, directory: Directory) -> None:
    path = req.scope["path"].rstrip("/")
    await req.drain()
    if path in ("/graph/v1.0/me", "/graph/v1beta1/me") and req.method == "GET":
        query = {k: v[-1] for k, v in parse_qs(req.query_string).items()}
        expand = {e.strip() for e in query.get("$expand", "").split(",")}
        groups = directory.groups() if "memberOf" in expand else None
        await respond(req.send, 200, JSON, orjson.dumps(user_document(user, groups)))
        return
    await respond(req.send, 404, JSON, error("itemNotFound", "not found"))
