"""The browser app: its static files (plain ES modules, nothing to build), `/config.json` as oCIS
serves it, and the app's page for every address the app itself routes (`/files/...`, `/s/<token>`)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

import orjson

from infiniscale.protocols.http import Request, respond

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
ASSETS = "/assets/"
# the app's own addresses: a reload or a shared link there gets the app, which reads the path
APP_ROUTES = ("/files", "/spaces", "/shares", "/trash", "/search", "/s/", "/settings")
APP_PAGES = ("/", "/index.html", "/oidc-callback.html", "/oidc-silent-redirect.html")
# only this origin's scripts and styles; previews are blobs; no framing (clickjacking)
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'")
HEADERS = [("content-security-policy", POLICY), ("x-content-type-options", "nosniff"),
           ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _load(path: Path) -> Asset:
    body = path.read_bytes()
    kind = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
            ".json": "application/json"}.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
        "application/octet-stream"
    if kind.startswith("text/") or kind.endswith(("json", "xml")):
        kind += "; charset=utf-8"
    return Asset(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


class WebApp:
    def __init__(self, base_url: str, issuer: str, client_id: str, root: Path = WEB_ROOT) -> None:
        # read once: a handful of small files, served from memory with an ETag
        self.assets = {"/assets/" + p.relative_to(root / "assets").as_posix(): _load(p)
                       for p in sorted((root / "assets").rglob("*")) if p.is_file()}
        self.page = _load(root / "index.html")
        config = {
            "server": base_url,
            "theme": "",
            "openIdConnect": {"metadata_url": f"{issuer}/.well-known/openid-configuration", "authority": issuer,
                              "client_id": client_id, "response_type": "code",
                              "scope": "openid profile email offline_access"},
            "options": {"contextHelpers": False, "upload": {"companionUrl": ""}},
            "apps": ["files", "search", "text-editor", "preview"],
        }
        self.config = Asset(orjson.dumps(config), "application/json; charset=utf-8",
                            '"' + hashlib.sha256(orjson.dumps(config)).hexdigest()[:20] + '"')

    @staticmethod
    def handles(path: str) -> bool:
        return path in APP_PAGES or path == "/config.json" or path.startswith(ASSETS) or \
            any(path == route.rstrip("/") or path.startswith(route.rstrip("/") + "/") for route in APP_ROUTES)

    async def __call__(self, req: Request) -> None:
        path: str = req.scope["path"]
        if req.method not in ("GET", "HEAD"):
            await req.drain()
            await respond(req.send, 405, [("content-type", "text/plain"), ("allow", "GET, HEAD")],
                          b"method not allowed")
            return
        if path == "/config.json":
            asset: Asset | None = self.config
        elif path.startswith(ASSETS):
            asset = self.assets.get(path)
        else:
            asset = self.page
        if asset is None:
            await respond(req.send, 404, [("content-type", "text/plain")], b"not found")
            return
        headers = [("content-type", asset.content_type), ("etag", asset.etag), ("cache-control", "no-cache"),
                   *HEADERS]
        if asset.etag in (req.header("if-none-match") or ""):
            await respond(req.send, 304, headers, b"")
            return
        await respond(req.send, 200, headers, asset.body, head_only=req.method == "HEAD")
