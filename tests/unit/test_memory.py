"""The worker's allocator settings: large blocks go back to the system when freed."""

from __future__ import annotations

import subprocess
import sys

# Frees one large block (which makes glibc raise its mmap threshold), then allocates forty blocks
# of 1.5 MiB, each followed by a 256 KiB one that stays alive (so the heap cannot shrink from its
# top), frees the large ones, and prints how much resident memory they left behind (MiB).
PROBE = """
import sys
from infiniscale import memory
if sys.argv[1] == "tuned":
    memory.tune_allocator()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
first = b"\x01" * (3 << 20)
del first
base = rss()
blocks, pins = [], []
for _ in range(40):
    blocks.append(b"\x01" * (3 << 19))
    pins.append(b"\x02" * (1 << 18))
del blocks
print(rss() - base - len(pins) / 4)
"""


def left_behind(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


def test_freed_large_blocks_do_not_stay_resident() -> None:
    assert left_behind("tuned") < 4
    # the probe does show the difference: without the settings the freed blocks stay in the heap
    assert left_behind("default") > 40
