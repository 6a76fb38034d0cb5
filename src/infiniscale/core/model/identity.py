"""Users, groups and the acting principal passed into every core call."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    email: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    role: str = "user"


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    members: tuple[str, ...] = field(default_factory=tuple)
