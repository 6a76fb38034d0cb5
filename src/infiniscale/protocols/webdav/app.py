"""WebDAV dispatch: URL -> target, method -> handler, errors -> Sabre bodies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from infiniscale.core.history import History
from infiniscale.core.model.errors import StorageError
from infiniscale.core.model.identity import User
from infiniscale.protocols.http import BodyTooLarge, ClientDisconnected, Request, respond
from infiniscale.protocols.webdav import chunking, history, lock, propfind, report, structure, transfer, tus, xml
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError, status_of
from infiniscale.protocols.webdav.routing import PREFIXES, Target, match

log = logging.getLogger("infiniscale.webdav")

Handler = Callable[[DavContext, Request, Target, User], Awaitable[None]]
ROOTS = tuple(prefix.rstrip("/").encode() for prefix, _kind in PREFIXES) + tuple(
    prefix.rstrip("/").encode() for prefix in chunking.UPLOAD_PREFIXES) + tuple(p.encode() for p in history.PREFIXES)
ALLOW = "OPTIONS, LOCK, GET, HEAD, POST, DELETE, PROPPATCH, COPY, MOVE, UNLOCK, PROPFIND, MKCOL, REPORT, SEARCH, PUT"


SPACES_ROOTS = ("/dav/spaces", "/remote.php/dav/spaces")


async def options(dav: DavContext, req: Request, target: Target, user: User) -> None:
    await respond(req.send, 204, [
        ("allow", ALLOW), ("dav", "1, 2"), ("ms-author-via", "DAV"),
        ("tus-resumable", "1.0.0"), ("tus-version", "1.0.0"),
        ("tus-extension", tus.EXTENSIONS),
        ("tus-checksum-algorithm", tus.CHECKSUM_ALGORITHMS),
        ("accept-ranges", "bytes"),
    ])


async def put(dav: DavContext, req: Request, target: Target, user: User) -> None:
    if not await chunking.put_v1(dav, req, target, user):
        await transfer.put(dav, req, target, user)


HANDLERS: dict[str, Handler] = {
    "OPTIONS": options,
    "PROPFIND": propfind.propfind,
    "PROPPATCH": propfind.proppatch,
    "GET": transfer.get,
    "HEAD": transfer.get,
    "PUT": put,
    "POST": tus.create,
    "REPORT": report.report,
    "MKCOL": structure.mkcol,
    "DELETE": structure.delete,
    "COPY": structure.copy_or_move,
    "MOVE": structure.copy_or_move,
    "LOCK": lock.lock,
    "UNLOCK": lock.unlock,
}


async def jail_refused(dav: DavContext, req: Request, target: Target, user: User) -> None:
    raise DavError(405, "the Shares folder cannot be changed", "Sabre\\DAV\\Exception\\MethodNotAllowed")


JAIL_HANDLERS: dict[str, Handler] = {"OPTIONS": options, "PROPFIND": propfind.jail_propfind}


async def send_error(req: Request, status: int, exception: str, message: str) -> None:
    await respond(req.send, status, [("content-type", "application/xml; charset=utf-8")],
                  xml.sabre_error(exception, message), head_only=req.method == "HEAD")


class WebDavApp:
    def __init__(self, dav: DavContext, versions_and_trash: History | None = None) -> None:
        self.dav = dav
        self.history = versions_and_trash or History(dav.files)

    @staticmethod
    def handles(raw_path: bytes) -> bool:
        return raw_path.split(b"?", 1)[0].startswith(ROOTS)

    async def data(self, req: Request) -> None:
        """TUS upload URLs (`/data/<upload id>`)."""
        await tus.data(self.dav, req)

    async def __call__(self, req: Request) -> None:
        user = req.user
        assert user is not None
        started = False
        try:
            if chunking.handles(req.raw_path):
                started = True
                await chunking.uploads(self.dav, req, user)
                return
            if history.handles(req.raw_path.split(b"?", 1)[0].decode("latin-1")):
                started = True
                await history.dispatch(self.dav, self.history, req, user)
                return
            bare = req.raw_path.split(b"?", 1)[0].decode("latin-1").rstrip("/")
            if req.method == "REPORT" and bare in SPACES_ROOTS:  # a search across all spaces
                started = True
                await report.report(self.dav, req, None, user)
                return
            target = match(req.raw_path, user)
            if target is None:
                raise DavError(404, "not a WebDAV path")
            target = await self.dav.rewrite(target, user)
            handler = HANDLERS.get(req.method)
            if target.kind == "jail":  # the Shares space itself: a listing, nothing to change
                handler = JAIL_HANDLERS.get(req.method, jail_refused)
            if handler is None:
                raise DavError(405, f"method {req.method} is not supported",
                               "Sabre\\DAV\\Exception\\MethodNotAllowed")
            started = True
            await handler(self.dav, req, target, user)
        except DavError as exc:
            await req.drain()
            await send_error(req, exc.status, exc.exception, exc.message)
        except StorageError as exc:
            status, exception = status_of(exc)
            await req.drain()
            await send_error(req, status, exception, str(exc))
        except BodyTooLarge:
            await send_error(req, 413, "Sabre\\DAV\\Exception\\RequestEntityTooLarge", "request body too large")
        except (ClientDisconnected, transfer.CorruptContent):
            return  # a download cut off on purpose ends without a proper close: the client sees it fail
        except OSError as exc:
            log.exception("storage failure during %s (handler started: %s)", req.method, started)
            await send_error(req, 500, "Sabre\\DAV\\Exception", f"storage failure: {exc.strerror or 'error'}")
