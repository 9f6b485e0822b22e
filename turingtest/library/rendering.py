"""Rendering generation batches: what each image is (spec, seed, provenance; or, for a batch
matched to real images, the spec that mirrors one), rendering and storing one chunk, recording
failures and progress, a preview, and re-rendering one image.

``chunk_render`` is what the ``render_chunk`` task runs; it is safe to run twice (stored
indexes are skipped, ``unique(batch, batch_index)`` stops a concurrent duplicate).
Every image gets its seed from (batch seed, index), so its pixels never depend on the
other images rendered with it. The generator's sampling and semantic-map modules load
torch, so they are imported inside the functions that render.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage

import generator
from turingtest.core.failures import job_failure_notify
from turingtest.images import normalize
from turingtest.library.checkpoints import renderer_get
from turingtest.library.models import Condition, GenerationBatch, GenerationChunk, GeneratorCheckpoint, Image
from turingtest.library.store import DuplicateImage, LibraryError, image_store

if TYPE_CHECKING:
    from generator.sampling import SpecDistribution
    from generator.semantic_map import MapSpec


def distribution_validate(
    *, checkpoint: GeneratorCheckpoint, distribution: SpecDistribution | dict[str, Any]
) -> SpecDistribution:
    """A ``SpecDistribution`` whose conditions the checkpoint knows and the library has."""
    from generator.sampling import SpecDistribution

    try:
        dist = (
            distribution
            if isinstance(distribution, SpecDistribution)
            else SpecDistribution.from_dict(distribution)
        )
        dist.validate()
    except (ValueError, TypeError, KeyError) as exc:
        raise LibraryError(f"invalid spec distribution: {exc}") from None
    unknown = sorted(set(dist.condition_weights) - set(checkpoint.conditions))
    if unknown:
        raise LibraryError(
            f"condition(s) {', '.join(unknown)} are not in the checkpoint's conditions "
            f"({', '.join(checkpoint.conditions)})"
        )
    missing = sorted(set(dist.condition_weights) - set(Condition.objects.values_list("code", flat=True)))
    if missing:
        raise LibraryError(f"condition(s) {', '.join(missing)} are not in the library's taxonomy")
    return dist


def spec_for(batch: GenerationBatch, index: int) -> MapSpec:
    """The semantic map of image ``index`` of a batch (deterministic in batch seed and index).

    A matched batch stores its specs (``GenerationBatch.specs``); any other batch draws
    them from its distribution.
    """
    from generator.sampling import SpecDistribution, spec_for_index
    from generator.semantic_map import MapSpec

    if batch.specs is not None:
        return MapSpec.from_dict(batch.specs[index]["spec"])
    dist = SpecDistribution.from_dict(batch.distribution)
    return spec_for_index(dist, size=batch.image_size, batch_seed=batch.seed, index=index)


# ---------------------------------------------------------------------------
# Matching real images
# ---------------------------------------------------------------------------

MATCH_DEFAULT_AREA = 0.05  # a real image without a mask or box: a centred lesion of this area
_MAX_ASPECT = 20.0  # LesionSpec's limit


def _ellipse_from_mask(mask: np.ndarray) -> tuple[tuple[float, float], float, float, float] | None:
    """(centre, area, aspect, angle°) of the ellipse with the mask's area, centroid and second moments.

    A filled ellipse with radii a >= b has variance a²/4 along its long axis and b²/4
    along its short one, so aspect = sqrt(λ_long / λ_short) of the pixel covariance, and
    the long axis is the eigenvector of λ_long. Angles follow ``LesionSpec``: counter-
    clockwise on screen from +x, where image rows grow downwards.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x, y = (xs + 0.5) / w, (ys + 0.5) / h
    area = len(xs) / (h * w)
    aspect, angle = 1.0, 0.0
    if len(xs) > 2:
        evals, evecs = np.linalg.eigh(np.cov(np.stack([x, y])))  # ascending eigenvalues
        short, long = max(float(evals[0]), 0.0), float(evals[1])
        aspect = math.sqrt(long / short) if short > 0 else _MAX_ASPECT
        vx, vy = evecs[:, 1]
        angle = math.degrees(math.atan2(-vy, vx)) % 180.0
    return (float(x.mean()), float(y.mean())), area, aspect, angle


