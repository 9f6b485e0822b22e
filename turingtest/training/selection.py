"""What a training job learns from: real library photos with a lesion mask, and the job's manifest.

The manifest is the CSV ``python -m generator.train --manifest`` reads (``image, mask,
condition, skin_type``, paths relative to the CSV) plus columns the trainer ignores:
``image_id``, ``sha256`` and the storage names the files are copied from. It is written
once per job into the job's storage folder, with a copy of every mask taken then, so a mask
edited while the job runs never changes what it trains on. Each segment copies the files
to a local temporary folder: media may live in object storage, never assumed to be local.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from collections.abc import Sequence
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from turingtest.library.models import Image, MaskSource
from turingtest.training.models import TrainingJob

MANIFEST_COLUMNS = (
    "image",
    "mask",
    "condition",
    "skin_type",
    "image_id",
    "sha256",
    "image_storage",
    "mask_storage",
)


class TrainingError(ValueError):
    """A training job that cannot be created or run as asked; the message is for the admin."""


def reviewed_masks(images: QuerySet[Image]) -> QuerySet[Image]:
    """The images among ``images`` whose mask a person accepted in the mask editor."""
    return images.filter(mask_source=MaskSource.REVIEWED)


def images_select(
    *, conditions: Sequence[str] = (), skin_types: Sequence[int] = (), masks: str = TrainingJob.Masks.ANY
) -> QuerySet[Image]:
    """Real photos with a mask, of the given conditions and Fitzpatrick types (empty = all), by id."""
    if masks not in TrainingJob.Masks.values:
        raise TrainingError(f"masks must be one of {TrainingJob.Masks.values}, got {masks!r}")
    images = Image.objects.filter(kind=Image.Kind.REAL).exclude(mask="").select_related("condition")
    if conditions:
        images = images.filter(condition__code__in=list(conditions))
    if skin_types:
        images = images.filter(fitzpatrick__in=list(skin_types))
    if masks == TrainingJob.Masks.REVIEWED:
        images = reviewed_masks(images)
    return images.order_by("pk")


def manifest_write(*, job: TrainingJob) -> str:
    """Copy the job's masks into its folder and write its manifest there; returns the storage name."""
    images = Image.objects.in_bulk(job.image_ids)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for image_id, sha256 in zip(job.image_ids, job.image_sha256, strict=True):
        image = images.get(image_id)
        if image is None or image.sha256 != sha256 or not image.mask:
            raise TrainingError(
                f"image {image_id} was deleted, changed or lost its mask since the job was created"
            )
        with image.mask.open("rb") as fh:
            mask_name = default_storage.save(
                f"{job.work_prefix}/masks/{image_id}.png", ContentFile(fh.read())
            )
        writer.writerow(
            [
                f"images/{image_id}.png",
                f"masks/{image_id}.png",
                image.condition.code,
                image.fitzpatrick or "",
                image_id,
                sha256,
                image.file.name,
                mask_name,
            ]
        )
    return default_storage.save(f"{job.work_prefix}/manifest.csv", ContentFile(buffer.getvalue().encode()))


def manifest_download(*, job: TrainingJob, folder: Path) -> Path:
    """The job's manifest and its files in a local folder (checked against their sha256); returns the CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    with default_storage.open(job.manifest_name, "rb") as fh:
        text = fh.read().decode()
    for row in csv.DictReader(io.StringIO(text)):
        for column in ("image", "mask"):
            (folder / row[column]).parent.mkdir(parents=True, exist_ok=True)
            storage_download(row[f"{column}_storage"], folder / row[column])
        with open(folder / row["image"], "rb") as fh:
            if hashlib.file_digest(fh, "sha256").hexdigest() != row["sha256"]:
                raise TrainingError(f"image {row['image_id']}: the stored file no longer has its sha256")
    manifest = folder / "manifest.csv"
    manifest.write_text(text)
    return manifest


def storage_download(name: str, path: Path) -> Path:
    with default_storage.open(name, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def storage_upload(path: Path, name: str) -> str:
    """Save a local file under ``name`` (storage may add a suffix if taken); returns the name used."""
    with open(path, "rb") as fh:
        return default_storage.save(name, fh)
