"""Shards in object storage: `s3://BUCKET/PREFIX` URLs for `prepare -o` and `train --train_latents`.

The endpoint, credentials and region come from the standard AWS environment that boto3 reads
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, profiles). Every request
has short timeouts and a bounded number of attempts (`AWS_MAX_ATTEMPTS`, default `ATTEMPTS`), so a bad URL, a
missing bucket, refused credentials or an unreachable server end in one line naming the URL, never a hang.

Writing (`prepare -o s3://...`): litdata's writer writes local files, so a part is written into a local staging
folder, its chunks are uploaded, then its marker (`.parts/part-P.json`): a part is done in the bucket when its
marker is there, which is what a resumed run reads back. `index.json` is uploaded last, after every marker exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from saga_sr.errors import DataError

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
ATTEMPTS = 3  # per request (the first try included), unless AWS_MAX_ATTEMPTS says otherwise
PASSTHROUGH_SCHEMES = ("gs://", "azure://", "hf://")  # read by litdata as given, without the checks below
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # 2+ letters, so a Windows drive ("C:") is a path
_S3 = re.compile(r"^s3://([^/]*)/*(.*?)/*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def looks_like_url(value) -> bool:
    """True for anything with a scheme (`s3://b/x`, also the typo `s3:/b/x`), which must never become a folder."""
    return bool(_SCHEME.match(str(value)))


@dataclass(frozen=True)
class S3Url:
    """A bucket and a key prefix (no leading or trailing slash; empty for the bucket's root)."""

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_s3_url(value: str, option: str) -> S3Url:
    """`s3://BUCKET[/PREFIX]` -> S3Url; anything else is a DataError naming `option` and the value."""
    match = _S3.match(str(value))
    if not match or not _BUCKET.match(match.group(1)) or "//" in match.group(2):
        raise DataError(f"{option} {value}: not a valid s3://BUCKET/PREFIX URL (bucket: 3-63 characters a-z 0-9 . -)")
    return S3Url(match.group(1), match.group(2))


def _attempts() -> int:
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "")
    try:
        return max(1, int(raw)) if raw else ATTEMPTS
    except ValueError:
        raise DataError(f"AWS_MAX_ATTEMPTS={raw!r}: must be a whole number") from None


def s3_client():
    """A boto3 S3 client from the standard environment, with bounded timeouts and attempts."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": _attempts(), "mode": os.environ.get("AWS_RETRY_MODE", "standard")},
    )
    return boto3.session.Session().client("s3", config=config)


def describe(exc: Exception, client=None) -> str:
    """One line saying why an S3 request failed, in the user's terms."""
    from botocore import exceptions as bx

    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "the default AWS endpoint"
    if isinstance(exc, bx.NoCredentialsError):
        return "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(
        exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError)
    ):
        return f"cannot reach {endpoint} after {_attempts()} attempts ({type(exc).__name__})"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "?"))
        if code in ("NoSuchBucket",):
            return f"no such bucket (at {endpoint})"
        if code in (
            "403",
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidToken",
            "ExpiredToken",
            "AllAccessDisabled",
        ):
            return f"access refused ({code}) by {endpoint}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        return f"{code} {err.get('Message', '')}".strip() + f" (at {endpoint})"
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in (
        "404",
        "NoSuchKey",
        "NotFound",
    )


