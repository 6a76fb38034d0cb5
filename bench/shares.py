"""Reaching a folder through Shares/ against the owner's own path: PROPFIND Depth 1 on a folder of
1 000 entries, as the owner at /remote.php/dav/files/<owner>/<folder> and as the recipient at
/remote.php/dav/files/<recipient>/Shares/<folder>, same server, same run, alternating. The ratio is
owner time / recipient time (1.0: going through the share costs nothing); the bar is 0.8.

Usage: python bench/shares.py [--entries 1000] [--reps 25]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import servers
from benchlib.dav import Conn, basic_auth

PROPFIND = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            "<d:resourcetype/><d:getcontentlength/><d:getetag/><d:getlastmodified/><oc:id/><oc:fileid/>"
            "<oc:permissions/><oc:size/></d:prop></d:propfind>")


def timed_propfind(conn: Conn, path: str, entries: int) -> float:
    started = time.perf_counter()
    reply = conn.request("PROPFIND", path, PROPFIND.encode(), {"Depth": "1", "Content-Type": "application/xml"})
    elapsed = time.perf_counter() - started
    if reply.status != 207 or reply.body.count(b"<d:response>") != entries + 1:
        raise RuntimeError(f"PROPFIND {path}: HTTP {reply.status}, {reply.body.count(b'<d:response>')} responses")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shares-") as tmp:
        workdir = Path(tmp) / "infiniscale"
        workdir.mkdir()
        server = servers.start_infiniscale(workdir, servers.default_infiniscale_bin())
        try:
            base = server.dav_root.split("/remote.php/")[0]
            owner = Conn(f"{base}/remote.php/dav/files/einstein/", basic_auth("einstein", "relativity"))
            recipient = Conn(f"{base}/remote.php/dav/files/marie/", basic_auth("marie", "radioactivity"))
            owner.mkcol("listing")
            for i in range(args.entries):
                if owner.request("PUT", f"listing/e{i:05d}.txt", b"x").status not in (201, 204):
                    raise RuntimeError("PUT failed")
            made = owner.raw("POST", "/ocs/v1.php/apps/files_sharing/api/v1/shares",
                             b"path=%2Flisting&shareType=0&shareWith=marie&permissions=15",
                             {"Content-Type": "application/x-www-form-urlencoded"})
            if b"<statuscode>100</statuscode>" not in made.body:
                raise RuntimeError(f"share failed: {made.body[:300]!r}")
            timed_propfind(owner, "listing", args.entries)  # warm-up, untimed
            timed_propfind(recipient, "Shares/listing", args.entries)
            own, shared = [], []
            for _ in range(args.reps):
                own.append(timed_propfind(owner, "listing", args.entries))
                shared.append(timed_propfind(recipient, "Shares/listing", args.entries))
            owner.close()
            recipient.close()
        finally:
            server.stop()
    own_ms, shared_ms = statistics.median(own) * 1000, statistics.median(shared) * 1000
    print(f"PROPFIND Depth 1, {args.entries} entries, median of {args.reps}:")
    print(f"  owner's path {own_ms:.1f} ms, through Shares/ {shared_ms:.1f} ms: ratio {own_ms / shared_ms:.2f} "
          "(bar 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