def _mask_pixels(image: Image) -> np.ndarray | None:
    if not image.mask:
        return None
    try:
        with default_storage.open(image.mask.name, "rb") as fh:
            return np.asarray(PILImage.open(fh).convert("L")) > 127
    except (OSError, ValueError):
        return None  # a missing or unreadable mask file: fall back on the stored box


def _lesion_geometry(image: Image) -> tuple[str, tuple[float, float], float, float, float]:
    """Where the real image's lesion is: from its mask, else its stored box and area, else a default."""
    mask = _mask_pixels(image)
    ellipse = _ellipse_from_mask(mask) if mask is not None else None
    if ellipse is not None:
        return ("mask", *ellipse)
    if image.lesion_bbox and image.lesion_area_fraction:
        x0, y0, x1, y1 = (float(v) for v in image.lesion_bbox)
        bw, bh = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
        aspect = max(bw, bh) / min(bw, bh)
        angle = 0.0 if bw >= bh else 90.0
        return "box", ((x0 + x1) / 2, (y0 + y1) / 2), float(image.lesion_area_fraction), aspect, angle
    return "default", (0.5, 0.5), MATCH_DEFAULT_AREA, 1.0, 0.0


def spec_mirroring(*, image: Image, size: int) -> dict[str, Any]:
    """What a synthetic mirror of a real image is rendered from, as stored in ``GenerationBatch.specs``.

    The spec has the real image's condition, one elliptic lesion with its lesion's area,
    centroid and orientation (``geometry`` says whether they came from its ``mask``, its
    stored ``box``, or a centred ``default`` when it has neither), and its estimated
    healthy-skin colour (``Image.skin_rgb``, else its Fitzpatrick type). ``fitzpatrick``
    is the type the mirror is stored with: the real image's label, never an estimate.
    """
    from generator.semantic_map import LesionSpec, MapSpec

    geometry, centre, area, aspect, angle = _lesion_geometry(image)
    area = min(max(area, 1e-6), 1.0)
    # The longest ellipse LesionSpec accepts fits the image's diagonal: area · aspect <= π/2.
    aspect = max(1.0, min(aspect, _MAX_ASPECT, 0.999 * math.pi / (2 * area)))
    centre = (min(max(centre[0], 0.0), 1.0), min(max(centre[1], 0.0), 1.0))
    lesion = LesionSpec(
        image.condition.code, center=centre, area_fraction=area, aspect=aspect, angle_deg=angle
    )
    if image.skin_rgb:
        spec = MapSpec(size=size, lesions=(lesion,), skin_rgb=tuple(int(v) for v in image.skin_rgb))
    elif image.fitzpatrick:
        spec = MapSpec(size=size, lesions=(lesion,), fitzpatrick=int(image.fitzpatrick))
    else:
        raise LibraryError(
            f"real image {image.pk} has neither a skin colour nor a Fitzpatrick type to mirror"
        )
    is_label = image.has_labelled_fitzpatrick
    return {
        "mirrors_image_id": image.pk,
        "geometry": geometry,
        "jittered": False,
        "fitzpatrick": image.fitzpatrick if is_label else None,
        "spec": spec.to_dict(),
    }


_JITTER_STREAM = 0x317  # keeps the jitter apart from the spec and render streams of the same index


def spec_jitter(entry: dict[str, Any], *, batch_seed: int, index: int) -> dict[str, Any]:
    """A mirror entry moved slightly, seeded by (batch seed, index): for a second mirror of one image.

    Two mirrors with the same spec differ only in their render seed, and a network without
    dropout ignores that seed: the pixels would be identical (stored once, so the batch
    would fail). So every repeat shifts the lesion's centre by at most 0.04 of the image,
    turns it by at most 20° and scales its area by at most ±10%.
    """
    from generator.semantic_map import LesionSpec, MapSpec

    rng = np.random.default_rng([int(batch_seed), int(index), _JITTER_STREAM])
    spec = MapSpec.from_dict(entry["spec"])
    lesion = spec.lesions[0]
    x, y = (min(max(v + float(rng.uniform(-0.04, 0.04)), 0.0), 1.0) for v in lesion.center)
    area = min(lesion.area_fraction * math.exp(float(rng.uniform(-0.1, 0.1))), 1.0)
    moved = LesionSpec(
        lesion.condition,
        center=(x, y),
        area_fraction=area,
        aspect=max(1.0, min(lesion.aspect, 0.999 * math.pi / (2 * area))),
        angle_deg=(lesion.angle_deg + float(rng.uniform(-20.0, 20.0))) % 180.0,
    )
    jittered = MapSpec(
        size=spec.size,
        lesions=(moved,),
        skin_rgb=spec.skin_rgb,
        fitzpatrick=spec.fitzpatrick,
        ita_degrees=spec.ita_degrees,
    )
    return {**entry, "jittered": True, "spec": jittered.to_dict()}


