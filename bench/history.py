"""DELETE to the trash bin and restore from it, of a folder of 10 files against one of 10 000: both
must cost the same (a deleted folder is moved, never walked). Median of --reps rounds each, same
server, same run; every restore is checked (all files listed again) and the ratio is small-folder
time / large-folder time (1.0: independent of the size).

Usage: python bench/history.py [--small 10] [--large 10000] [--reps 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import servers
from benchlib.dav import Conn, basic_auth

AUTH = basic_auth("einstein", "relativity")


def fill(base: str, folder: str, count: int) -> None:
    Conn(base, AUTH).mkcol(folder)

    def put(first: int) -> None:
        conn = Conn(base, AUTH)
        for i in range(first, count, 16):
            if conn.request("PUT", f"{folder}/f{i:05d}.txt", b"x").status != 201:
                raise RuntimeError("PUT failed")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(16)))


def delete_and_restore(base: str, trash: str, folder: str, count: int) -> tuple[float, float]:
    files, bin_ = Conn(base, AUTH), Conn(trash, AUTH)
    started = time.perf_counter()
    if files.request("DELETE", folder).status != 204:
        raise RuntimeError("DELETE failed")
    deleted = time.perf_counter() - started
    listing = bin_.request("PROPFIND", "", None, {"Depth": "1"}).body.decode()
    key = re.search(rf"<d:href>[^<]*/([^/<]+)/</d:href><d:propstat><d:prop><oc:trashbin-original-filename>"
                    rf"{folder}<", listing).group(1)
    started = time.perf_counter()
    reply = bin_.request("MOVE", key, None, {"Destination": files.url(folder)})
    restored = time.perf_counter() - started
    if reply.status != 201:
        raise RuntimeError(f"restore failed: HTTP {reply.status}")
    back = files.request("PROPFIND", folder, None, {"Depth": "1"}).body.count(b"<d:response>")
    if back != count + 1:
        raise RuntimeError(f"restored folder lists {back - 1} entries, not {count}")
    return deleted, restored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        workdir = Path(tmp) / "infiniscale"
        workdir.mkdir()
        server = servers.start_infiniscale(workdir, servers.default_infiniscale_bin())
        try:
            base = server.dav_root
            trash = base.replace("/dav/files/", "/dav/trash-bin/")
            fill(base, "small", args.small)
            fill(base, "large", args.large)
            times: dict[str, list[tuple[float, float]]] = {"small": [], "large": []}
            for _ in range(args.reps):
                for name, count in (("small", args.small), ("large", args.large)):
                    times[name].append(delete_and_restore(base, trash, name, count))
        finally:
            server.stop()
    print(f"DELETE to the trash and restore (MOVE from the trash bin), median of {args.reps}:")
    for what, index in (("DELETE", 0), ("restore", 1)):
        small = statistics.median(t[index] for t in times["small"]) * 1000
        large = statistics.median(t[index] for t in times["large"]) * 1000
        print(f"  {what:8s} {args.small} files {small:.1f} ms, {args.large} files {large:.1f} ms: "
              f"ratio {small / large:.2f} (1.0: independent of the folder size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
