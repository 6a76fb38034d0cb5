"""Libre Graph: users, groups, the application and its role assignments, and `me`, with oCIS's
OData query options (`$search`, `$filter`, `$orderby`, `$top`, `$select`, `$expand`) and error
bodies. The rules (permissions, validation) are the core's (core/accounts.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from infiniscale.core.accounts import AccountError, Accounts, Assignment, assignment_of
from infiniscale.core.activities import Activities
from infiniscale.core.model.errors import Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import Group, User
from infiniscale.core.tags import Tags
from infiniscale.observability import request_id
from infiniscale.protocols.drives import DriveError, DrivesApi
from infiniscale.protocols.http import BodyTooLarge, Request, respond

JSON = [("content-type", "application/json")]
PREFIX = "/graph/"
BODY_LIMIT = 256 * 1024
ORDER_FIELDS = {"displayName": "display_name", "mail": "email", "onPremisesSamAccountName": "username"}


def error(code: str, message: str) -> bytes:
    """The OData error body oCIS answers with."""
    return orjson.dumps({"error": {"code": code, "message": message, "innererror": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "request-id": request_id.get("")}}})


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# ---------------------------------------------------------------------- documents

def user_document(user: User, groups: list[Group] | None = None, full: bool = True,
                  assignments: list[Assignment] | None = None, application_id: str = "") -> dict:
    if not full:  # what any user may see of others
        return {"id": user.id, "displayName": user.display_name, "userType": "Member"}
    doc = {"id": user.id, "displayName": user.display_name, "mail": user.email,
           "onPremisesSamAccountName": user.username, "surname": user.username, "givenName": "",
           "userType": "Member", "accountEnabled": True,
           "identities": [{"issuer": "infiniscale", "issuerAssignedId": user.username}]}
    if groups is not None:
        doc["memberOf"] = [group_document(g) for g in groups if g.id in user.groups]
    if assignments is not None:
        doc["appRoleAssignments"] = [assignment_document(a, application_id) for a in assignments]
    return doc


def group_document(group: Group, members: list[User] | None = None, full: bool = True) -> dict:
    doc = {"id": group.id, "displayName": group.name, "groupTypes": []}
    if full:
        doc["onPremisesSamAccountName"] = group.name
    if members is not None:
        doc["members"] = [user_document(u) for u in members]
    return doc


def assignment_document(assignment: Assignment, application_id: str) -> dict:
    return {"id": assignment.id, "appRoleId": assignment.role_id, "principalId": assignment.user_id,
            "principalType": "User", "resourceId": application_id,
            "resourceDisplayName": "ownCloud Infinite Scale"}


# ---------------------------------------------------------------------- OData

_CONDITIONS: tuple[tuple[re.Pattern, Callable[[re.Match], Callable[[User], bool]]], ...] = (
    (re.compile(r"^memberOf/any\(\w+:\w+/id eq '([^']*)'\)$"), lambda m: lambda u: m[1] in u.groups),
    (re.compile(r"^appRoleAssignments/any\(\w+:\w+/appRoleId eq '([^']*)'\)$"),
     lambda m: lambda u: assignment_of(u).role_id == m[1]),
    (re.compile(r"^userType eq '([^']*)'$"), lambda m: lambda u: m[1].lower() == "member"),
    (re.compile(r"^startswith\(displayName,\s*'([^']*)'\)$"),
     lambda m: lambda u: u.display_name.casefold().startswith(m[1].casefold())),
    (re.compile(r"^contains\(displayName,\s*'([^']*)'\)$"),
     lambda m: lambda u: m[1].casefold() in u.display_name.casefold()),
)


def user_filter(text: str) -> Callable[[User], bool]:
    """The $filter forms oCIS supports, joined by `and` / `or` (left to right)."""
    tokens = re.split(r"\s+(and|or)\s+(?=(?:[^']*'[^']*')*[^']*$)", text.strip())
    predicate: Callable[[User], bool] | None = None
    joiner = "and"
    for position, token in enumerate(tokens):
        if position % 2:
            joiner = token
            continue
        for pattern, build in _CONDITIONS:
            found = pattern.match(token.strip())
            if found:
                condition = build(found)
                break
        else:
            raise GraphError(501, "notSupported", "unsupported filter")
        if predicate is None:
            predicate = condition
        elif joiner == "and":
            predicate = (lambda a, b: lambda u: a(u) and b(u))(predicate, condition)
        else:
            predicate = (lambda a, b: lambda u: a(u) or b(u))(predicate, condition)
    if predicate is None:
        raise GraphError(400, "invalidRequest", "invalid filter")
    return predicate


def ordered(items: list, orderby: str, fields: dict[str, str]) -> list:
    if not orderby:
        return items
    name, _, direction = orderby.strip().partition(" ")
    if name not in fields or direction.strip().lower() not in ("", "asc", "desc"):
        raise GraphError(400, "invalidRequest", f"we do not support {name} as a order parameter")
    attribute = fields[name]
    return sorted(items, key=lambda item: str(getattr(item, attribute)).casefold(),
                  reverse=direction.strip().lower() == "desc")


def selected(doc: dict, select: str) -> dict:
    if not select:
        return doc
    wanted = {s.strip() for s in select.split(",") if s.strip()} | {"id"}
    return {k: v for k, v in doc.items() if k in wanted}


# ---------------------------------------------------------------------- dispatch

@contextlib.contextmanager
def core_errors() -> Iterator[None]:
    """The core's refusals about a resource as Graph errors."""
    try:
        yield
    except InvalidArgument as exc:
        raise GraphError(400, "invalidRequest", str(exc)) from None
    except NotFound:
        raise GraphError(404, "itemNotFound", "resource not found") from None
    except Forbidden as exc:
        raise GraphError(403, "accessDenied", str(exc)) from None