def spec_mask(spec: MapSpec) -> np.ndarray:
    """The union of a spec's lesion regions at its render size (the synthetic image's mask)."""
    mask = np.zeros((spec.size, spec.size), dtype=bool)
    for lesion in spec.lesions:
        mask |= lesion.region(spec.size)
    return mask


def synthetic_provenance(*, batch: GenerationBatch, index: int, seed: int, spec: MapSpec) -> dict[str, Any]:
    """What re-rendering the image needs (``image_rerender``), stored on its row; for a matched
    batch also the real image it mirrors (researchers only: no rater-facing code reads provenance)."""
    match = {}
    if batch.specs is not None:
        entry = batch.specs[index]
        match = {
            "mirrors_image_id": entry["mirrors_image_id"],
            "mirror_geometry": entry["geometry"],
            "mirror_jittered": entry["jittered"],
        }
    return {
        **match,
        "batch": batch.pk,
        "index": index,
        "seed": seed,
        "batch_seed": batch.seed,
        "checkpoint_sha256": batch.checkpoint.sha256,
        "spec": spec.to_dict(),
        "generator_version": batch.checkpoint.generator_version or str(getattr(generator, "__version__", "")),
    }


def image_rerender(*, image: Image) -> PILImage.Image:
    """Render a synthetic image again from its provenance alone (same pixels, same device)."""
    from generator.semantic_map import MapSpec

    prov = image.provenance
    checkpoint = GeneratorCheckpoint.objects.get(sha256=prov["checkpoint_sha256"])
    spec = MapSpec.from_dict(prov["spec"])
    return renderer_get(checkpoint).render([spec], [int(prov["seed"])])[0]


def chunk_render(*, chunk_pk: int) -> str:
    """Render and store the missing images of one chunk; running it twice changes nothing.

    Indexes already stored are skipped, and ``unique(batch, batch_index)`` stops a
    concurrent duplicate, so a redelivered chunk (worker killed) finishes the work
    without duplicating or losing images. Returns a short outcome for logs.
    """
    from generator.sampling import image_seed

    chunk = GenerationChunk.objects.select_related("batch__checkpoint").get(pk=chunk_pk)
    batch = chunk.batch
    if chunk.status == GenerationChunk.Status.DONE:
        return "already done"
    if batch.status in {GenerationBatch.Status.CANCELLED, GenerationBatch.Status.FAILED}:
        GenerationChunk.objects.filter(
            pk=chunk_pk, status__in=[GenerationChunk.Status.QUEUED, GenerationChunk.Status.RUNNING]
        ).update(status=GenerationChunk.Status.CANCELLED)
        return f"batch {batch.status}"
    now = timezone.now()
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.RUNNING, attempts=F("attempts") + 1, started=now, error=""
    )
    GenerationBatch.objects.filter(pk=batch.pk, status=GenerationBatch.Status.QUEUED).update(
        status=GenerationBatch.Status.RUNNING, started=now
    )
    stored = set(
        Image.objects.filter(
            batch=batch, batch_index__gte=chunk.start, batch_index__lt=chunk.stop
        ).values_list("batch_index", flat=True)
    )
    todo = [i for i in range(chunk.start, chunk.stop) if i not in stored]
    render_seconds = 0.0
    if todo:
        renderer = renderer_get(batch.checkpoint)
        specs = [spec_for(batch, i) for i in todo]
        seeds = [image_seed(batch.seed, i) for i in todo]
        t0 = time.perf_counter()
        images = renderer.render(specs, seeds)
        render_seconds = time.perf_counter() - t0
        for index, spec, seed, pil in zip(todo, specs, seeds, images):
            condition = spec.lesions[0].condition
            try:
                image_store(
                    pil_image=pil,
                    kind=Image.Kind.SYNTHETIC,
                    condition=condition,
                    provenance=synthetic_provenance(batch=batch, index=index, seed=seed, spec=spec),
                    mask=spec_mask(spec),
                    fitzpatrick=batch.specs[index]["fitzpatrick"] if batch.specs else spec.fitzpatrick,
                    skin_rgb=spec.resolved_skin_rgb(),
                    batch=batch,
                    batch_index=index,
                )
            except DuplicateImage as exc:
                if (exc.existing.batch_id, exc.existing.batch_index) != (batch.pk, index):
                    raise
                # another delivery of this chunk stored it first: exactly what idempotency means
            except IntegrityError:
                if not Image.objects.filter(batch=batch, batch_index=index).exists():
                    raise
                # the same, when both deliveries passed the duplicate check at the same moment
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.DONE, finished=timezone.now()
    )
    batch_progress_update(batch_pk=batch.pk, render_seconds=render_seconds)
    return f"rendered {len(todo)} of {chunk.stop - chunk.start}"


