"""Previews of a 24-megapixel JPEG (6000x4000, quality 90) through the server: time per preview
(median of --reps, each a size not rendered before, so nothing comes from the cache), the server's
peak RSS growth while rendering (the first preview also loads libvips; both are shown), and the
request rate of one cached preview fetched by 16 clients at once. Every image is checked to have
the size asked for.

Usage: python bench/previews.py [--reps 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips
from benchlib import procs, servers
from benchlib.dav import Conn, basic_auth

AUTH = basic_auth("einstein", "relativity")


def photo() -> bytes:
    noise = pyvips.Image.gaussnoise(6000, 4000, mean=128, sigma=40)
    return noise.bandjoin([noise.rot180(), noise.flip("horizontal")]).cast("uchar").jpegsave_buffer(Q=90)


def tree_rss(root: int) -> int:
    snap = procs.snapshot()
    return sum(snap[p].rss_bytes for p in procs.tree(root, snap))


class Peak:
    """The highest RSS of the server's process tree while it runs (sampled every 10 ms)."""

    def __init__(self, root: int) -> None:
        self.root, self.value, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.value = max(self.value, tree_rss(self.root))
            time.sleep(0.01)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.value, tree_rss(self.root))


def preview(conn: Conn, size: int) -> float:
    started = time.perf_counter()
    reply = conn.raw("GET", f"{conn.prefix}big.jpg?preview=1&x={size}&y={size}", None, {})
    took = time.perf_counter() - started
    if reply.status != 200:
        raise RuntimeError(f"preview failed: HTTP {reply.status}")
    image = pyvips.Image.new_from_buffer(reply.body, "")
    if (image.width, image.height) != (256, 256):
        raise RuntimeError(f"preview is {image.width}x{image.height}, not 256x256")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    data = photo()
    with tempfile.TemporaryDirectory(prefix="bench-previews-") as tmp:
        workdir = Path(tmp) / "infiniscale"
        workdir.mkdir()
        # one worker: the growth measured is that of the process that renders
        server = servers.start_infiniscale(workdir, servers.default_infiniscale_bin(),
                                           extra_env={"INFINISCALE_HTTP_WORKERS": "1",
                                                      "THUMBNAILS_RESOLUTIONS": "256x256,1920x1080"})
        try:
            conn = Conn(server.dav_root, AUTH)
            if conn.request("PUT", "big.jpg", data).status != 201:
                raise RuntimeError("upload failed")
            time.sleep(1)  # let the indexer settle
            before = tree_rss(server.pid)
            peak = Peak(server.pid)
            first = preview(conn, 200)
            first_growth = peak.stop() - before
            before = tree_rss(server.pid)
            peak = Peak(server.pid)
            times = [preview(conn, 201 + i) for i in range(args.reps)]
            growth = peak.stop() - before

            def fetch(count: int) -> None:
                c = Conn(server.dav_root, AUTH)
                for _ in range(count):
                    if c.raw("GET", f"{c.prefix}big.jpg?preview=1&x=200&y=200", None, {}).status != 200:
                        raise RuntimeError("cached preview failed")

            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(fetch, [args.requests // 16] * 16))
            rate = (args.requests // 16 * 16) / (time.perf_counter() - started)
        finally:
            server.stop()
    print(f"previews of a 24 MP JPEG (6000x4000, {len(data) / 1e6:.1f} MB) to 256x256:")
    print(f"  first preview {first * 1000:.0f} ms, RSS growth {first_growth / 2**20:.1f} MiB (loads libvips)")
    print(f"  next previews median {statistics.median(times) * 1000:.0f} ms (bar 1000), "
          f"peak RSS growth {growth / 2**20:.1f} MiB (bar 50)")
    print(f"  cached preview, 16 clients: {rate:.0f} requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
