"""Search: KQL compiled into index queries, run over what the caller may see, and every hit checked
against the storage again before it is shown (the index may lag a change by a moment).

Beyond oCIS, whose free text must equal a whole name: free text and `name:` without wildcards also
match the words of a name, word starts ("rep" finds "Report.pdf") and words one typo away; a
`*pattern*` also finds names with the pattern's word misspelled. `size` comparisons work too.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from infiniscale.core import kql
from infiniscale.core.files import Chain, FileService
from infiniscale.core.kql import KqlError
from infiniscale.core.model.errors import InvalidArgument, NotFound, StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.media import FOLDER_MEDIA_TYPE, MEDIA_GROUPS
from infiniscale.core.ports.search import Hit, SearchIndex, Visibility
from infiniscale.core.search_query import Below, Exact, NamePattern, Prefix, Range, Words
from infiniscale.core.sharing import Share

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000
SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
              "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")


@dataclass(frozen=True)
class Found:
    """One hit the caller may see: the chain from its space root (or share root) down to it."""

    chain: Chain  # from the space root
    share: Share | None  # the received share it was found through, if not a member space
    hit: Hit
    start: int = 0  # where in `chain` the share's root is (for a hit through a share)


@dataclass(frozen=True)
class Results:
    found: list[Found]
    total: int


# ---------------------------------------------------------------------- KQL -> index query

def compile_query(text: str, resolve_scope: Callable[[str], Below] | None = None,
                  now: datetime.datetime | None = None) -> object:
    """The index query for a KQL text; KqlError for what cannot be searched for."""
    return _compile(kql.parse(text), resolve_scope, now or datetime.datetime.now().astimezone())


def _compile(node: kql.Node, scope: Callable[[str], Below] | None, now: datetime.datetime) -> object:
    if isinstance(node, kql.And):
        return kql.And(tuple(_compile(p, scope, now) for p in node.parts))
    if isinstance(node, kql.Or):
        return kql.Or(tuple(_compile(p, scope, now) for p in node.parts))
    if isinstance(node, kql.Not):
        return kql.Not(_compile(node.part, scope, now))
    return _leaf(node, scope, now)


def _leaf(r: kql.Restriction, scope: Callable[[str], Below] | None, now: datetime.datetime) -> object:
    prop, value = r.prop, r.value.strip()
    comparing = r.op not in (":", "=")
    if comparing and prop not in ("mtime", "size"):
        raise KqlError(f"{prop or 'a term'} cannot be compared with {r.op}")
    if prop in ("", "name"):
        return _name(value)
    if prop == "content":
        return Words("content", value, phrase=r.quoted)
    if prop in ("tag", "tags"):
        return Exact("tags", value)
    if prop == "mediatype":
        return _media(value.lower())
    if prop == "type":
        kinds = {"1": "file", "file": "file", "2": "folder", "folder": "folder"}
        if value.lower() not in kinds:
            raise KqlError(f"'type' - '{value}' is not valid")
        return Exact("kind", kinds[value.lower()])
    if prop == "mtime":
        return _mtime(r.op, value, now)
    if prop == "size":
        return _size(r.op, value)
    if prop == "scope":
        if scope is None:
            raise KqlError("scope is not available here")
        return scope(value)
    if prop == "id":
        try:
            rid = ResourceId.parse(value)
        except InvalidArgument:
            raise KqlError(f"'id' - '{value}' is not valid") from None
        return Exact("node", rid.node_id)
    if prop == "hidden":
        dotted = NamePattern(".*")
        if value.lower() not in ("true", "false"):
            raise KqlError(f"'hidden' - '{value}' is not valid")
        return dotted if value.lower() == "true" else kql.Not(dotted)
    raise KqlError(f"unknown property '{prop}'")


def _name(value: str) -> object:
    if not value:
        raise KqlError("an empty name")
    if "*" in value or "?" in value:
        return NamePattern(value)
    return kql.Or((NamePattern(value), Words("name", value)))


def _media(value: str) -> object:
    if value == "file":
        return kql.Not(Exact("media_type", FOLDER_MEDIA_TYPE))
    if value in MEDIA_GROUPS:
        return Exact("media_group", value)
    if value.endswith("/*"):
        return Prefix("media_type", value[:-1])
    return Exact("media_type", value)


def _day(d: datetime.date, tz: datetime.tzinfo | None) -> int:
    return int(datetime.datetime.combine(d, datetime.time(), tz).timestamp() * 1e9)


def _mtime(op: str, value: str, now: datetime.datetime) -> Range:
    tz = now.tzinfo
    today = now.date()
    if op in (":", "="):
        keyword = " ".join(value.lower().split())
        start, end = _period(keyword, today)
        if start is None:
            raise KqlError(f"unable to convert '{value}' to a time range")
        return Range("mtime_ns", _day(start, tz), _day(end, tz))
    moment = _moment(value, tz)
    if op == ">":
        return Range("mtime_ns", moment + 1, None)
    if op == ">=":
        return Range("mtime_ns", moment, None)
    if op == "<":
        return Range("mtime_ns", None, moment)
    return Range("mtime_ns", None, moment + 1)


def _period(keyword: str, today: datetime.date) -> tuple[datetime.date | None, datetime.date]:
    """[start, end) in days for an mtime keyword."""
    one = datetime.timedelta(days=1)
    monday = today - datetime.timedelta(days=today.weekday())
    first = today.replace(day=1)
    prev_first = (first - one).replace(day=1)
    periods = {
        "today": (today, today + one),
        "yesterday": (today - one, today),
        "this week": (monday, monday + 7 * one),
        "last week": (monday - 7 * one, monday),
        "last 7 days": (today - 6 * one, today + one),
        "this month": (first, (first + 32 * one).replace(day=1)),
        "last month": (prev_first, first),
        "last 30 days": (today - 29 * one, today + one),
        "this year": (today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)),
        "last year": (today.replace(year=today.year - 1, month=1, day=1), today.replace(month=1, day=1)),
    }
    return periods.get(keyword, (None, today))


def _moment(value: str, tz: datetime.tzinfo | None) -> int:
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise KqlError(f"unable to convert '{value}' to a time range") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp() * 1e9)


def _size(op: str, value: str) -> Range:
    m = _SIZE.match(value.lower())
    if m is None or m.group(2) not in SIZE_UNITS:
        raise KqlError(f"'size' - '{value}' is not valid")
    n = int(float(m.group(1)) * SIZE_UNITS[m.group(2)])
    return {">": Range("size", n + 1, None), ">=": Range("size", n, None), "<": Range("size", None, n),
            "<=": Range("size", None, n + 1)}.get(op, Range("size", n, n + 1))


# ---------------------------------------------------------------------- the service

class SearchService:
    def __init__(self, files: FileService, index: SearchIndex) -> None:
        self.files = files
        self.index = index

    async def search(self, user: User, pattern: str, limit: int = DEFAULT_LIMIT) -> Results:
        """KqlError for a query that cannot be searched for; otherwise the visible hits, best first."""
        limit = MAX_LIMIT if limit < 0 else min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        visible, shares = await self._visibility(user)
        scopes: list[str] = []
        query = compile_query(pattern, lambda value: self._scope_placeholder(value, scopes))
        query = await self._resolve_scopes(user, query, scopes)
        hits, total = await asyncio.to_thread(self.index.search, query, visible, limit)
        found = []
        for hit in hits:
            located = await self._locate(user, hit, shares)
            if located is not None:
                found.append(located)
        return Results(found, total - (len(hits) - len(found)))

    @staticmethod
    def _scope_placeholder(value: str, scopes: list[str]) -> Below:
        scopes.append(value)
        return Below("", value)  # resolved after parsing, which does not wait for the storage

    async def _resolve_scopes(self, user: User, query: object, scopes: list[str]) -> object:
        if not scopes:
            return query
        resolved: dict[str, Below] = {}
        for value in scopes:
            try:
                rid = ResourceId.parse(value.split("/", 1)[0])
                chain = await self.files.resolve_id(user, rid, [n for n in value.split("/")[1:] if n])
            except (InvalidArgument, StorageError):
                raise KqlError(f"the scope {value} is not a folder you can see") from None
            resolved[value] = Below(chain[-1].space_id, chain[-1].id)
        return _replace_scopes(query, resolved)

    async def _visibility(self, user: User) -> tuple[Visibility, dict[tuple[str, str], Share]]:
        spaces = await self.files._run(self.files.spaces.visible, user)
        member = tuple(space.id for space, role in spaces if role is not None and not space.disabled)
        shares: dict[tuple[str, str], Share] = {}
        for received in await self.files.mounts(user):
            share = received.share
            if share.space_id not in member:
                shares[(share.space_id, share.node_id)] = share
        return Visibility(member, tuple(shares)), shares

    async def _locate(self, user: User, hit: Hit, shares: dict[tuple[str, str], Share]) -> Found | None:
        """The hit's current chain, if the caller may still see it (it may have moved, gone or
        changed hands since it was indexed)."""
        try:
            rid = ResourceId(self.files.storage_id_of(hit.space_id), hit.space_id, hit.node_id)
            chain = await self.files.resolve_id(user, rid, [])
        except (StorageError, InvalidArgument, NotFound):
            return None
        if chain[-1].is_root:
            return None  # a space root is found through the drives, not as a file
        ids = [n.id for n in chain]
        for (space_id, node_id), share in shares.items():
            if space_id == hit.space_id and node_id in ids:
                return Found(chain, share, hit, ids.index(node_id))
        return Found(chain, None, hit)


def _replace_scopes(node: object, resolved: dict[str, Below]) -> object:
    if isinstance(node, Below) and node.space_id == "":
        return resolved[node.node_id]
    if isinstance(node, kql.And):
        return kql.And(tuple(_replace_scopes(p, resolved) for p in node.parts))
    if isinstance(node, kql.Or):
        return kql.Or(tuple(_replace_scopes(p, resolved) for p in node.parts))
    if isinstance(node, kql.Not):
        return kql.Not(_replace_scopes(node.part, resolved))
    return node