def batch_progress_update(*, batch_pk: int, render_seconds: float = 0.0) -> GenerationBatch:
    """Recount stored images and finish the batch when every chunk is done."""
    with transaction.atomic():
        batch = GenerationBatch.objects.select_for_update().get(pk=batch_pk)
        batch.n_done = batch.images.count()
        batch.render_seconds += render_seconds
        fields = ["n_done", "render_seconds"]
        pending = batch.chunks.exclude(status=GenerationChunk.Status.DONE).exists()
        if not pending and batch.status in {GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING}:
            if batch.n_done == batch.count:
                batch.status = GenerationBatch.Status.SUCCEEDED
            else:
                batch.status = GenerationBatch.Status.FAILED
                batch.error = f"all chunks finished but {batch.n_done} of {batch.count} images are stored"
                fields.append("error")
            batch.finished = timezone.now()
            fields += ["status", "finished"]
        batch.save(update_fields=fields)
    if batch.status == GenerationBatch.Status.FAILED:  # failed here, by a chunk, or earlier (once only)
        job_failure_notify(job=batch)
    return batch


def chunk_fail(*, chunk_pk: int, error: str) -> None:
    """A chunk failed for good: the batch fails with that error (other chunks then stop)."""
    chunk = GenerationChunk.objects.get(pk=chunk_pk)
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.FAILED, error=error[:5000], finished=timezone.now()
    )
    GenerationBatch.objects.filter(
        pk=chunk.batch_id, status__in=[GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING]
    ).update(
        status=GenerationBatch.Status.FAILED,
        error=f"chunk {chunk.number} [{chunk.start}, {chunk.stop}): {error}"[:5000],
        finished=timezone.now(),
    )
    batch_progress_update(batch_pk=chunk.batch_id)


@dataclass(frozen=True)
class PreviewImage:
    """One preview render and the caption that lets the admin check it against the spec."""

    png: bytes
    caption: str


def spec_caption(spec: MapSpec) -> str:
    """``"MEL · Fitzpatrick type 2 · lesion 4.1% of the image"``: what a preview was asked to show."""
    conditions = " + ".join(dict.fromkeys(lesion.condition for lesion in spec.lesions))
    if spec.fitzpatrick is not None:
        skin = f"Fitzpatrick type {spec.fitzpatrick}"
    elif spec.skin_rgb is not None:
        skin = "skin rgb({}, {}, {})".format(*spec.skin_rgb)
    else:
        skin = f"skin ITA {spec.ita_degrees:.0f}°"
    return f"{conditions} · {skin} · lesion {spec_mask(spec).mean():.1%} of the image"


def batch_preview(
    *, checkpoint: GeneratorCheckpoint, distribution: SpecDistribution | dict[str, Any], seed: int, n: int = 4
) -> list[PreviewImage]:
    """The first ``n`` images a batch with these settings would render, each with its spec's caption.

    Rendered in this process, exactly as the worker will (same specs and seeds), and
    normalized, so the admin sees what raters will see before committing a batch.
    """
    from generator.sampling import image_seed, spec_for_index

    dist = distribution_validate(checkpoint=checkpoint, distribution=distribution)
    specs = [spec_for_index(dist, size=checkpoint.image_size, batch_seed=seed, index=i) for i in range(n)]
    images = renderer_get(checkpoint).render(specs, [image_seed(seed, i) for i in range(n)])
    return [
        PreviewImage(png=normalize(im).data, caption=spec_caption(spec)) for im, spec in zip(images, specs)
    ]
