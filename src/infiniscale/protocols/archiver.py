"""`GET /archiver?id=<resource id>&id=…[&output-format=zip|tar]` (or `path=` in the personal
space): files and folders as one streamed archive, with oCIS's limits (413 beyond
`FRONTEND_ARCHIVER_MAX_NUM_FILES` files or `FRONTEND_ARCHIVER_MAX_SIZE` bytes)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from infiniscale.core.archives import Entry, stream_tar, stream_zip
from infiniscale.core.files import Chain, FileService
from infiniscale.core.model.errors import InvalidArgument, NotFound, StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.sharing import LINK_USER_PREFIX
from infiniscale.protocols.http import Request, respond, respond_stream

PATH = "/archiver"
TYPES = {"zip": "application/zip", "tar": "application/x-tar"}


class ArchiveError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Archiver:
    def __init__(self, files: FileService, max_files: int, max_size: int) -> None:
        self.files = files
        self.max_files = max_files
        self.max_size = max_size

    def capability(self) -> dict:
        return {"enabled": True, "version": "2.0.0", "formats": ["tar", "zip"], "archiver_url": PATH,
                "max_num_files": str(self.max_files), "max_size": str(self.max_size)}

    async def __call__(self, req: Request, user: User) -> None:
        try:
            query = parse_qs(req.query_string)
            output = query.get("output-format", ["zip"])[0]
            if output not in TYPES:
                raise ArchiveError(400, "output-format must be zip or tar")
            chains = await self._selected(user, query.get("id", []), query.get("path", []))
            entries = await self._entries(chains)
        except ArchiveError as exc:
            await respond(req.send, exc.status, [("content-type", "text/plain")], str(exc).encode())
            return
        except NotFound:
            await respond(req.send, 404, [("content-type", "text/plain")], b"resource not found")
            return
        except StorageError as exc:
            await respond(req.send, 400, [("content-type", "text/plain")], str(exc).encode())
            return
        top = chains[0][-1]
        name = (top.name or "download") if len(chains) == 1 else "download"
        filename = f"{name}.{output}"
        headers = [("content-type", TYPES[output]),
                   ("content-disposition", f"attachment; filename*=UTF-8''{quote(filename)}; "
                                           f"filename=\"{quote(filename)}\"")]
        stream = stream_zip if output == "zip" else stream_tar
        await respond_stream(req.send, 200, headers, stream(entries, self.files.open_content))

    async def _selected(self, user: User, ids: list[str], paths: list[str]) -> list[Chain]:
        if not ids and not paths:
            raise ArchiveError(400, "no id or path given")
        chains = []
        for value in ids:
            try:
                rid = ResourceId.parse(value)
            except InvalidArgument:
                raise ArchiveError(400, f"invalid id {value!r}") from None
            chains.append(await self.files.resolve_id(user, rid, []))
        if paths:
            if user.id.startswith(LINK_USER_PREFIX):
                raise ArchiveError(400, "a public link names its files by id")
            space_id = await self.files.ensure_personal_space(user)
            for value in paths:
                chains.append(await self.files.resolve(user, space_id, [n for n in value.split("/") if n]))
        for chain in chains:
            if not await self.files.allows(user, chain, "initiate_file_download"):
                raise ArchiveError(403, "no permission to download")
        return chains

    async def _entries(self, chains: list[Chain]) -> list[Entry]:
        """Every file and folder below the selected items, within the limits (413 beyond them)."""
        entries: list[Entry] = []
        totals = [0, 0]  # files, bytes

        async def walk(node: NodeInfo, path: str) -> None:
            entries.append(Entry(path, node))
            if not node.is_folder:
                totals[0] += 1
                totals[1] += node.size
                if totals[0] > self.max_files or totals[1] > self.max_size:
                    raise ArchiveError(413, f"the archive would exceed {self.max_files} files or "
                                            f"{self.max_size} bytes")
                return
            children: list[NodeInfo] = []
            async for batch in self.files.children(node.space_id, node):
                children.extend(batch)
            for child in sorted(children, key=lambda c: c.name):
                await walk(child, f"{path}/{child.name}")

        for chain in chains:
            top = chain[-1]
            await walk(top, top.name or "download")
        return entries
