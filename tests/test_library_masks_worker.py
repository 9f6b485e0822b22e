"""Automatic masks through a real broker and worker: a zip import with "compute automatic
masks" chains the mask job after the import, and the worker runs both (PostgreSQL + Redis)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.mask_support import lesion_photo
from turingtest.library import scheduling
from turingtest.library.models import Image, MaskJob

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_zip_import_with_automatic_masks_runs_import_then_masks_on_the_worker(live_worker):
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(2):
            png = io.BytesIO()
            lesion_photo(seed=i, size=48).save(png, "PNG")
            zf.writestr(f"p{i}.png", png.getvalue())
        zf.writestr("manifest.csv", "image,condition\np0.png,MEL\np1.png,NEV\n")
    job = scheduling.import_job_create(archive=SimpleUploadedFile("x.zip", buf.getvalue()), auto_masks=True)
    mask_job = MaskJob.objects.get(import_job=job)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        mask_job.refresh_from_db()
        if mask_job.status in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert mask_job.status == "succeeded", mask_job.error or live_worker.log()
    assert (mask_job.n_total, mask_job.n_computed) == (2, 2)
    assert sorted(Image.objects.values_list("mask_source", flat=True)) == ["automatic", "automatic"]
