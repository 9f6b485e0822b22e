"""Media in S3-compatible object storage: the ``STORAGES["default"]`` entry built from the environment.

Kept apart from settings.py so the tests build the backend from the very same function, pointed at
a local S3 server. settings.py calls it while Django is still being configured: nothing here may
touch ``django.conf.settings``.

Every media read and write in the platform goes through ``default_storage`` (never a local
path), so web servers and GPU workers on different hosts share one library. Raters never get a
storage URL: ``/img/<token>`` streams the bytes through Django, so there is no custom domain,
and signed (query-string) URLs are irrelevant to the rating page.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

S3_BACKEND = "storages.backends.s3.S3Storage"


def s3_storage(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The S3 storage entry when ``AWS_STORAGE_BUCKET_NAME`` is set, else ``None`` (local files).

    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` are not copied here: boto3 reads them
    (or an instance role, or ``~/.aws``) from its own credential chain.
    """
    bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "")
    if not bucket:
        return None
    # Say so at startup, not at the first upload ("Could not find backend …" deep in a request).
    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        raise ImproperlyConfigured(
            "AWS_STORAGE_BUCKET_NAME is set but django-storages/boto3 are not installed: "
            "pip install -r requirements-s3.txt"
        )
    options: dict[str, Any] = {
        "bucket_name": bucket,
        # MinIO, Ceph, moto, …: any S3-compatible endpoint; unset means AWS itself.
        "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL") or None,
        "region_name": environ.get("AWS_S3_REGION_NAME") or None,
        # Path-style ("path") for servers without per-bucket DNS names; unset lets boto3 choose.
        "addressing_style": environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        # Media is never linked directly (see the module docstring).
        "custom_domain": None,
        # FileSystemStorage never overwrites a name (it picks another); behave the same, so the
        # backend cannot change which file a row points at.
        "file_overwrite": False,
        # Objects stay private: the bucket's own policy, no public-read ACL on upload.
        "default_acl": None,
    }
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}
