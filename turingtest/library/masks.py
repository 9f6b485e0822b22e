"""Lesion masks of library images: the one way a mask is saved, automatic masks, the review queue.

Every path that changes a mask (the editor's accept, automatic masks computed in the
background or shown in the editor) goes through ``mask_save``, which stores the mask as a
0/255 PNG under an opaque name, records where it came from (``MaskSource``; who reviewed
it and when) and keeps the image's lesion area fraction and bounding box in step with it.

Masks posted from the editor arrive as PNG data URLs; ``mask_decode`` turns them into a
boolean array or raises ``MaskError`` saying why, before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from functools import partial

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from turingtest.images import ImageError, encode_png, mask_area_fraction, mask_bbox, open_image
from turingtest.library.models import Image, MaskJob, MaskSource
from turingtest.library.store import LibraryError, file_write, files_delete

logger = logging.getLogger(__name__)

MAX_POSTED_BYTES = 4 * 1024 * 1024  # a 0/255 PNG of a 1024-px mask is a few kB; a photo is not a mask
MAX_GREY_FRACTION = 0.02  # share of posted pixels allowed between black and white (anti-aliasing)
_DATA_URL = re.compile(r"^data:image/png;base64,(?P<data>[A-Za-z0-9+/=\s]+)$")


class MaskError(LibraryError):
    """A mask the library refuses; the message says why, for the person who drew it."""


# ---------------------------------------------------------------------------
# Reading and decoding
# ---------------------------------------------------------------------------


def mask_load(*, image: Image) -> np.ndarray | None:
    """The image's stored mask as bool (H, W), or None when it has none."""
    if not image.mask:
        return None
    with default_storage.open(image.mask.name, "rb") as fh:
        return np.asarray(PILImage.open(fh).convert("L")) > 127


def photo_load(*, image: Image) -> np.ndarray:
    """The stored (normalized) pixels, uint8 (H, W, 3)."""
    with default_storage.open(image.file.name, "rb") as fh:
        return np.asarray(PILImage.open(fh).convert("RGB"))


def mask_png(mask: np.ndarray) -> bytes:
    """A boolean mask as the library stores it: an 8-bit greyscale PNG of 0 and 255."""
    return encode_png(PILImage.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255, "L"))


