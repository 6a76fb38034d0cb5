"""Requests authenticated by a signed URL (core/signing.py): GET and HEAD of WebDAV paths and archives."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infiniscale.core.model.identity import User
from infiniscale.core.signing import SigningKeys, valid
from infiniscale.protocols.http import Request

ALGO_MARK = "OC-Algo="


def is_signed(req: Request) -> bool:
    return "OC-Signature=" in req.query_string


def _split(query: str) -> tuple[str, dict[str, str]] | None:
    """(the signed part of the query, the OC-* parameters) of `<signed part>&OC-Algo=…&OC-Signature=…`,
    or None for any other shape. Only the signed part counts: a parameter appended after the
    signature (another `id=` for the archiver, a later `OC-Expires`) or an OC-* parameter given twice
    would change what the URL grants without breaking its signature."""
    cut = query.find("&" + ALGO_MARK)
    if cut < 0:
        return None
    tail = parse_qsl(query[cut + 1:], keep_blank_values=True)
    if [name for name, _ in tail] != ["OC-Algo", "OC-Signature"]:
        return None
    signed = query[:cut]
    params = [(name, value) for name, value in parse_qsl(signed, keep_blank_values=True) if name.startswith("OC-")]
    names = [name for name, _ in params]
    if len(names) != len(set(names)):
        return None
    return signed, {**dict(params), "OC-Signature": tail[1][1]}


def _urls_to_check(req: Request, signed_query: str, base_url: str) -> list[str]:
    """The URL as the client saw it, up to `OC-Algo` (appended after signing): under the public
    base URL, and under the Host the request came to."""
    path = req.raw_path.split(b"?", 1)[0].decode("latin-1")
    origins = {base_url.rstrip("/")}
    host = req.header("host")
    if host:
        origins |= {f"https://{host}", f"http://{host}"}
    prefix = urlsplit(base_url).path.rstrip("/")
    return [f"{origin}{path if not prefix or path.startswith(prefix) else prefix + path}?{signed_query}"
            for origin in origins]


async def authenticate(req: Request, keys: SigningKeys, directory: Any, base_url: str, run) -> User | None:
    """The user named by OC-Credential, if the URL carries a valid signature of theirs."""
    parts = _split(req.query_string)
    if parts is None:
        return None
    user = await run(directory.get_by_name, parts[1].get("OC-Credential", ""))
    if user is None:
        return None
    return user if await verify(req, keys, user, base_url, run) else None


async def verify(req: Request, keys: SigningKeys, user: User, base_url: str, run) -> bool:
    """Whether the request's URL is signed with `user`'s key, for this method, and not expired."""
    parts = _split(req.query_string)
    if req.method not in ("GET", "HEAD") or parts is None:
        return False
    signed_query, params = parts
    verb = params.get("OC-Verb", "").upper()
    if verb != req.method and not (req.method == "HEAD" and verb == "GET"):
        return False
    key = await run(keys.existing_key, user.id)
    return await run(valid, _urls_to_check(req, signed_query, base_url), params.get("OC-Signature", ""), key,
                     params.get("OC-Date", ""), params.get("OC-Expires", ""))