class GraphApi:
    def __init__(self, accounts: Accounts, drives: DrivesApi | None = None, tags: Tags | None = None,
                 activities: Activities | None = None) -> None:
        self.accounts = accounts
        self.drives = drives
        self.tags = tags
        self.activities = activities

    async def __call__(self, req: Request, actor: User) -> None:
        try:
            status, body = await self.route(req, actor)
        except GraphError as exc:
            await req.drain()
            await respond(req.send, exc.status, JSON, error(exc.code, str(exc)))
            return
        except AccountError as exc:
            await req.drain()
            await respond(req.send, exc.status, JSON, error(exc.code, str(exc)))
            return
        await respond(req.send, status, JSON if body else [], orjson.dumps(body) if body is not None else b"")

    async def _body(self, req: Request) -> dict:
        try:
            raw = await req.body(BODY_LIMIT)
        except BodyTooLarge:
            raise GraphError(400, "invalidRequest", "invalid request body: too large") from None
        if not raw.strip():
            return {}
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GraphError(400, "invalidRequest", "invalid request body: not JSON") from None
        if not isinstance(doc, dict):
            raise GraphError(400, "invalidRequest", "invalid request body: an object is required")
        return doc

    async def _tags(self, method: str, req: Request, actor: User) -> tuple[int, object]:
        assert self.tags is not None
        with core_errors():
            if method == "GET":
                return 200, {"@odata.context": "#Collection(String)", "value": await self.tags.visible(actor)}
            if method in ("PUT", "DELETE"):
                body = await self._body(req)
                change = self.tags.assign if method == "PUT" else self.tags.unassign
                await change(actor, body.get("resourceId"), body.get("tags"))
                return 200, None
        raise GraphError(405, "notAllowed", "method not allowed")

    async def _activities(self, method: str, query: dict, actor: User) -> tuple[int, object]:
        assert self.activities is not None
        if method != "GET":
            raise GraphError(405, "notAllowed", "method not allowed")
        with core_errors():
            return 200, {"value": await self.activities.list(actor, query.get("kql", ""))}

    @staticmethod
    async def _in_thread(fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def route(self, req: Request, actor: User) -> tuple[int, object]:
        path = unquote(req.scope["path"]).rstrip("/")
        parts = path.split("/")[2:]  # after /graph
        if not parts or parts[0] not in ("v1.0", "v1beta1"):
            raise GraphError(404, "itemNotFound", "not found")
        parts = parts[1:]
        query = {k: v[-1] for k, v in parse_qs(req.query_string, keep_blank_values=True).items()}
        method = req.method
        accounts = self.accounts
        run = self._in_thread
        expand = {e.strip() for e in query.get("$expand", "").split(",") if e.strip()}
        select = query.get("$select", "")
        top = query.get("$top", "")
        if top and not top.isdigit():
            raise GraphError(400, "invalidRequest", "invalid $top")

        def limit(items: list) -> list:
            return items[: int(top)] if top else items

        if parts == ["extensions", "org.libregraph", "tags"] and self.tags is not None:
            return await self._tags(method, req, actor)
        if parts == ["extensions", "org.libregraph", "activities"] and self.activities is not None:
            return await self._activities(method, query, actor)
        if self.drives is not None and self.drives.handles(parts):
            try:
                return await self.drives.route(method, parts, query, req.header, lambda: self._body(req), actor)
            except DriveError as exc:
                raise GraphError(exc.status, exc.code, str(exc)) from None

        if parts[:1] == ["me"]:
            if parts == ["me"] and method == "GET":
                groups = await run(accounts.directory.groups) if "memberOf" in expand else None
                assignments = [assignment_of(actor)] if "appRoleAssignments" in expand else None
                return 200, user_document(actor, groups, True, assignments, accounts.application_id)
            if parts == ["me"] and method == "PATCH":
                return 200, user_document(await run(accounts.update_me, actor, await self._body(req)))
            if parts == ["me", "changePassword"] and method == "POST":
                doc = await self._body(req)
                await run(accounts.change_password, actor, str(doc.get("currentPassword") or ""),
                          str(doc.get("newPassword") or ""))
                return 204, None
        elif parts[:1] == ["users"]:
            if len(parts) == 1 and method == "GET":
                users, full = await run(accounts.list_users, actor, query.get("$search", ""))
                if not full and (query.get("$expand") or (query.get("$filter") and not re.match(
                        r"^userType eq '[^']*'$", query.get("$filter", "").strip()))):
                    raise GraphError(403, "accessDenied", "query has forbidden elements for regular users")
                if query.get("$filter"):
                    users = [u for u in users if user_filter(query["$filter"])(u)]
                users = ordered(users, query.get("$orderby", ""), ORDER_FIELDS)
                groups = await run(accounts.directory.groups) if "memberOf" in expand else None
                docs = [selected(user_document(u, groups, full, [assignment_of(u)] if full and
                                               "appRoleAssignments" in expand else None,
                                               accounts.application_id), select) for u in limit(users)]
                return 200, {"value": docs}
            if len(parts) == 1 and method == "POST":
                return 201, user_document(await run(accounts.create_user, actor, await self._body(req)))
            key = parts[1] if len(parts) > 1 else ""
            if len(parts) == 2:
                if method == "GET":
                    user = await run(accounts.get_user, actor, key)
                    groups = await run(accounts.directory.groups) if "memberOf" in expand else None
                    assignments = [assignment_of(user)] if "appRoleAssignments" in expand else None
                    return 200, selected(user_document(user, groups, True, assignments, accounts.application_id),
                                         select)
                if method == "PATCH":
                    return 200, user_document(await run(accounts.update_user, actor, key, await self._body(req)))
                if method == "DELETE":
                    await run(accounts.delete_user, actor, key)
                    return 204, None
            if len(parts) >= 3 and parts[2] == "appRoleAssignments":
                if len(parts) == 3 and method == "GET":
                    found = await run(accounts.assignments, actor, key)
                    return 200, {"value": [assignment_document(a, accounts.application_id) for a in found]}
                if len(parts) == 3 and method == "POST":
                    made = await run(accounts.assign, actor, key, await self._body(req))
                    return 201, assignment_document(made, accounts.application_id)
                if len(parts) == 4 and method == "DELETE":
                    await run(accounts.unassign, actor, key, parts[3])
                    return 204, None
        elif parts[:1] == ["groups"]:
            if len(parts) == 1 and method == "GET":
                groups, full = await run(accounts.list_groups, actor, query.get("$search", ""))
                if not full and (query.get("$expand") or query.get("$filter")):
                    raise GraphError(403, "accessDenied", "query has forbidden elements for regular users")
                groups = ordered(groups, query.get("$orderby", ""), {"displayName": "name"})
                docs = []
                for group in limit(groups):
                    members = await run(accounts.members, actor, group.id) if "members" in expand else None
                    docs.append(selected(group_document(group, members, full), select))
                return 200, {"value": docs}
            if len(parts) == 1 and method == "POST":
                return 201, group_document(await run(accounts.create_group, actor, await self._body(req)))
            key = parts[1] if len(parts) > 1 else ""
            if len(parts) == 2:
                if method == "GET":
                    group = await run(accounts.get_group, actor, key)
                    members = await run(accounts.members, actor, key) if "members" in expand else None
                    return 200, selected(group_document(group, members), select)
                if method == "PATCH":
                    doc = await self._body(req)
                    binds = doc.get("members@odata.bind") or []
                    await run(accounts.update_group, actor, key, doc, [self._user_ref(b) for b in binds])
                    return 204, None
                if method == "DELETE":
                    await run(accounts.delete_group, actor, key)
                    return 204, None
            if len(parts) >= 3 and parts[2] == "members":
                if len(parts) == 3 and method == "GET":
                    return 200, [user_document(u) for u in await run(accounts.members, actor, key)]
                if parts[3:] == ["$ref"] and method == "POST":
                    reference = (await self._body(req)).get("@odata.id")
                    if not reference:
                        raise GraphError(400, "invalidRequest", "@odata.id reference is missing")
                    await run(accounts.add_members, actor, key, [self._user_ref(reference)])
                    return 204, None
                if len(parts) == 5 and parts[4] == "$ref" and method == "DELETE":
                    await run(accounts.remove_member, actor, key, parts[3])
                    return 204, None
        elif parts[:1] == ["applications"]:
            application = accounts.application()
            if len(parts) == 1 and method == "GET":
                return 200, {"value": [application]}
            if len(parts) == 2 and method == "GET":
                if parts[1] != application["id"]:
                    raise GraphError(404, "itemNotFound", f"requested id {parts[1]} does not match expected "
                                                          f"application id {application['id']}")
                return 200, application
        raise GraphError(404, "itemNotFound", "not found")

    @staticmethod
    def _user_ref(reference: object) -> str:
        """The user id in an `@odata.id` / `members@odata.bind` URL (`…/users/<id>`)."""
        if not isinstance(reference, str):
            raise GraphError(400, "invalidRequest", "Error parsing @odata.id url")
        path = urlsplit(reference).path.rstrip("/")
        head, _, user_id = path.rpartition("/")
        if not head.endswith("/users") or not user_id:
            raise GraphError(400, "invalidRequest", "Only users are allowed as group members")
        return unquote(user_id)