def check_bucket(url: S3Url, option: str, client=None):
    """HEAD the bucket (one short request): a missing bucket or refused credentials fail here, naming the URL."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or s3_client()
    try:
        client.head_bucket(Bucket=url.bucket)
    except (BotoCoreError, ClientError) as exc:
        reason = f"no such bucket (at {client.meta.endpoint_url})" if _missing(exc) else describe(exc, client)
        raise DataError(f"{option} {url}: {reason}") from None
    return client


def read_object(url: S3Url, name: str, option: str, client) -> bytes | None:
    """The bytes of `name` under the prefix, None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client.get_object(Bucket=url.bucket, Key=url.key(name))["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        if _missing(exc):
            return None
        raise DataError(f"{option} {url}/{name}: {describe(exc, client)}") from None


def check_output(value: str, option: str = "-o") -> S3Url | None:
    """None for a local folder; for an s3:// URL the parsed URL after checking the bucket. Other schemes
    (and typos such as `s3:/bucket`) are refused, so they never become local folders."""
    if not looks_like_url(value):
        return None
    if not str(value).startswith("s3://"):
        raise DataError(f"{option} {value}: not a folder or an s3://BUCKET/PREFIX URL (the only scheme written to)")
    url = parse_s3_url(value, option)
    check_bucket(url, option)
    return url


def check_source(value: str, option: str = "--train_latents") -> str:
    """A shard URL checked up front: the bucket answers and holds `index.json` (prepare finished)."""
    if str(value).startswith(PASSTHROUGH_SCHEMES):
        return str(value)
    if not str(value).startswith("s3://"):
        raise DataError(
            f"{option} {value}: not a folder or a shard URL (s3://BUCKET/PREFIX; "
            f"{', '.join(PASSTHROUGH_SCHEMES)} are passed to litdata unchecked)"
        )
    url = parse_s3_url(value, option)
    client = check_bucket(url, option)
    if read_object(url, "index.json", option, client) is None:
        raise DataError(f"{option} {url}: no index.json (run `saga-sr prepare` to completion first)")
    return str(url)


def read_json(value: str, name: str, option: str = "--train_latents") -> dict | None:
    """A JSON file beside the shards at an s3:// URL, None when absent."""
    url = parse_s3_url(value, option)
    data = read_object(url, name, option, s3_client())
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DataError(f"{url}/{name}: unreadable ({exc})") from None


class FolderSink:
    """prepare's output as a local folder: the parts are final where they are written."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.name = folder, str(folder)

    def publish(self, name: str) -> None:
        """Nothing to do: the file is in place."""

    def publish_part(self, part: int) -> None:
        """Nothing to do: the part's chunks and marker are in place."""

    def pull_markers(self) -> None:
        """Nothing to do: every rank writes its markers into the same folder."""

    def finish(self, merged: bool) -> None:
        """Nothing to do."""

    def discard(self) -> None:
        """Nothing to do: the caller removes what the run wrote into the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_folder(url: S3Url) -> Path:
    """This process's local folder for `url` (removing those that killed processes left)."""
    digest = hashlib.blake2b(str(url).encode(), digest_size=8).hexdigest()
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"saga-sr-prepare-{digest}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return root / f"saga-sr-prepare-{digest}-{os.getpid()}"


class BucketSink:
    """prepare's output in a bucket, written through a local staging folder (see the module docstring)."""

    def __init__(self, url: S3Url, client, parts_dir: str, plan_file: str) -> None:
        self.url, self.client, self.name = url, client, str(url)
        self.parts_dir, self.plan_file = parts_dir, plan_file
        self.folder = staging_folder(url)
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.folder / parts_dir).mkdir(parents=True)
        self._download(plan_file)
        self.pull_markers()

    def _upload(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(self.folder / name), self.url.bucket, self.url.key(name))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise DataError(
                f"-o {self.url}/{name}: upload failed: {describe(exc, self.client)}; rerun to resume"
            ) from None

    def _download(self, name: str) -> None:
        data = read_object(self.url, name, "-o", self.client)
        if data is not None:
            (self.folder / name).write_bytes(data)

    def publish(self, name: str) -> None:
        self._upload(name)

    def publish_part(self, part: int) -> None:
        """Upload the part's chunks, then its marker (which makes the part done), and drop the local chunks."""
        marker = f"{self.parts_dir}/part-{part:05d}.json"
        for chunk in json.loads((self.folder / marker).read_text(encoding="utf-8"))["chunks"]:
            self._upload(chunk["filename"])
            (self.folder / chunk["filename"]).unlink()
        self._upload(marker)

    def pull_markers(self) -> None:
        """Fetch the markers other ranks (or earlier runs) put in the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.url.bucket, Prefix=self.url.key(f"{self.parts_dir}/part-")
            )
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise DataError(f"-o {self.url}: listing failed: {describe(exc, self.client)}") from None
        for key in keys:
            name = f"{self.parts_dir}/{key.rsplit('/', 1)[-1]}"
            if name.endswith(".json") and not (self.folder / name).is_file():
                self._download(name)

    def finish(self, merged: bool) -> None:
        """Upload the merged files (`index.json` last, stamped so litdata's cache tells sets apart) and remove
        the staging folder."""
        if merged:
            self._upload("skipped_files.txt")
            self._upload("prepare_info.json")
            index = json.loads((self.folder / "index.json").read_text(encoding="utf-8"))
            plan = (self.folder / self.plan_file).read_bytes()
            index["updated_at"] = hashlib.blake2b(plan, digest_size=8).hexdigest()
            (self.folder / "index.json").write_text(json.dumps(index, sort_keys=True) + "\n", encoding="utf-8")
            self._upload("index.json")
        shutil.rmtree(self.folder, ignore_errors=True)

    def discard(self) -> None:
        """Remove the plan and part markers this prefix holds (a run that produced nothing usable), and the
        staging folder, so that a corrected rerun starts clean."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.url.bucket, Prefix=self.url.key(f"{self.parts_dir}/")
            )
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
            for key in [*keys, self.url.key(self.plan_file)]:
                self.client.delete_object(Bucket=self.url.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise DataError(f"-o {self.url}: cleaning up failed: {describe(exc, self.client)}") from None
        shutil.rmtree(self.folder, ignore_errors=True)


def open_sink(out, parts_dir: str, plan_file: str):
    """prepare's output: a FolderSink for a path, a BucketSink (bucket checked) for an s3:// URL."""
    url = check_output(str(out))
    if url is None:
        return FolderSink(Path(out).expanduser())
    return BucketSink(url, s3_client(), parts_dir, plan_file)
