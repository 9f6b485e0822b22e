"""A standalone S3-compatible server for the storage tests: moto in server mode on a free local port.

django-storages tests itself the same way. moto (``requirements-dev.txt``) and django-storages
(``requirements-s3.txt``) are both installed by ``make install`` and need no outside service, so
a missing one fails the tests: they are never skipped.
"""

from __future__ import annotations

import importlib
import logging
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from turingtest.objectstore import s3_storage

REGION = "us-east-1"
# moto accepts any credentials; these stand in for a deployment's own.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dermgan-test", "AWS_SECRET_ACCESS_KEY": "dermgan-test-secret"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require(module: str, what: str) -> None:
    """Fail without ``module``: `make install` installs both (no outside service is needed, since
    moto's server runs in this process), so a missing one is a broken environment, never a skip."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{what} is not installed ({exc}): run `make install`")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server running for the whole test session."""
    _require("moto.server", "moto[server] (requirements-dev.txt)")
    _require("storages.backends.s3", "django-storages and boto3 (requirements-s3.txt)")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per S3 request
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class S3Media:
    bucket: str
    client: Any  # a boto3 S3 client on the same server, to look at the bucket from outside Django
    media_root: Path

    def keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def local_files(self) -> list[Path]:
        return [p for p in self.media_root.rglob("*") if p.is_file()] if self.media_root.exists() else []


@pytest.fixture
def s3_media(s3_endpoint: str, settings, tmp_path: Path, monkeypatch) -> S3Media:
    """Media in a fresh bucket, the storage built by the deployment's own code from its variables.

    ``MEDIA_ROOT`` points at an empty folder, so a test can prove nothing was written locally.
    """
    import boto3

    bucket = f"dermgan-test-{secrets.token_hex(6)}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    storage = s3_storage(
        {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": s3_endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_S3_ADDRESSING_STYLE": "path",
        }
    )
    settings.MEDIA_ROOT = tmp_path / "media"
    # Django's setting_changed handler resets default_storage, so every FileField follows.
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    return S3Media(bucket=bucket, client=client, media_root=settings.MEDIA_ROOT)