def mask_data_url(mask: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(mask_png(mask)).decode("ascii")


def mask_decode(*, data: str, image: Image) -> np.ndarray:
    """A posted mask (a PNG data URL) as bool (H, W) for ``image``, or ``MaskError`` saying why.

    Painted pixels are the bright or opaque ones: an RGBA PNG counts a pixel when it is
    opaque and bright, a greyscale one when it is bright (threshold at half). The size must
    be the stored image's, and the picture must be binary already: a few anti-aliased grey
    pixels at the edges are thresholded, a photo or a soft map is refused.
    """
    match = _DATA_URL.match((data or "").strip())
    if match is None:
        raise MaskError("the mask must be a PNG data URL (data:image/png;base64,…)")
    if len(match["data"]) > MAX_POSTED_BYTES * 4 // 3 + 4:
        raise MaskError(f"the mask is larger than {MAX_POSTED_BYTES // 1024} kB: not a lesion mask")
    try:
        raw = base64.b64decode(match["data"], validate=False)
    except (binascii.Error, ValueError):
        raise MaskError("the mask is not valid base64") from None
    try:
        # A few times the image's pixels: a wrong size is reported as such, a bomb is still refused.
        im = open_image(raw, limit=4 * max(image.width * image.height, 64))
    except ImageError as exc:
        raise MaskError(f"the mask cannot be read: {exc}") from None
    if im.format != "PNG":
        raise MaskError(f"the mask must be a PNG, got {im.format or 'an unknown format'}")
    if im.size != (image.width, image.height):
        raise MaskError(
            f"mask size mismatch: the mask is {im.size[0]}×{im.size[1]}, "
            f"the image is {image.width}×{image.height}"
        )
    if im.mode in {"RGBA", "LA", "PA", "P"}:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        value = rgba[..., :3].mean(axis=2) * rgba[..., 3] / 255.0  # transparent counts as black
    else:
        value = np.asarray(im.convert("L"), dtype=np.float64)
    grey = float(((value > 32) & (value < 223)).mean())
    if grey > MAX_GREY_FRACTION:
        raise MaskError(
            f"the mask is not binary: {grey:.0%} of its pixels are neither black nor white "
            "(post the painted mask, not a photo or a soft map)"
        )
    mask = value >= 128
    if not mask.any():
        raise MaskError("the mask is empty: paint the lesion before accepting")
    return mask


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


def mask_save(
    *,
    image: Image,
    mask: np.ndarray,
    source: str,
    user: AbstractBaseUser | None = None,
    only_if_missing: bool = False,
) -> bool:
    """Store ``mask`` as ``image``'s lesion mask; the one way a mask changes.

    Updates the lesion area fraction and bounding box from the mask, and the provenance:
    ``source`` (a ``MaskSource``), and for a reviewed mask who reviewed it and when
    (cleared for any other source). ``only_if_missing`` writes nothing when the image has
    a mask by then (a background job racing an editor). The new file is written first and
    removed again if the row is not updated; the replaced file is deleted after commit.
    Returns whether the mask was saved; updates ``image`` in place when it was.
    """
    if source not in MaskSource.values:
        raise MaskError(f"mask source must be one of {', '.join(MaskSource.values)}, got {source!r}")
    if source == MaskSource.REVIEWED and user is None:
        raise MaskError("a reviewed mask needs the reviewer")
    mask = np.asarray(mask)
    if mask.shape != (image.height, image.width):
        raise MaskError(
            f"mask size mismatch: the mask is {mask.shape[1] if mask.ndim > 1 else '?'}×{mask.shape[0]}, "
            f"the image is {image.width}×{image.height}"
        )
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all() and not np.isin(mask, (0, 255)).all():
            raise MaskError("the mask must be binary (bool, 0/1 or 0/255)")
        mask = mask > 0
    reviewed = source == MaskSource.REVIEWED
    fields = {
        "mask_source": source,
        "mask_reviewed_by": user if reviewed else None,
        "mask_reviewed_at": timezone.now() if reviewed else None,
        "lesion_area_fraction": mask_area_fraction(mask),
        "lesion_bbox": mask_bbox(mask),
    }
    name = file_write(mask_png(mask))
    try:
        with transaction.atomic():
            rows = Image.objects.select_for_update().filter(pk=image.pk)
            if only_if_missing:
                rows = rows.filter(mask="")
            old = rows.values_list("mask", flat=True).first()
            if old is None:
                files_delete(name)
                return False
            rows.update(mask=name, **fields)
            if old:
                transaction.on_commit(partial(files_delete, old))
    except BaseException:
        files_delete(name)
        raise
    image.mask.name = name
    for key, value in fields.items():
        setattr(image, key, value)
    return True


def mask_automatic(*, image: Image) -> np.ndarray:
    """``segment_lesion`` on the stored pixels: what the editor shows before anyone reviewed."""
    # Imported here: segmentation pulls in generator.semantic_map (torch), which only this path needs.
    from generator.segmentation import segment_lesion

    return segment_lesion(photo_load(image=image))


def mask_compute_automatic(*, image: Image, only_if_missing: bool = True) -> bool:
    """Compute and store an automatic mask; by default only for an image that still has none."""
    if only_if_missing and image.mask:
        return False
    return mask_save(
        image=image,
        mask=mask_automatic(image=image),
        source=MaskSource.AUTOMATIC,
        only_if_missing=only_if_missing,
    )


# ---------------------------------------------------------------------------
# The review queue
# ---------------------------------------------------------------------------


def images_unreviewed() -> QuerySet[Image]:
    """Real images whose mask nobody has reviewed yet (with or without a mask), in id order."""
    return Image.objects.filter(kind=Image.Kind.REAL).exclude(mask_source=MaskSource.REVIEWED).order_by("pk")


def image_next_unreviewed(*, after: int | None = None) -> Image | None:
    """The first unreviewed real image after id ``after``, wrapping round to the start; None when done."""
    queue = images_unreviewed()
    if after is not None:
        following = queue.filter(pk__gt=after).first()
        if following is not None:
            return following
        return queue.exclude(pk=after).first()
    return queue.first()


# ---------------------------------------------------------------------------
# Background jobs
# ---------------------------------------------------------------------------


def _job_selection(job: MaskJob) -> list[int]:
    if job.image_pks is not None:
        return [int(pk) for pk in job.image_pks]
    missing = Image.objects.filter(kind=Image.Kind.REAL, mask="")
    if job.import_job is not None:
        missing = missing.filter(created__gte=job.import_job.created)
    return list(missing.order_by("pk").values_list("pk", flat=True))


def mask_job_run(*, job: MaskJob) -> MaskJob:
    """Compute automatic masks for the job's images that have none; progress and failures on the row.

    Claimable while queued or running (a killed worker's redelivered task finishes the job);
    finished jobs are left alone. An image that cannot be segmented is listed in ``errors``
    and the rest go on.
    """
    claimed = MaskJob.objects.filter(
        pk=job.pk, status__in=[MaskJob.Status.QUEUED, MaskJob.Status.RUNNING]
    ).update(status=MaskJob.Status.RUNNING, started=timezone.now())
    job.refresh_from_db()
    if not claimed:
        return job  # already finished: a second run does nothing twice
    try:
        if job.import_job is not None and job.import_job.status != job.import_job.Status.SUCCEEDED:
            raise MaskError(
                f"import {job.import_job.pk} did not succeed ({job.import_job.status}): no masks computed"
            )
        pks = _job_selection(job)
        MaskJob.objects.filter(pk=job.pk).update(image_pks=pks, n_total=len(pks))
        n_computed = n_skipped = 0
        errors: list[dict] = []
        images = Image.objects.in_bulk(pks)
        for n, pk in enumerate(pks, start=1):
            image = images.get(pk)
            try:
                if image is None or image.mask or not mask_compute_automatic(image=image):
                    n_skipped += 1
                else:
                    n_computed += 1
            except (OSError, ValueError) as exc:
                errors.append({"image": pk, "reason": f"{type(exc).__name__}: {exc}"})
            MaskJob.objects.filter(pk=job.pk).update(
                n_done=n, n_computed=n_computed, n_skipped=n_skipped, errors=errors
            )
        MaskJob.objects.filter(pk=job.pk).update(status=MaskJob.Status.SUCCEEDED, finished=timezone.now())
    except Exception as exc:
        logger.exception("mask job %s failed", job.pk)
        MaskJob.objects.filter(pk=job.pk).update(
            status=MaskJob.Status.FAILED, error=str(exc), finished=timezone.now()
        )
    job.refresh_from_db()
    return job
