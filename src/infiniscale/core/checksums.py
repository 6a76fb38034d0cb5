"""Content checksums computed while streaming: SHA1, MD5 and Adler-32, as oCIS stores them."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from infiniscale.core.model.errors import InvalidArgument

ALGORITHMS = ("sha1", "md5", "adler32")
Buffer = bytes | bytearray | memoryview
# hashlib and zlib release the GIL on large buffers, so the three run truly in parallel.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="checksum")


class MultiHasher:
    def __init__(self) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._adler = 1

    def _adler_update(self, data: bytes | memoryview) -> None:
        self._adler = zlib.adler32(data, self._adler)

    def update(self, data: Buffer, also: Callable[[], object] | None = None) -> None:
        """Hashes one buffer; large ones are hashed by three threads at once. `also` (e.g. the write
        of the same buffer) runs alongside."""
        self.update_parts([data], also)

    def update_parts(self, parts: Sequence[Buffer], also: Callable[[], object] | None = None) -> None:
        """`update` for consecutive buffers: a request body's chunks as they came, hashed where they
        lie instead of copied into one buffer first."""
        if sum(len(p) for p in parts) < 256 * 1024:
            for hash_update in (self._sha1.update, self._md5.update, self._adler_update):
                self._each(hash_update, parts)
            if also is not None:
                also()
            return
        md5 = _pool.submit(self._each, self._md5.update, parts)
        adler = _pool.submit(self._each, self._adler_update, parts)
        extra = _pool.submit(also) if also is not None else None
        self._each(self._sha1.update, parts)
        md5.result()
        adler.result()
        if extra is not None:
            extra.result()

    @staticmethod
    def _each(update: Callable[[Buffer], object], parts: Sequence[Buffer]) -> None:
        for part in parts:
            update(part)

    def hexdigests(self) -> dict[str, str]:
        return {
            "sha1": self._sha1.hexdigest(),
            "md5": self._md5.hexdigest(),
            "adler32": f"{self._adler & 0xFFFFFFFF:08x}",
        }


class ChunkHasher:
    """One algorithm over one request's bytes, for TUS `Upload-Checksum` (sha1, md5, crc32,
    adler32); `digest()` gives the raw digest the header carries in base64."""

    ALGORITHMS = ("sha1", "md5", "crc32", "adler32")

    def __init__(self, algorithm: str) -> None:
        if algorithm not in self.ALGORITHMS:
            raise InvalidArgument(f"unsupported checksum algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm, usedforsecurity=False) if algorithm in ("sha1", "md5") else None
        self._value = 1 if algorithm == "adler32" else 0

    def update(self, data: bytes | bytearray | memoryview, also: Callable[[], object] | None = None) -> None:
        if self._hash is not None:
            self._hash.update(data)
        elif self.algorithm == "crc32":
            self._value = zlib.crc32(data, self._value)
        else:
            self._value = zlib.adler32(data, self._value)
        if also is not None:
            also()

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return (self._value & 0xFFFFFFFF).to_bytes(4, "big")


def parse_checksum_header(value: str) -> tuple[str, str]:
    """Parses `SHA1:<hex>` (OC-Checksum) or `sha1 <hex>` (TUS metadata) into (algorithm, hex)."""
    for sep in (":", " "):
        algo, found, digest = value.strip().partition(sep)
        if found:
            algo = algo.strip().lower()
            digest = digest.strip().lower()
            if algo in ALGORITHMS and digest and all(c in "0123456789abcdef" for c in digest):
                return algo, digest
            break
    raise InvalidArgument(f"invalid checksum {value!r}: expected one of SHA1, MD5, ADLER32 and a hex value")
