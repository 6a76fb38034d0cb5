"""OCS API envelope (v1/v2, XML or JSON) and the endpoints this stage serves:
cloud/capabilities, cloud/user, config."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import orjson

from infiniscale.core.model.identity import Group, User
from infiniscale.protocols.http import Request, respond

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=UTF-8"


def _xml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<element>{_xml_value(v)}</element>" for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return escape(str(value))


def wants_json(req: Request) -> bool:
    query = req.query_string
    if "format=json" in query:
        return True
    if "format=xml" in query:
        return False
    return "application/json" in (req.header("accept") or "")


def version_of(path: str) -> int:
    return 2 if path.startswith("/ocs/v2.php") else 1


async def reply(req: Request, data: Any, status: int = 200, message: str = "OK") -> None:
    """Success or failure in the OCS envelope. v1 answers HTTP 200 with statuscode 100 on success;
    v2 maps the status to HTTP."""
    v2 = version_of(req.scope["path"]) == 2
    ok = status < 300
    code = (200 if v2 else 100) if ok else status
    http_status = 200 if (ok or not v2) else v2_http_status(status)
    meta = {"status": "ok" if ok else "failure", "statuscode": code, "message": message,
            "totalitems": "", "itemsperpage": ""}
    if wants_json(req):
        body = orjson.dumps({"ocs": {"meta": meta, "data": data}})
        content_type = JSON_TYPE
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ocs><meta>{_xml_value(meta)}</meta>'
                f"<data>{_xml_value(data)}</data></ocs>").encode()
        content_type = XML_TYPE
    await respond(req.send, http_status, [("content-type", content_type)], body,
                  head_only=req.method == "HEAD")


def v2_http_status(code: int) -> int:
    """The HTTP status OCS v2 answers an error statuscode with (v1 always answers 200)."""
    special = {997: 401, 998: 404, 996: 500, 999: 500, 104: 403}
    if code in special:
        return special[code]
    if 101 <= code <= 199:
        return 400
    return code if 200 <= code <= 599 else 500


def user_document(user: User) -> dict[str, Any]:
    return {
        "id": user.username,
        "display-name": user.display_name,
        "email": user.email,
        "user-type": "member",
    }


def user_details(user: User) -> dict[str, Any]:
    """cloud/users/{id}: quota is not enforced yet, so it reads as unlimited."""
    return {
        "id": user.username,
        "enabled": "true",
        "quota": {"free": -3, "used": 0, "total": -3, "relative": 0, "definition": "default"},
        "email": user.email,
        "displayname": user.display_name,
        "display-name": user.display_name,
        "user-type": "member",
        "uidnumber": "",
        "gidnumber": "",
    }


def sharees_document(search: str, users: list[User], groups: list[Group]) -> dict[str, Any]:
    """OCS sharees: a user or group whose name (or a user's mail) is the search term itself is an
    exact match and listed apart from the others."""
    term = search.strip().casefold()

    def user_entry(user: User) -> dict[str, Any]:
        return {"label": user.display_name, "value": {"shareType": 0, "shareWith": user.username,
                                                      "shareWithAdditionalInfo": user.email, "userType": 0}}

    def group_entry(group: Group) -> dict[str, Any]:
        return {"label": group.name, "value": {"shareType": 1, "shareWith": group.name,
                                               "shareWithAdditionalInfo": ""}}

    exact_users = [u for u in users if term in (u.username.casefold(), u.email.casefold())]
    exact_groups = [g for g in groups if g.name.casefold() == term]
    return {"exact": {"users": [user_entry(u) for u in exact_users],
                      "groups": [group_entry(g) for g in exact_groups], "remotes": []},
            "users": [user_entry(u) for u in users if u not in exact_users],
            "groups": [group_entry(g) for g in groups if g not in exact_groups],
            "remotes": []}


def config_document(base_url: str) -> dict[str, Any]:
    return {"version": "1.7", "website": "Infinite Scale", "host": base_url, "contact": "", "ssl": "false"}
