"""Fixtures shared across test files: a SeaweedFS S3 server on 127.0.0.1 (see s3_server.py)."""

from s3_server import s3_env, s3_server  # noqa: F401 (fixtures)
