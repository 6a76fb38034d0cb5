"""The WebDAV `If` header (RFC 4918 §10.4): tagged and untagged lists of lock tokens and etags."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from infiniscale.protocols.webdav.errors import DavError

_TOKEN = re.compile(r'\s*(?:<([^>]*)>|\(|\)|(Not)\b|\[([^\]]*)\])', re.IGNORECASE)


@dataclass
class Condition:
    negate: bool
    token: str | None = None  # a state token (lock token URI)
    etag: str | None = None


@dataclass
class IfList:
    resource: str | None  # tagged: the URL the list applies to
    conditions: list[Condition] = field(default_factory=list)


def parse_if(header: str) -> list[IfList]:
    lists: list[IfList] = []
    pos = 0
    tag: str | None = None
    current: IfList | None = None
    negate = False
    text = header.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        ch = text[pos]
        if ch == "<":
            end = text.find(">", pos)
            if end < 0:
                raise DavError(400, "malformed If header")
            value = text[pos + 1:end]
            pos = end + 1
            if current is None:
                tag = value
            else:
                current.conditions.append(Condition(negate, token=value))
                negate = False
        elif ch == "(":
            if current is not None:
                raise DavError(400, "malformed If header")
            current = IfList(tag)
            pos += 1
        elif ch == ")":
            if current is None or not current.conditions:
                raise DavError(400, "malformed If header")
            lists.append(current)
            current = None
            pos += 1
        elif ch == "[":
            end = text.find("]", pos)
            if end < 0 or current is None:
                raise DavError(400, "malformed If header")
            current.conditions.append(Condition(negate, etag=text[pos + 1:end]))
            negate = False
            pos = end + 1
        elif text[pos:pos + 3].lower() == "not" and current is not None:
            negate = True
            pos += 3
        else:
            raise DavError(400, "malformed If header")
    if current is not None or not lists:
        raise DavError(400, "malformed If header")
    return lists


def submitted_tokens(lists: list[IfList]) -> frozenset[str]:
    return frozenset(c.token for lst in lists for c in lst.conditions if c.token and not c.negate)
