"""Search latency, at two levels:

1. The index: 100 000 files (names of 1-3 words, a number and an extension; every 50th with 80-200
   words of text), queried the way the web client does (`name:"*word*"`, content words, a typo),
   p50 and p99 over --queries queries of each kind. Every query's hits are checked to contain a
   document that should match.
2. Through the server: --files real files uploaded to infiniscale, indexed from its events, then
   REPORT oc:search-files as the web client sends it (limit 8 and 200), p50 and p99; each answer is
   checked to list the expected files.

Usage: python bench/search.py [--docs 100000] [--queries 200] [--files 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import servers
from benchlib.dav import Conn, basic_auth

from infiniscale.core.ports.search import IndexDoc, Visibility
from infiniscale.core.search import compile_query
from infiniscale.drivers.search_tantivy import TantivyIndex

AUTH = basic_auth("einstein", "relativity")
SPACE = "space-1"
EXTENSIONS = ("txt", "pdf", "docx", "odt", "png", "jpg", "xlsx", "md")


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return sorted({"".join(rng.choice(letters) for _ in range(rng.randint(5, 10))) for _ in range(size)})


def build(index: TantivyIndex, rng: random.Random, words: list[str], count: int) -> list[IndexDoc]:
    docs = []
    for i in range(count):
        name = " ".join(rng.sample(words, rng.randint(1, 3))) + f" {i}.{rng.choice(EXTENSIONS)}"
        content = " ".join(rng.choices(words, k=rng.randint(80, 200))) if i % 50 == 0 else ""
        docs.append(IndexDoc(space_id=SPACE, node_id=f"n{i}", parent_id=SPACE, ancestors=(SPACE, f"n{i}"),
                             name=name, kind="file", media_type="text/plain", media_groups=("document",),
                             mtime_ns=i, size=i, content=content))
    for start in range(0, count, 10_000):
        index.upsert(docs[start:start + 10_000])
    index.commit()
    return docs


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms"


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def index_level(tmp: Path, count: int, queries: int) -> None:
    rng = random.Random(42)
    words = vocabulary(rng)
    index = TantivyIndex(str(tmp / "index"))
    started = time.perf_counter()
    docs = build(index, rng, words, count)
    built = time.perf_counter() - started
    size = sum(f.stat().st_size for f in (tmp / "index").iterdir() if f.is_file()) / 2**20
    print(f"index of {count} files: built in {built:.1f} s, {size:.1f} MiB")
    visible = Visibility((SPACE,))
    with_content = [d for d in docs if d.content]
    kinds = {
        "name:\"*word*\"": lambda d: (f'name:"*{d.name.split()[0][1:-1]}*"', d),
        "content:word": lambda d: (f"content:{d.content.split()[rng.randrange(80)]}", d),
        "name typo": lambda d: (typo(d.name.split()[0], rng), d),
        "web (name OR content)": lambda d: (f'(name:"*{d.name.split()[0]}*" OR content:"{d.name.split()[0]}")', d),
    }
    for label, make in kinds.items():
        samples = []
        for _ in range(queries):
            doc = rng.choice(with_content if label.startswith("content") else docs)
            text, expected = make(doc)
            started = time.perf_counter()
            hits, _total = index.search(compile_query(text), visible, 200)
            samples.append(time.perf_counter() - started)
            if expected.node_id not in {h.node_id for h in hits} and len(hits) < 200:
                raise RuntimeError(f"{text!r} did not find {expected.name!r}")
        print(f"  {label:24s} {percentiles(samples)}")


def report_body(pattern: str, limit: int) -> bytes:
    return ('<?xml version="1.0"?><oc:search-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            '<oc:fileid/><oc:permissions/><d:getetag/></d:prop><oc:search>'
            f'<oc:pattern>{pattern}</oc:pattern><oc:limit>{limit}</oc:limit></oc:search></oc:search-files>'
            ).encode()


def server_level(tmp: Path, files: int, queries: int) -> None:
    rng = random.Random(7)
    words = vocabulary(rng, 300)
    names = [f"{rng.choice(words)} {rng.choice(words)} {i}.txt" for i in range(files)]
    (tmp / "infiniscale").mkdir()
    server = servers.start_infiniscale(tmp / "infiniscale", servers.default_infiniscale_bin())
    try:
        base = server.dav_root
        Conn(base, AUTH).mkcol("s")

        def put(first: int) -> None:
            conn = Conn(base, AUTH)
            for i in range(first, files, 16):
                body = f"{names[i]} {' '.join(rng.choices(words, k=50))}".encode()
                if conn.request("PUT", f"s/{names[i]}", body).status != 201:
                    raise RuntimeError("PUT failed")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(16)))
        spaces = Conn(base.split("/remote.php/")[0] + "/dav/spaces/", AUTH)
        last = names[-1].split()[0]
        deadline = time.monotonic() + 120
        while last.encode() not in spaces.request("REPORT", "", report_body(f'name:"*{names[-1]}*"', 8)).body:
            if time.monotonic() > deadline:
                raise RuntimeError("the uploads were not indexed within 2 minutes")
            time.sleep(0.2)
        for limit in (8, 200):
            samples = []
            for _ in range(queries):
                word = rng.choice(words)
                started = time.perf_counter()
                reply = spaces.request("REPORT", "", report_body(f'(name:"*{word}*" OR content:"{word}")', limit))
                samples.append(time.perf_counter() - started)
                expected = sum(1 for n in names if word in n)
                listed = reply.body.count(b"<d:response>")
                if reply.status != 207 or listed < min(limit, expected):
                    raise RuntimeError(f"REPORT for {word!r} listed {listed}, expected at least {min(limit, expected)}")
            print(f"  REPORT limit {limit:3d} on {files} files: {percentiles(samples)}")
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        print("search, index level:")
        index_level(Path(tmp), args.docs, args.queries)
        print("search, through the server (web client queries):")
        server_level(Path(tmp), args.files, args.queries // 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
