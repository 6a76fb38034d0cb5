"""KQL, the query language of search, parsed into a small tree.

    query       := or_expr
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := unary (["AND"] unary)*        adjacent restrictions are ANDed
    unary       := ("NOT" | "-") unary | primary
    primary     := "(" or_expr ")" | restriction
    restriction := [property (":" | "=" | "<" | "<=" | ">" | ">=")] (word | "quoted" | "(" values ")")

A property with a group (`name:(a OR b)`) applies to each value inside. Operators are upper case,
as in KQL; a lower-case `and` is a word. Property names are case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 32
OPERATORS = (">=", "<=", ":", "=", ">", "<")
MTIME_KEYWORDS = ("today", "yesterday", "this week", "last week", "last 7 days", "this month", "last month",
                  "last 30 days", "this year", "last year")


class KqlError(ValueError):
    """A query that cannot be parsed; the message says where."""


@dataclass(frozen=True, slots=True)
class Restriction:
    prop: str  # lower case; "" for free text
    op: str  # one of OPERATORS
    value: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node = Restriction | And | Or | Not

_TOKEN = re.compile(r'''
    \s+                                   |
    (?P<open>\()                          |
    (?P<close>\))                         |
    "(?P<quoted>(?:[^"\\]|\\.)*)"         |
    (?P<word>[^\s()"]+)
''', re.VERBOSE)
_PROPERTY = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)(>=|<=|:|=|>|<)(.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # open | close | quoted | word
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    found: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # an unterminated quote
            raise KqlError(f"unterminated quote at position {pos}")
        if m.lastgroup == "quoted":
            found.append(_Tok("quoted", re.sub(r"\\(.)", r"\1", m.group("quoted")), pos))
        elif m.lastgroup is not None:
            found.append(_Tok(m.lastgroup, m.group(m.lastgroup), pos))
        pos = m.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_op(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text == word

    def parse(self) -> Node:
        if not self.toks:
            raise KqlError("the query is empty")
        node = self.or_expr()
        if self.peek() is not None:
            raise KqlError(f"unexpected {self.peek().text!r} at position {self.peek().at}")  # type: ignore[union-attr]
        return node

    def or_expr(self, prop: str = "", op: str = ":") -> Node:
        parts = [self.and_expr(prop, op)]
        while self.is_op("OR"):
            self.take()
            parts.append(self.and_expr(prop, op))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self, prop: str, op: str) -> Node:
        """Adjacent terms are ANDed, except terms of the same property, which are ORed (as KQL
        does: `tag:a tag:b` finds either tag); an explicit AND always ANDs."""
        parts = [self.unary(prop, op)]
        while (tok := self.peek()) is not None and tok.kind != "close" and not self.is_op("OR"):
            explicit = self.is_op("AND")
            if explicit:
                self.take()
            part = self.unary(prop, op)
            last = parts[-1]
            if not explicit and _same_property(last, part):
                parts[-1] = Or((*(last.parts if isinstance(last, Or) else (last,)), part))
            else:
                parts.append(part)
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, prop: str, op: str) -> Node:
        tok = self.peek()
        if tok is None:
            raise KqlError("the query ends where a term is expected")
        if tok.kind == "word" and (tok.text == "NOT" or (tok.text.startswith("-") and len(tok.text) > 1)):
            if tok.text == "NOT":
                self.take()
            else:  # "-word": the same as NOT word
                self.toks[self.i] = _Tok("word", tok.text[1:], tok.at + 1)
            return Not(self.unary(prop, op))
        return self.primary(prop, op)

    def primary(self, prop: str, op: str) -> Node:
        tok = self.take()
        if tok.kind == "open":
            return self.group(prop, op, tok)
        if tok.kind == "close":
            raise KqlError(f"unexpected ')' at position {tok.at}")
        if tok.kind == "quoted":
            return Restriction(prop, op, tok.text, quoted=True)
        if tok.text in ("AND", "OR"):
            raise KqlError(f"{tok.text} at position {tok.at} has nothing before it")
        m = _PROPERTY.match(tok.text) if not prop else None
        if m is None:
            return Restriction(prop, op, tok.text)
        name, operator, rest = m.group(1).lower(), m.group(2), m.group(3)
        if rest:
            if name == "mtime" and operator in (":", "="):
                rest = self.phrase_keyword(rest)
            return Restriction(name, operator, rest)
        nxt = self.peek()
        if nxt is None or nxt.kind == "close":
            raise KqlError(f"{name}{operator} at position {tok.at} has no value")
        self.take()
        if nxt.kind == "open":
            return self.group(name, operator, nxt)
        return Restriction(name, operator, nxt.text, quoted=nxt.kind == "quoted")

    def phrase_keyword(self, first: str) -> str:
        """`mtime:last 7 days` unquoted (as the web client sends it): the words that continue a
        known keyword belong to the value."""
        value = first
        while (tok := self.peek()) is not None and tok.kind == "word":
            longer = f"{value} {tok.text}".lower()
            if not any(k.startswith(longer) for k in MTIME_KEYWORDS):
                break
            value = f"{value} {tok.text}"
            self.take()
        return value

    def group(self, prop: str, op: str, opened: _Tok) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise KqlError("the query nests too deeply")
        node = self.or_expr(prop, op)
        if self.peek() is None or self.take().kind != "close":
            raise KqlError(f"the '(' at position {opened.at} is not closed")
        self.depth -= 1
        return node


def _same_property(last: Node, part: Node) -> bool:
    """Whether `part` joins `last` (a restriction or an implicit OR of them) as an alternative."""
    if not isinstance(part, Restriction) or not part.prop:
        return False
    if isinstance(last, Or):
        return all(isinstance(p, Restriction) and p.prop == part.prop for p in last.parts)
    return isinstance(last, Restriction) and last.prop == part.prop


def parse(text: str) -> Node:
    if len(text) > MAX_QUERY_LENGTH:
        raise KqlError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(text.strip()).parse()
