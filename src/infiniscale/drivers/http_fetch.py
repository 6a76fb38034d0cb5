"""Small JSON documents from other servers (an external provider's discovery and keys)."""

from __future__ import annotations

import json
import ssl
import urllib.request

MAX_BYTES = 1 << 20


def json_fetcher(insecure: bool = False, timeout: float = 10.0):
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()

    def fetch_json(url: str) -> dict:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return json.loads(response.read(MAX_BYTES))

    return fetch_json
