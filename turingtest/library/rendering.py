"""Rendering generation batches: what each image is (spec, seed, provenance), rendering and
storing one chunk, recording failures and progress, a preview, and re-rendering one image.

``chunk_render`` is what the ``render_chunk`` task runs; it is safe to run twice (stored
indexes are skipped, ``unique(batch, batch_index)`` stops a concurrent duplicate).
Every image gets its seed from (batch seed, index), so its pixels never depend on the
other images rendered with it. The generator's sampling and semantic-map modules load
torch, so they are imported inside the functions that render.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage

import generator
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
    """The semantic map of image ``index`` of a batch (deterministic in batch seed and index)."""
    from generator.sampling import SpecDistribution, spec_for_index

    dist = SpecDistribution.from_dict(batch.distribution)
    return spec_for_index(dist, size=batch.image_size, batch_seed=batch.seed, index=index)


def spec_mask(spec: MapSpec) -> np.ndarray:
    """The union of a spec's lesion regions at its render size (the synthetic image's mask)."""
    mask = np.zeros((spec.size, spec.size), dtype=bool)
    for lesion in spec.lesions:
        mask |= lesion.region(spec.size)
    return mask


def synthetic_provenance(*, batch: GenerationBatch, index: int, seed: int, spec: MapSpec) -> dict[str, Any]:
    """What re-rendering the image needs (``image_rerender``), stored on its row."""
    return {
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
                    fitzpatrick=spec.fitzpatrick,
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


def batch_preview(
    *, checkpoint: GeneratorCheckpoint, distribution: SpecDistribution | dict[str, Any], seed: int, n: int = 4
) -> list[bytes]:
    """PNG bytes of the first ``n`` images a batch with these settings would render.

    Rendered in this process, exactly as the worker will (same specs and seeds), and
    normalized, so the admin sees what raters will see before committing a batch.
    """
    from generator.sampling import image_seed, spec_for_index

    dist = distribution_validate(checkpoint=checkpoint, distribution=distribution)
    specs = [spec_for_index(dist, size=checkpoint.image_size, batch_seed=seed, index=i) for i in range(n)]
    images = renderer_get(checkpoint).render(specs, [image_seed(seed, i) for i in range(n)])
    return [normalize(im).data for im in images]
