"""Requests authenticated by a signed URL (core/signing.py): GET and HEAD of WebDAV paths and archives."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from infiniscale.core.model.identity import User
from infiniscale.core.signing import SigningKeys, valid
from infiniscale.protocols.http import Request

ALGO_MARK = "OC-Algo="


def is_signed(req: Request) -> bool:
    return "OC-Signature=" in req.query_string


def _urls_to_check(req: Request, base_url: str) -> list[str]:
    """The URL as the client saw it, up to `OC-Algo` (appended after signing): under the public
    base URL, and under the Host the request came to."""
    query = req.query_string
    cut = query.find("&" + ALGO_MARK)
    signed_query = query[:cut] if cut >= 0 else query.split(ALGO_MARK, 1)[0].rstrip("&")
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
    user = await run(directory.get_by_name, _params(req).get("OC-Credential", ""))
    if user is None:
        return None
    return user if await verify(req, keys, user, base_url, run) else None


def _params(req: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(req.query_string).items()}


async def verify(req: Request, keys: SigningKeys, user: User, base_url: str, run) -> bool:
    """Whether the request's URL is signed with `user`'s key, for this method, and not expired."""
    if req.method not in ("GET", "HEAD"):
        return False
    params = _params(req)
    verb = params.get("OC-Verb", "").upper()
    if verb != req.method and not (req.method == "HEAD" and verb == "GET"):
        return False
    key = await run(keys.existing_key, user.id)
    return await run(valid, _urls_to_check(req, base_url), params.get("OC-Signature", ""), key,
                     params.get("OC-Date", ""), params.get("OC-Expires", ""))
