"""Live WebDAV properties: property name -> value rendered from a NodeInfo, in oCIS's formats."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache

from infiniscale.core import locks as locking
from infiniscale.core.model.media import mime_type
from infiniscale.core.model.nodes import FAVORITE_PREFIX, TAGS_KEY, NodeInfo
from infiniscale.core.spaces import MANAGE, WRITE
from infiniscale.core.thumbnails import previewable
from infiniscale.protocols.webdav.xml import DAV, NC, OC, OCS, escape


@dataclass(frozen=True)
class RenderContext:
    storage_id: str
    owner_username: str
    owner_display_name: str
    base_url: str
    quota_available: int = -3
    user_id: str = ""
    href_prefix: str = ""  # the URL path of the space root, for oc:downloadURL
    level: int = MANAGE  # the caller's access level in the space (core.spaces)
    share_types: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # node id -> OCS share types
    # a public link's root as its visitors see it: the root's node id and the oc:public-link-* values
    link_root: str = ""
    link_props: Mapping[str, str] = field(default_factory=dict)


@lru_cache(maxsize=8192)
def _http_date_seconds(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def http_date(ns: int) -> str:
    return _http_date_seconds(ns // 1_000_000_000)


def iso_date(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def permissions(node: NodeInfo, level: int = MANAGE) -> str:
    """oc:permissions as oCIS sends them for the caller's role in the space: managers (and the
    owner of a personal space) may also share, deny and purge; editors change; viewers only read."""
    if level >= MANAGE:
        return "RDNVCKZP" if node.is_folder else "RDNVWZP"
    if level >= WRITE:
        return "DNVCK" if node.is_folder else "DNVW"
    return ""


def resource_id(ctx: RenderContext, node: NodeInfo) -> str:
    return f"{ctx.storage_id}${node.space_id}!{node.id}"


def lockdiscovery(node_locks, root_href: str = "") -> str:
    parts = []
    for lock in node_locks:
        timeout = f"Second-{max(1, int((lock.expires_ns - time.time_ns()) / 1e9))}" if lock.expires_ns \
            else "Infinite"
        root = f"<d:lockroot><d:href>{root_href}</d:href></d:lockroot>" if root_href else ""
        parts.append(
            f"<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope><d:{lock.scope}/></d:lockscope>"
            f"<d:depth>{'infinity' if lock.depth == 'infinity' else '0'}</d:depth>"
            f"{lock.owner_xml}<d:timeout>{timeout}</d:timeout>"
            f"<d:locktoken><d:href>{escape(lock.token)}</d:href></d:locktoken>{root}</d:activelock>"
        )
    return "".join(parts)


def _checksums(node: NodeInfo) -> str | None:
    if node.is_folder or not node.checksums:
        return None
    cs = node.checksums
    values = " ".join(f"{algo.upper()}:{cs[algo]}" for algo in ("sha1", "md5", "adler32") if algo in cs)
    return f"<oc:checksum>{values}</oc:checksum>"


Renderer = Callable[[RenderContext, NodeInfo], str | None]

# the OCS permission bits of each link type, as oc:public-link-permission shows them
LINK_OCS_PERMISSIONS = {"view": 1, "upload": 5, "createOnly": 4, "edit": 15, "internal": 0}
PUBLIC_LINK_PROPS = ("public-link-item-type", "public-link-permission", "public-link-expiration",
                     "public-link-share-datetime", "public-link-share-owner")


def _link_prop(name: str) -> Renderer:
    return lambda ctx, n: ctx.link_props.get(name) if ctx.link_root and n.id == ctx.link_root else None

# Each renderer returns the inner XML of the property, or None when the node has no such property.
LIVE: dict[str, Renderer] = {
    f"{{{DAV}}}getetag": lambda ctx, n: n.etag,
    f"{{{DAV}}}getlastmodified": lambda ctx, n: http_date(n.mtime_ns),
    f"{{{DAV}}}creationdate": lambda ctx, n: None,
    f"{{{DAV}}}getcontentlength": lambda ctx, n: None if n.is_folder else str(n.size),
    f"{{{DAV}}}getcontenttype": lambda ctx, n: None if n.is_folder else escape(mime_type(n.name)),
    f"{{{DAV}}}resourcetype": lambda ctx, n: "<d:collection/>" if n.is_folder else "",
    f"{{{DAV}}}displayname": lambda ctx, n: escape(n.name),
    f"{{{DAV}}}lockdiscovery": lambda ctx, n: lockdiscovery(locking.live_locks(n)),
    f"{{{DAV}}}supportedlock": lambda ctx, n: (
        "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
        "<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
    ),
    f"{{{DAV}}}quota-used-bytes": lambda ctx, n: str(max(0, n.size)) if n.is_folder else None,
    f"{{{DAV}}}quota-available-bytes": lambda ctx, n: str(ctx.quota_available) if n.is_folder else None,
    f"{{{OC}}}id": lambda ctx, n: escape(resource_id(ctx, n)),
    f"{{{OC}}}fileid": lambda ctx, n: escape(resource_id(ctx, n)),
    f"{{{OC}}}spaceid": lambda ctx, n: escape(f"{ctx.storage_id}${n.space_id}"),
    f"{{{OC}}}file-parent": lambda ctx, n: (
        escape(f"{ctx.storage_id}${n.space_id}!{n.parent_id}") if n.parent_id else None),
    f"{{{OC}}}name": lambda ctx, n: escape(n.name),
    f"{{{OC}}}permissions": lambda ctx, n: permissions(n, ctx.level),
    f"{{{OC}}}size": lambda ctx, n: str(max(0, n.size)),
    f"{{{OC}}}checksums": lambda ctx, n: _checksums(n),
    f"{{{OC}}}favorite": lambda ctx, n: "1" if (FAVORITE_PREFIX + ctx.user_id) in n.props else "0",
    f"{{{OC}}}share-types": lambda ctx, n: "".join(f"<oc:share-type>{t}</oc:share-type>"
                                                   for t in ctx.share_types.get(n.id, ())),
    f"{{{OC}}}owner-id": lambda ctx, n: escape(ctx.owner_username),
    f"{{{OC}}}owner-display-name": lambda ctx, n: escape(ctx.owner_display_name),
    f"{{{OC}}}privatelink": lambda ctx, n: escape(f"{ctx.base_url}/f/{resource_id(ctx, n)}"),
    f"{{{OC}}}data-fingerprint": lambda ctx, n: "",
    # rendered with the entry's href (see RenderPlan); folders have none
    f"{{{OC}}}downloadURL": lambda ctx, n: None if n.is_folder else "",
    f"{{{OC}}}tags": lambda ctx, n: escape(n.props.get(TAGS_KEY, "")),
    f"{{{OCS}}}share-permissions": lambda ctx, n: "31" if n.is_folder else "19",
    f"{{{NC}}}has-preview": lambda ctx, n: "true" if not n.is_folder and previewable(mime_type(n.name)) else "false",
    # only on the root of a public link, for its visitors
    **{f"{{{OC}}}{name}": _link_prop(name) for name in PUBLIC_LINK_PROPS},
}

# allprop as oCIS answers it (quota properties are only sent when asked for)
ALLPROP = (
    f"{{{OC}}}id", f"{{{OC}}}fileid", f"{{{OC}}}spaceid", f"{{{OC}}}file-parent", f"{{{OC}}}name",
    f"{{{DAV}}}displayname", f"{{{DAV}}}getetag", f"{{{OC}}}permissions", f"{{{DAV}}}resourcetype",
    f"{{{OC}}}size", f"{{{DAV}}}getcontentlength", f"{{{DAV}}}getcontenttype", f"{{{DAV}}}getlastmodified",
    f"{{{OC}}}checksums", f"{{{OC}}}favorite", f"{{{DAV}}}lockdiscovery", f"{{{DAV}}}supportedlock",
)
# properties a client may not set
PROTECTED = frozenset(LIVE) - {f"{{{OC}}}favorite"}
