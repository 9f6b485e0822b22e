"""Re-encode stored library files to the current constant-size PNG (``images.encode_png``).

Files stored before the encoder became uncompressed are compressed PNGs whose byte
length follows their content, which lets a rater's network tab tell real from synthetic.
Re-encoding keeps the pixels exactly (PNG is lossless) and changes the bytes, so
``sha256`` (the pixel hash that detects duplicates) is recomputed and the old one kept in
``provenance["sha256_before_reencode"]``; the file gets a new random storage name and
the old file is deleted after the row is committed.

A study that has opened froze its design with the items' ``sha256`` in its hash, so
re-encoding one of its images makes ``study_verify_frozen`` fail for it. Those images are
left alone unless ``include_frozen`` is given; the report lists the studies affected
(their frozen hash can still be recomputed from ``sha256_before_reencode``).

Idempotent: a file that already is ``encode_png`` of its own pixels is skipped.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage

from turingtest.images import encode_png, image_size
from turingtest.library.models import Image

FROZEN_STATUSES = ("open", "paused", "closed")  # studies.Study.Status values whose design hash is stored


@dataclass
class ReencodeReport:
    n_checked: int = 0
    n_current: int = 0  # already in the current encoding
    reencoded: list[int] = field(default_factory=list)
    skipped_frozen: list[int] = field(default_factory=list)
    conflicts: list[tuple[int, int]] = field(default_factory=list)  # (image, existing duplicate)
    errors: list[tuple[int, str]] = field(default_factory=list)
    frozen_studies_changed: list[int] = field(default_factory=list)
    off_size: list[int] = field(default_factory=list)  # not IMAGE_SIZE: their length still differs

    def summary(self) -> str:
        return (
            f"checked {self.n_checked}: {len(self.reencoded)} re-encoded, {self.n_current} already current, "
            f"{len(self.skipped_frozen)} left alone (in opened studies), {len(self.conflicts)} duplicate "
            f"conflicts, {len(self.errors)} unreadable"
        )


def _frozen_image_ids() -> set[int]:
    return set(
        Image.objects.filter(study_items__study__status__in=FROZEN_STATUSES).values_list("pk", flat=True)
    )


def _read_pixels(image: Image) -> tuple[bytes, PILImage.Image]:
    with default_storage.open(image.file.name, "rb") as fh:
        data = fh.read()
    im = PILImage.open(io.BytesIO(data))
    im.load()
    return data, im.convert("RGB")


def image_reencode(*, image: Image, dry_run: bool = False) -> str:
    """Re-encode one image's file; returns "current", "reencoded" or "conflict:<pk>"."""
    data, pixels = _read_pixels(image)
    new = encode_png(pixels)
    if new == data:
        return "current"
    sha256 = hashlib.sha256(new).hexdigest()
    duplicate = Image.objects.filter(sha256=sha256).exclude(pk=image.pk).first()
    if duplicate is not None:
        return f"conflict:{duplicate.pk}"
    if dry_run:
        return "reencoded"
    old_name = image.file.name
    name = default_storage.save(f"library/{secrets.token_hex(16)}.png", ContentFile(new))
    try:
        with transaction.atomic():
            provenance = dict(image.provenance or {})
            provenance.setdefault("sha256_before_reencode", image.sha256)
            Image.objects.filter(pk=image.pk).update(file=name, sha256=sha256, provenance=provenance)
            transaction.on_commit(lambda: default_storage.delete(old_name))
    except BaseException:
        default_storage.delete(name)
        raise
    return "reencoded"


def images_reencode(*, include_frozen: bool = False, dry_run: bool = False) -> ReencodeReport:
    """Re-encode every library file that is not yet in the constant-size encoding."""
    report = ReencodeReport()
    size = image_size()
    frozen = _frozen_image_ids()
    frozen_studies: set[int] = set()
    for image in Image.objects.order_by("pk").iterator(chunk_size=200):
        report.n_checked += 1
        if (image.width, image.height) != (size, size):
            report.off_size.append(image.pk)
        if image.pk in frozen and not include_frozen:
            # Only count it as skipped when it actually needs work.
            try:
                data, pixels = _read_pixels(image)
            except (OSError, ValueError) as exc:
                report.errors.append((image.pk, str(exc)))
                continue
            if encode_png(pixels) == data:
                report.n_current += 1
            else:
                report.skipped_frozen.append(image.pk)
            continue
        try:
            outcome = image_reencode(image=image, dry_run=dry_run)
        except (OSError, ValueError) as exc:  # missing or unreadable file
            report.errors.append((image.pk, str(exc)))
            continue
        if outcome == "current":
            report.n_current += 1
        elif outcome == "reencoded":
            report.reencoded.append(image.pk)
            if image.pk in frozen:
                frozen_studies.update(
                    image.study_items.filter(study__status__in=FROZEN_STATUSES).values_list(
                        "study_id", flat=True
                    )
                )
        else:
            report.conflicts.append((image.pk, int(outcome.split(":")[1])))
    report.frozen_studies_changed = sorted(frozen_studies)
    return report
