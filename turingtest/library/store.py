"""Storing images: the one way an image enters the library, condition lookup, and the library's errors.

``image_store`` normalizes (``turingtest.images.normalize``), estimates the skin colour
when none is given, refuses identical pixels twice and writes file and row together: a
row that cannot be written takes its files with it. Imports and rendering build on it.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage

from turingtest.images import NormalizedImage, normalize
from turingtest.library.models import Condition, GenerationBatch, Image, MaskSource

if TYPE_CHECKING:
    from generator.semantic_map import SkinEstimate

logger = logging.getLogger(__name__)


class LibraryError(ValueError):
    """A request the library refuses; the message is meant for the admin who made it."""


class DuplicateImage(LibraryError):
    def __init__(self, existing: Image) -> None:
        super().__init__(f"identical pixels are already stored as image {existing.pk}")
        self.existing = existing


# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------


class ConditionLookup:
    """Resolves dataset labels (codes, names, synonyms, any case) to ``Condition`` rows."""

    def __init__(self) -> None:
        self._by_key: dict[str, Condition] = {}
        for condition in Condition.objects.all():
            for key in [condition.code, condition.name, *(condition.synonyms or [])]:
                self._by_key.setdefault(self._key(key), condition)

    @staticmethod
    def _key(value: str) -> str:
        return re.sub(r"[\s_\-]+", " ", str(value)).strip().lower()

    def get(self, value: str) -> Condition | None:
        return self._by_key.get(self._key(value)) if value and str(value).strip() else None


def condition_get(value: Condition | str) -> Condition:
    if isinstance(value, Condition):
        return value
    found = ConditionLookup().get(value)
    if found is None:
        raise LibraryError(f"unknown condition {value!r}")
    return found


# ---------------------------------------------------------------------------
# Storing images
# ---------------------------------------------------------------------------


def _storage_name() -> str:
    """Opaque, kind-independent name: the same folder and extension for every file."""
    return f"library/{secrets.token_hex(16)}.png"


def _skin(normalized: NormalizedImage) -> SkinEstimate | None:
    # Imported here: generator.semantic_map loads torch, which the web process should not pay for.
    from generator.semantic_map import estimate_skin_colour

    try:
        return estimate_skin_colour(normalized.pixels, normalized.mask)
    except ValueError:
        # e.g. a mask covering the whole image leaves no healthy skin to look at
        return None


def _mask_source(*, kind: str, has_mask: bool) -> str:
    """A mask stored with the image came with it: the dataset's, or a render's own semantic map."""
    if not has_mask:
        return ""
    return MaskSource.RENDERED if kind == Image.Kind.SYNTHETIC else MaskSource.IMPORTED


def image_fields(
    *,
    normalized: NormalizedImage,
    kind: str,
    condition: Condition,
    provenance: dict,
    fitzpatrick: int | None,
    skin_rgb: tuple[int, int, int] | None,
    patient_id: str,
    batch: GenerationBatch | None,
    batch_index: int | None,
) -> dict[str, Any]:
    """The ``Image`` row's fields for normalized pixels (shared with the bulk import, which inserts later)."""
    provenance = dict(provenance)
    estimate = _skin(normalized)
    source = Image.FitzpatrickSource.LABEL if fitzpatrick is not None else Image.FitzpatrickSource.NONE
    if fitzpatrick is None and estimate is not None:
        fitzpatrick = int(estimate.fitzpatrick)
        source = Image.FitzpatrickSource.ESTIMATE
    if skin_rgb is None and estimate is not None:
        skin_rgb = tuple(int(v) for v in estimate.rgb)
    return {
        "kind": kind,
        "condition": condition,
        "fitzpatrick": fitzpatrick,
        "fitzpatrick_source": source,
        "skin_rgb": list(skin_rgb) if skin_rgb is not None else None,
        "ita_degrees": round(float(estimate.ita_degrees), 3) if estimate is not None else None,
        "lesion_area_fraction": normalized.lesion_area_fraction(),
        "lesion_bbox": normalized.lesion_bbox(),
        "mask_source": _mask_source(kind=kind, has_mask=normalized.mask is not None),
        "sha256": normalized.sha256,
        "width": normalized.size,
        "height": normalized.size,
        "native_width": normalized.native_size[0] if normalized.native_size else None,
        "native_height": normalized.native_size[1] if normalized.native_size else None,
        "provenance": provenance,
        "patient_id": patient_id or "",
        "batch": batch,
        "batch_index": batch_index,
    }


def file_write(data: bytes) -> str:
    """Save PNG bytes under an opaque name; returns the storage name."""
    return default_storage.save(_storage_name(), ContentFile(data))


def files_write(normalized: NormalizedImage) -> tuple[str, str]:
    """Save the image (and its mask, if any) under opaque names; returns (name, mask name or "")."""
    name = file_write(normalized.data)
    mask_name = file_write(normalized.mask_data) if normalized.mask_data is not None else ""
    return name, mask_name


def image_thumbnail_png(*, image: Image, size: int) -> bytes:
    """A ``size``-pixel PNG of a stored image for admin pages (box-filtered: a fair small view)."""
    with default_storage.open(image.file.name, "rb") as fh, PILImage.open(fh) as im:
        small = im.convert("RGB").resize((size, size), PILImage.Resampling.BOX)
    out = io.BytesIO()
    small.save(out, format="PNG")
    return out.getvalue()


def files_delete(*names: str) -> None:
    """Remove stored files whose row was never written; a missing file is only logged."""
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("could not delete orphan file %s", name)


def image_store(
    *,
    pil_image: PILImage.Image | bytes | str | Path,
    kind: str,
    condition: Condition | str,
    provenance: dict,
    mask: np.ndarray | PILImage.Image | str | Path | None = None,
    fitzpatrick: int | None = None,
    skin_rgb: tuple[int, int, int] | None = None,
    patient_id: str = "",
    batch: GenerationBatch | None = None,
    batch_index: int | None = None,
    if_duplicate: str = "raise",
) -> Image:
    """Normalize an image and add it to the library; the one way the platform adds images.

    Without ``fitzpatrick`` the skin type comes from ``generator.semantic_map.
    estimate_skin_colour`` on the healthy skin (outside ``mask``, or a border ring).
    Identical pixels are stored once: ``if_duplicate="raise"`` raises ``DuplicateImage``,
    ``"existing"`` returns the stored image. The file is removed again if the row
    cannot be written, so a failure leaves nothing behind.
    """
    if kind not in Image.Kind.values:
        raise LibraryError(f"kind must be one of {Image.Kind.values}, got {kind!r}")
    if fitzpatrick is not None and not 1 <= int(fitzpatrick) <= 6:
        raise LibraryError(f"fitzpatrick must be 1–6, got {fitzpatrick!r}")
    normalized = normalize(pil_image, mask=mask)
    existing = Image.objects.filter(sha256=normalized.sha256).first()
    if existing is not None:
        if if_duplicate == "existing":
            return existing
        raise DuplicateImage(existing)
    fields = image_fields(
        normalized=normalized,
        kind=kind,
        condition=condition_get(condition),
        provenance=provenance,
        fitzpatrick=int(fitzpatrick) if fitzpatrick is not None else None,
        skin_rgb=skin_rgb,
        patient_id=patient_id,
        batch=batch,
        batch_index=batch_index,
    )
    name, mask_name = files_write(normalized)
    try:
        with transaction.atomic():
            return Image.objects.create(file=name, mask=mask_name, **fields)
    except BaseException:
        files_delete(name, mask_name)
        raise
