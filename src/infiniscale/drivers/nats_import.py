"""nats-py, imported without aiohttp; every module takes nats from here.

nats-py imports aiohttp for its WebSocket transport whenever aiohttp is installed (it is: the S3
client needs it). We connect over TCP only, and aiohttp costs each process about 20 MiB and 0.1 s
to load. So nats is imported with aiohttp hidden; aiohttp itself still imports normally later, for
a process that talks to S3.
"""

from __future__ import annotations

import sys

_hide = "aiohttp" not in sys.modules  # loaded already (S3): nothing to save
if _hide:
    sys.modules["aiohttp"] = None  # type: ignore[assignment]  # `import aiohttp` fails inside nats
try:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError
finally:
    if _hide:
        del sys.modules["aiohttp"]

__all__ = ["AckPolicy", "ConsumerConfig", "DeliverPolicy", "NotFoundError", "RetentionPolicy",
           "StorageType", "StreamConfig", "nats"]
