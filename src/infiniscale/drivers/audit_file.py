"""An append-only log file that several processes share: each line goes out in one write to a
descriptor opened with O_APPEND, so lines never interleave."""

from __future__ import annotations

import os

from infiniscale.drivers.decomposed.fsutil import write_all


class AppendOnlyFile:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __call__(self, line: str) -> None:
        write_all(self.fd, (line + "\n").encode())
