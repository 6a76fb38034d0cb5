"""The leaves of a compiled search query, which index drivers translate. Inner nodes are kql.And,
kql.Or and kql.Not over these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Words:
    """Every word of `text` in the tokenized field ("name" or "content"); `phrase`: in this order.
    Drivers also accept near misses (one typo in words of five letters or more), ranked lower."""

    field: str
    text: str
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class NamePattern:
    """The whole name, case-insensitive, against a pattern with `*` and `?` wildcards. Drivers
    also accept names with a word one typo away from the pattern's longest literal, ranked lower."""

    pattern: str


@dataclass(frozen=True, slots=True)
class Exact:
    """A keyword field ("tags", "media_type", "media_group", "kind") equals `value` (tags and
    media types compare in lower case)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Prefix:
    field: str  # "media_type"
    value: str


@dataclass(frozen=True, slots=True)
class Range:
    """`lo` <= field < `hi` over "mtime_ns" or "size"; None leaves a side open."""

    field: str
    lo: int | None
    hi: int | None


@dataclass(frozen=True, slots=True)
class Below:
    """The node and everything under it."""

    space_id: str
    node_id: str


@dataclass(frozen=True, slots=True)
class Everything:
    pass


Leaf = Words | NamePattern | Exact | Prefix | Range | Below | Everything
