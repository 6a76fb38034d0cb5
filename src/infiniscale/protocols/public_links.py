"""Who comes through a public link (`/dav/public-files/<token>/…`): the link's password by HTTP
Basic with the user name `public`, checked against its hash; too many wrong passwords lock the
link for a while (per link, in every process). The requests then act as the link's own user."""

from __future__ import annotations

import base64
import binascii

from infiniscale.core.files import FileService
from infiniscale.core.loginguard import LoginGuard
from infiniscale.core.model.errors import NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.sharing import link_user
from infiniscale.core.signing import SigningKeys
from infiniscale.protocols import ocs, signed_urls
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import xml

PREFIXES = ("/dav/public-files/", "/remote.php/dav/public-files/")
CHALLENGE = 'Basic realm="owncloud", charset="UTF-8"'


def handles(path: str) -> bool:
    return path.startswith(PREFIXES)


def token_of(path: str) -> str:
    for prefix in PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):].split("/", 1)[0]
    return ""


def basic_password(header: str | None) -> str | None:
    """The password of `Basic public:<password>`, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return password if sep and name == "public" else None


async def authenticate(req: Request, files: FileService, guard: LoginGuard | None,
                       keys: SigningKeys | None = None, base_url: str = "") -> User | None:
    """The link's user, or None after answering the request (404 unknown link, 401 password).
    A URL signed with the link's signing key needs no password."""
    token = token_of(req.scope["path"])
    try:
        link = await files.link(token)
    except NotFound:
        await _refuse(req, 404, "Sabre\\DAV\\Exception\\NotFound", "Link not found")
        return None
    if link.link_type == "internal":
        await _refuse(req, 401, "Sabre\\DAV\\Exception\\NotAuthenticated", "Internal links need a login")
        return None
    user = link_user(link)
    if keys is not None and signed_urls.is_signed(req) and await signed_urls.verify(req, keys, user, base_url,
                                                                                    files._run):
        return user
    if link.password_hash:
        account = f"public-link-{token}"
        if guard is not None and await files._run(guard.locked, account):
            await _refuse(req, 429, "Sabre\\DAV\\Exception\\TooManyRequests",
                          "too many wrong passwords for this link, try again later")
            return None
        password = basic_password(req.header("authorization"))
        if password is None or not await files._run(files.sharing.passwords.verify, link, password):
            if password is not None and guard is not None:
                await files._run(guard.failed, account)
            await _refuse(req, 401, "Sabre\\DAV\\Exception\\NotAuthenticated", "No valid password for this link")
            return None
    return user


async def link_for_signing(req: Request, files: FileService, token: str) -> User | None:
    """The link a signing-key request names (`?public-token=`), if its password (if any) is given."""
    try:
        link = await files.link(token)
    except NotFound:
        return None
    if link.password_hash:
        password = basic_password(req.header("authorization"))
        if password is None or not await files._run(files.sharing.passwords.verify, link, password):
            return None
    return link_user(link)


async def _refuse(req: Request, status: int, exception: str, message: str) -> None:
    await req.drain()
    headers = [("content-type", "application/xml; charset=utf-8")]
    if status == 401:
        headers.append(("www-authenticate", CHALLENGE))
    await respond(req.send, status, headers, xml.sabre_error(exception, message), head_only=req.method == "HEAD")


TOKENINFO = "apps/files_sharing/api/v1/tokeninfo/"


async def tokeninfo(req: Request, endpoint: str, files: FileService, base_url: str) -> None:
    """What the browser needs to know about a link before asking for its password
    (`tokeninfo/unprotected/<token>`), and with the password (`tokeninfo/protected/<token>`)."""
    kind, _, token = endpoint[len(TOKENINFO):].partition("/")
    try:
        link = await files.link(token)
    except NotFound:
        await ocs.reply(req, None, 404, "token not found")
        return
    info: dict = {"token": token, "link_url": f"{base_url}/s/{token}",
                  "password_protected": bool(link.password_hash), "alias_link": link.link_type == "internal"}
    reveal = not link.password_hash
    if kind == "protected" and link.password_hash:
        password = basic_password(req.header("authorization"))
        if password is None or not await files._run(files.sharing.passwords.verify, link, password):
            await ocs.reply(req, None, 401, "wrong password")
            return
        reveal = True
    elif kind not in ("protected", "unprotected"):
        await ocs.reply(req, None, 404, "Not found")
        return
    if reveal and link.link_type != "internal":
        storage_id = files.storage_id_of(link.space_id)
        info.update({"id": f"{storage_id}${link.space_id}!{link.node_id}", "storage_id": storage_id,
                     "space_id": link.space_id, "opaque_id": link.node_id, "path": "/"})
    await ocs.reply(req, info)
