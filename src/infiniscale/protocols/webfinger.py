"""`/.well-known/webfinger` as oCIS answers it: which OpenID Connect issuer to log in with, and, once
logged in with a bearer token, which instance serves the user (the clients' discovery)."""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

from infiniscale.core.model.identity import User
from infiniscale.protocols.http import Request, respond

PATH = "/.well-known/webfinger"
ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"
INSTANCE_REL = "http://webfinger.owncloud/rel/server-instance"


async def webfinger(req: Request, issuer: str, base_url: str, user: User | None) -> None:
    await req.drain()
    resource = (parse_qs(req.query_string).get("resource") or [""])[-1]
    if not resource:
        await respond(req.send, 400, [("content-type", "text/plain")], b"missing resource parameter")
        return
    links = [{"rel": ISSUER_REL, "href": issuer}]
    if user is not None:
        links.append({"rel": INSTANCE_REL, "href": base_url, "titles": {"en": "oCIS Instance"}})
    await respond(req.send, 200, [("content-type", "application/jrd+json")],
                  orjson.dumps({"subject": resource, "links": links}))
