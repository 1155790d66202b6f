"""Reading shards from s3:// through litdata with bounded failures (imported only when a URL is streamed).

litdata's own S3 downloader retries each request up to 1000 times, and when its download thread dies the reader
polls for the missing chunk for minutes. Here the `s3://` downloader is one with saga_sr's client
(`remote.s3_client`: the standard AWS environment, short timeouts, a few attempts), which records a failed chunk
instead of dying, and the item loader stops waiting for a chunk as soon as its download has failed, raising a
one-line DataError naming the chunk's URL.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress

from boto3.s3.transfer import TransferConfig
from filelock import FileLock, Timeout
from litdata.streaming.downloader import Downloader, register_downloader
from litdata.streaming.item_loader import PyTreeLoader

from saga_sr.data.remote import describe, s3_client
from saga_sr.errors import DataError


class ShardReadError(DataError):
    """A chunk could not be fetched. Raised in a DataLoader worker, torch rebuilds it in the main process from
    "Caught ... Original Traceback ..."; the rebuilt error keeps only the original one-line message."""

    def __init__(self, message: str) -> None:
        if message.startswith("Caught ") and "Traceback" in message:
            message = message.rstrip().splitlines()[-1].split(": ", 1)[-1]
        super().__init__(message)


CHUNK_WAIT_S = 600  # a chunk nobody reports as failed (another process downloading it) is awaited this long
_FAILED: dict[str, str] = {}  # local chunk path -> why its download failed (per process)


_CLIENTS: dict[tuple, object] = {}  # one per process (a forked DataLoader worker makes its own) and environment
_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


def _client():
    key = (os.getpid(), *(os.environ.get(name) for name in _ENV))
    if key not in _CLIENTS:
        _CLIENTS[key] = s3_client()
    return _CLIENTS[key]


class BoundedS3Downloader(Downloader):
    """litdata's Downloader for s3:// with saga_sr's client; a failed chunk is recorded in `_FAILED`."""

    def download_file(self, remote_filepath: str, local_filepath: str) -> None:
        if os.path.exists(local_filepath):
            return
        is_index = remote_filepath.endswith("index.json")
        with suppress(Timeout), FileLock(local_filepath + ".lock", timeout=1 if is_index else 0):
            if os.path.exists(local_filepath):
                return
            _FAILED.pop(local_filepath, None)
            bucket, _, key = remote_filepath[len("s3://") :].partition("/")
            tmp = f"{local_filepath}.{os.getpid()}.part"
            client = None
            try:
                client = _client()
                client.download_file(bucket, key, tmp, Config=TransferConfig(use_threads=False))
                os.replace(tmp, local_filepath)
            except Exception as exc:  # any failure must reach the reader, or it would wait for the chunk
                with suppress(OSError):
                    os.remove(tmp)
                reason = f"{remote_filepath}: {describe(exc, client)}"
                if is_index:
                    raise DataError(reason) from None
                _FAILED[local_filepath] = reason


def wait_for_chunk(path: str, size: int, timeout_s: float = CHUNK_WAIT_S) -> None:
    """Return once `path` holds `size` bytes; DataError as soon as its download failed (or after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not (os.path.exists(path) and os.stat(path).st_size >= size):
        if path in _FAILED:
            raise ShardReadError(_FAILED[path])
        if time.monotonic() > deadline:
            raise ShardReadError(f"{path}: not downloaded after {timeout_s:.0f} s")
        time.sleep(0.05)


class FailFastLoader(PyTreeLoader):
    """litdata's default item loader, but a chunk whose download failed is an error at once."""

    def load_item_from_chunk(self, index, chunk_index, chunk_filepath, begin, filesize_bytes, encryption=None):
        if chunk_filepath != self._chunk_filepath:
            wait_for_chunk(chunk_filepath, filesize_bytes)
        return super().load_item_from_chunk(index, chunk_index, chunk_filepath, begin, filesize_bytes, encryption)


FailFastLoader.__name__ = "PyTreeLoader"  # litdata matches the loader's class name with the one in index.json


def install() -> None:
    """Make s3:// URLs in this process go through BoundedS3Downloader."""
    register_downloader("s3://", BoundedS3Downloader, overwrite=True)
