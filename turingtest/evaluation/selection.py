"""Image sets of an evaluation: parse a filter, select library images, load them back in order.

A run fixes its image ids at creation (``services``) and reads exactly those when it
executes (``runs``), so what it measured is recorded and reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import QuerySet
from PIL import Image as PILImage

from turingtest.library.models import Condition, Image

FILTER_KEYS = ("condition", "fitzpatrick", "batch", "ids", "procedural", "patient")


class EvaluationError(ValueError):
    """A request the evaluation refuses; the message is meant for the person who made it."""


def filter_parse(items: Iterable[str]) -> dict[str, Any]:
    """``["condition=MEL,NEV", "fitzpatrick=5,6"]`` -> ``{"condition": ["MEL", "NEV"], "fitzpatrick": [5, 6]}``.

    Keys: condition (codes), fitzpatrick (1–6), batch (generation batch ids), ids
    (image ids), patient (patient ids), procedural (true/false: procedural demo stand-ins).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in FILTER_KEYS:
            raise EvaluationError(
                f"bad filter {item!r}: use KEY=V1,V2 with KEY one of {', '.join(FILTER_KEYS)}"
            )
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise EvaluationError(f"filter {key} has no values")
        if key == "procedural":
            if len(values) != 1 or values[0].lower() not in {"true", "false"}:
                raise EvaluationError("procedural must be true or false")
            out[key] = values[0].lower() == "true"
        elif key in {"fitzpatrick", "batch", "ids"}:
            try:
                out[key] = sorted(int(v) for v in values)
            except ValueError:
                raise EvaluationError(f"filter {key} takes integers, got {raw!r}") from None
        else:
            out[key] = sorted(values)
    return out


def images_select(*, kind: str, filter: dict[str, Any]) -> QuerySet[Image]:
    """Library images of ``kind`` matching a parsed filter, in id order."""
    unknown = set(filter) - set(FILTER_KEYS)
    if unknown:
        raise EvaluationError(f"unknown filter keys: {sorted(unknown)}")
    qs = Image.objects.filter(kind=kind).select_related("condition").order_by("pk")
    if "condition" in filter:
        codes = list(filter["condition"])
        known = set(Condition.objects.filter(code__in=codes).values_list("code", flat=True))
        if set(codes) - known:
            raise EvaluationError(f"unknown condition codes: {sorted(set(codes) - known)}")
        qs = qs.filter(condition__code__in=codes)
    if "fitzpatrick" in filter:
        qs = qs.filter(fitzpatrick__in=filter["fitzpatrick"])
    if "batch" in filter:
        qs = qs.filter(batch_id__in=filter["batch"])
    if "ids" in filter:
        qs = qs.filter(pk__in=filter["ids"])
    if "patient" in filter:
        qs = qs.filter(patient_id__in=filter["patient"])
    if "procedural" in filter:
        qs = (
            qs.filter(provenance__procedural=True)
            if filter["procedural"]
            else qs.exclude(provenance__procedural=True)
        )
    return qs


def inputs_sha256(*sets: Sequence[Image]) -> str:
    """One hash of the sets' pixels (order-free within a set), so runs on the same inputs are recognisable."""
    digest = hashlib.sha256()
    for images in sets:
        for sha in sorted(im.sha256 for im in images):
            digest.update(sha.encode())
        digest.update(b"|")
    return digest.hexdigest()


def pixels_load(images: Sequence[Image], size: int | None = None) -> list[PILImage.Image]:
    """RGB pixels of library images; ``size`` downsizes on load so large sets stay small in memory."""
    out = []
    for image in images:
        with image.file.open("rb") as fh, PILImage.open(fh) as im:
            rgb = im.convert("RGB")
            out.append(
                rgb.resize((size, size), PILImage.BILINEAR) if size and rgb.size != (size, size) else rgb
            )
    return out


def images_ordered(ids: Sequence[int]) -> list[Image]:
    """The images of ``ids`` in that order; a deleted one is an error naming it."""
    by_id = Image.objects.select_related("condition").in_bulk(list(ids))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise EvaluationError(f"images of this run were deleted since it was created: {missing[:10]}")
    return [by_id[i] for i in ids]
