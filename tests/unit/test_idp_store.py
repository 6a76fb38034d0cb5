"""The identity provider's grant files: single use, expiry, purging."""

from __future__ import annotations

from pathlib import Path


def test_expired_grants_are_purged(tmp_path: Path):
    import time

    from infiniscale.drivers.idp_files import FileIdpStore

    store = FileIdpStore(str(tmp_path))
    store.put("codes", "a" * 20, {"expires": time.time() - 1})
    store.put("refresh", "b" * 20, {"expires": time.time() + 3600})
    (tmp_path / "codes" / ("c" * 20 + ".x.taken")).write_bytes(b"")  # left by an interrupted take
    assert store.purge_expired() == 2
    assert store.get("codes", "a" * 20) is None and store.get("refresh", "b" * 20) is not None
    assert store.take("refresh", "b" * 20) is not None and store.take("refresh", "b" * 20) is None
