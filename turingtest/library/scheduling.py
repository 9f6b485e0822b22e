"""Scheduling: the only module of the library that enqueues work (generation batches, zip imports, masks).

Rows first, then the enqueue after commit through ``turingtest.queue``: a broker that is
down raises ``BrokerUnavailable`` before anything is written, and one that fails during
the send leaves the row failed with its message (and raises too), so no batch or import
ever says *queued* while nothing will run it. In the embedded default (no broker) the
tasks run eagerly before these functions return.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from turingtest import queue
from turingtest.celery import app
from turingtest.library import tasks
from turingtest.library.checkpoints import checkpoint_register
from turingtest.library.imports import IMPORT_FORMATS
from turingtest.library.models import (
    Condition,
    GenerationBatch,
    GenerationChunk,
    GeneratorCheckpoint,
    Image,
    ImportJob,
    MaskJob,
)
from turingtest.library.rendering import distribution_validate, spec_jitter, spec_mirroring
from turingtest.library.store import LibraryError
from turingtest.trail.services import Action, event_record

if TYPE_CHECKING:
    from generator.sampling import SpecDistribution

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 16
MAX_PER_REAL = 100
DEMO_CHECKPOINT = Path(settings.BASE_DIR) / "fixtures" / "dermgan-demo.pt"


class BrokerUnavailable(LibraryError, queue.BrokerUnavailable):
    """The task broker could not be reached: nothing was (or will be) rendered or imported."""


def _broker_check() -> None:
    try:
        queue.broker_check()
    except queue.BrokerUnavailable as exc:
        raise BrokerUnavailable(str(exc)) from None


def _raise_if_not_enqueued(row: GenerationBatch | ImportJob | MaskJob) -> None:
    """After commit the send has happened: a row it left failed means the broker refused it."""
    row.refresh_from_db()
    if row.status == row.Status.FAILED and row.error.startswith("could not enqueue"):
        raise BrokerUnavailable(row.error)


def batch_schedule(
    *,
    checkpoint: GeneratorCheckpoint,
    count: int,
    seed: int,
    distribution: SpecDistribution | dict[str, Any],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_at: datetime | None = None,
    priority: int = 0,
    created_by=None,
    check_broker: bool = True,
) -> GenerationBatch:
    """Create a batch and its chunks, and enqueue one ``render_chunk`` task per chunk after commit.

    A broker that cannot be reached raises ``BrokerUnavailable`` before anything is
    written. If the enqueue itself fails after commit, the batch is marked failed with
    the broker's message and ``BrokerUnavailable`` is raised too: never a batch that
    says queued while nothing will render it. In the embedded default (no broker)
    the chunks render eagerly before this returns.
    """
    if count < 1:
        raise LibraryError(f"count must be at least 1, got {count}")
    dist = distribution_validate(checkpoint=checkpoint, distribution=distribution)
    return _batch_create(
        checkpoint=checkpoint,
        count=count,
        seed=seed,
        distribution=dist.to_dict(),
        specs=None,
        chunk_size=chunk_size,
        start_at=start_at,
        priority=priority,
        created_by=created_by,
        check_broker=check_broker,
    )


def real_images_select(*, conditions: Sequence[str] = (), fitzpatrick: Sequence[int] = ()) -> QuerySet[Image]:
    """Real images to mirror, by condition code and by *labelled* Fitzpatrick type.

    A type the import estimated from the photo is not a label, so a Fitzpatrick filter
    leaves those images out rather than trusting the estimate.
    """
    codes = [c.strip().upper() for c in conditions if c.strip()]
    unknown = sorted(
        set(codes) - set(Condition.objects.filter(code__in=codes).values_list("code", flat=True))
    )
    if unknown:
        raise LibraryError(f"unknown condition code(s): {', '.join(unknown)}")
    images = Image.objects.filter(kind=Image.Kind.REAL).select_related("condition").order_by("pk")
    if codes:
        images = images.filter(condition__code__in=codes)
    if fitzpatrick:
        images = images.fitzpatrick_labelled().filter(fitzpatrick__in=list(fitzpatrick))
    return images


def batch_schedule_matched(
    *,
    checkpoint: GeneratorCheckpoint,
    images: Iterable[Image],
    seed: int,
    per_real: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_at: datetime | None = None,
    priority: int = 0,
    created_by=None,
    check_broker: bool = True,
) -> GenerationBatch:
    """Schedule ``per_real`` synthetic mirrors of each real image: same condition, lesion area,
    location and skin colour (``rendering.spec_mirroring``).

    Mirrors of one real image are adjacent (indexes ``k·per_real …``, images in id
    order); the first has its real image's geometry, repeats are moved slightly
    (``spec_jitter``) and all differ in their render seed. The specs are derived now and stored
    on the batch, so chunks re-run later render exactly the same images. Refuses,
    naming them, synthetic images and real images whose condition the checkpoint
    cannot render.
    """
    reals = sorted({image.pk: image for image in images}.values(), key=lambda image: image.pk)
    if not reals:
        raise LibraryError("no real image to match: the selection is empty")
    if not 1 <= per_real <= MAX_PER_REAL:
        raise LibraryError(f"per-real count must be 1–{MAX_PER_REAL}, got {per_real}")
    synthetic = [str(image.pk) for image in reals if image.kind != Image.Kind.REAL]
    if synthetic:
        raise LibraryError(f"only real images can be mirrored; synthetic: {', '.join(synthetic)}")
    unrenderable: dict[str, list[str]] = {}
    for image in reals:
        if image.condition.code not in checkpoint.conditions:
            unrenderable.setdefault(image.condition.code, []).append(str(image.pk))
    if unrenderable:
        which = "; ".join(
            f"{code} (real images {', '.join(pks)})" for code, pks in sorted(unrenderable.items())
        )
        raise LibraryError(
            f"the checkpoint cannot render condition(s) {which}: its conditions are "
            f"{', '.join(checkpoint.conditions)}; leave those images out"
        )
    mirrors = [spec_mirroring(image=image, size=checkpoint.image_size) for image in reals]
    specs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in (entry for entry in mirrors for _ in range(per_real)):
        key = json.dumps(entry["spec"], sort_keys=True)
        if key in seen:  # a repeat would render the same pixels on a network that ignores its seed
            entry = spec_jitter(entry, batch_seed=seed, index=len(specs))
        seen.add(key)
        specs.append(entry)
    mix = Counter(image.condition.code for image in reals)
    dist = distribution_validate(
        checkpoint=checkpoint,
        distribution={"condition_weights": {c: float(n) for c, n in sorted(mix.items())}},
    )
    return _batch_create(
        checkpoint=checkpoint,
        count=len(specs),
        seed=seed,
        distribution=dist.to_dict(),
        specs=specs,
        chunk_size=chunk_size,
        start_at=start_at,
        priority=priority,
        created_by=created_by,
        check_broker=check_broker,
    )


def _batch_create(
    *,
    checkpoint: GeneratorCheckpoint,
    count: int,
    seed: int,
    distribution: dict[str, Any],
    specs: list[dict[str, Any]] | None,
    chunk_size: int,
    start_at: datetime | None,
    priority: int,
    created_by,
    check_broker: bool,
) -> GenerationBatch:
    if not 1 <= chunk_size <= 1024:
        raise LibraryError(f"chunk size must be 1–1024, got {chunk_size}")
    if not 0 <= priority <= 9:
        raise LibraryError(f"priority must be 0–9, got {priority}")
    for other in GenerationBatch.objects.filter(checkpoint=checkpoint, seed=seed):
        same = other.distribution == distribution and other.specs == specs
        if same and (other.n_done or not other.is_finished):
            raise LibraryError(
                f"batch {other.pk} already renders this checkpoint, seed and distribution: "
                "its images would be identical; choose another seed"
            )
    if check_broker:
        _broker_check()
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            checkpoint=checkpoint,
            count=count,
            seed=seed,
            image_size=checkpoint.image_size,
            distribution=distribution,
            specs=specs,
            chunk_size=chunk_size,
            start_at=start_at,
            priority=priority,
            created_by=created_by,
        )
        GenerationChunk.objects.bulk_create(
            GenerationChunk(batch=batch, number=n, start=start, stop=min(start + chunk_size, count))
            for n, start in enumerate(range(0, count, chunk_size))
        )
        event_record(
            action=Action.BATCH_SCHEDULED,
            actor=created_by,
            obj=batch,
            after={
                "checkpoint_sha256": checkpoint.sha256,
                "count": count,
                "seed": seed,
                "chunk_size": chunk_size,
                "priority": priority,
                "start_at": start_at,
            },
        )
        transaction.on_commit(partial(_batch_enqueue, batch.pk))
    _raise_if_not_enqueued(batch)
    return batch


def _batch_enqueue(batch_pk: int) -> None:
    batch = GenerationBatch.objects.get(pk=batch_pk)
    chunk_pks = list(batch.chunks.filter(status=GenerationChunk.Status.QUEUED).values_list("pk", flat=True))
    for chunk_pk in chunk_pks:
        options: dict[str, Any] = {
            "queue": "gpu",
            "priority": _broker_priority(batch.priority, app.conf.broker_url),
        }
        if batch.start_at and batch.start_at > timezone.now():
            options["eta"] = batch.start_at
        result = queue.send_or_fail(
            partial(tasks.render_chunk.apply_async, kwargs={"chunk_pk": chunk_pk}, **options),
            model=GenerationBatch,
            pk=batch_pk,
            what="the batch (task broker unreachable)",
        )
        if result is None:
            batch.chunks.filter(status=GenerationChunk.Status.QUEUED).update(
                status=GenerationChunk.Status.CANCELLED
            )
            return
        GenerationChunk.objects.filter(pk=chunk_pk).update(task_id=result.id or "")


def _broker_priority(priority: int, broker_url: str) -> int:
    """Our priority is 0–9, higher first. Redis (kombu's emulation) serves *lower* numbers first."""
    return 9 - priority if str(broker_url).startswith(("redis", "rediss")) else priority


def batch_cancel(*, batch: GenerationBatch) -> int:
    """Stop a batch: unstarted chunks are cancelled and their tasks revoked.

    A chunk already rendering finishes and stores its images (each one complete,
    with provenance), so what was rendered stays consistent. Returns the number of
    chunks cancelled; cancelling a finished batch is a no-op returning 0.
    """
    updated = GenerationBatch.objects.filter(
        pk=batch.pk, status__in=[GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING]
    ).update(status=GenerationBatch.Status.CANCELLED, finished=timezone.now())
    if not updated:
        return 0
    event_record(action=Action.BATCH_CANCELLED, obj=batch, after={"status": GenerationBatch.Status.CANCELLED})
    queued = batch.chunks.filter(status=GenerationChunk.Status.QUEUED)
    task_ids = [t for t in queued.values_list("task_id", flat=True) if t]
    n = queued.update(status=GenerationChunk.Status.CANCELLED)
    if task_ids:
        try:
            app.control.revoke(task_ids)
        except queue.BROKER_ERRORS:
            # The chunk task re-checks the batch status first, so an unrevoked task is harmless.
            logger.warning("could not revoke tasks of batch %s", batch.pk)
    batch.refresh_from_db()
    return n


def import_job_create(
    *,
    archive: File,
    format: str = "auto",
    manifest_name: str = "",
    dry_run: bool = False,
    user=None,
    auto_masks: bool = False,
) -> ImportJob:
    """Store an uploaded zip and enqueue its import (queue ``default``) after commit.

    ``auto_masks`` (ignored on a dry run) chains a ``MaskJob`` after the import: automatic
    masks for the real images it stored without one. A broker failure fails both rows.
    """
    if format not in IMPORT_FORMATS:
        raise LibraryError(f"format must be one of {', '.join(IMPORT_FORMATS)}")
    _broker_check()
    mask_job = None
    with transaction.atomic():
        job = ImportJob.objects.create(
            format=format, manifest_name=manifest_name, is_dry_run=dry_run, created_by=user
        )
        job.archive.save(f"{secrets.token_hex(16)}.zip", archive, save=True)
        event_record(
            action=Action.IMPORT_CREATED, actor=user, obj=job, after={"format": format, "dry_run": dry_run}
        )
        send = partial(tasks.import_images.apply_async, kwargs={"job_pk": job.pk})
        if auto_masks and not dry_run:
            mask_job = MaskJob.objects.create(import_job=job, created_by=user)
            send = (
                tasks.import_images.si(job_pk=job.pk) | tasks.compute_masks.si(job_pk=mask_job.pk)
            ).apply_async
        queue.enqueue_on_commit(send, model=ImportJob, pk=job.pk, what="the import")
    try:
        _raise_if_not_enqueued(job)
    except BrokerUnavailable as exc:
        if mask_job is not None:
            queue.row_fail(model=MaskJob, pk=mask_job.pk, error=str(exc))
        raise
    return job


def mask_job_schedule(*, images: Iterable[Image] | None = None, user=None) -> MaskJob:
    """Compute automatic masks in the background (queue ``default``) for those of ``images`` without one.

    ``images=None`` means every real image without a mask when the job starts. Synthetic
    images are left out (they carry their rendered map). Fails fast, writing nothing,
    when the broker is down; a send that fails after commit leaves the job failed.
    """
    pks = None
    if images is not None:
        pks = sorted({image.pk for image in images if image.kind == Image.Kind.REAL})
        if not pks:
            raise LibraryError("no real image selected: automatic masks are for real photos")
    _broker_check()
    with transaction.atomic():
        job = MaskJob.objects.create(image_pks=pks, created_by=user)
        queue.enqueue_on_commit(
            partial(tasks.compute_masks.apply_async, kwargs={"job_pk": job.pk}),
            model=MaskJob,
            pk=job.pk,
            what="the mask job",
        )
    _raise_if_not_enqueued(job)
    return job


def batch_wait(
    *,
    batch: GenerationBatch,
    timeout: float | None = None,
    poll: float = 0.5,
    on_progress: Callable[[GenerationBatch], None] | None = None,
) -> GenerationBatch:
    """Block until the batch finishes (or ``timeout`` seconds pass); returns the fresh row."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        batch.refresh_from_db()
        if on_progress is not None:
            on_progress(batch)
        if batch.is_finished or (deadline is not None and time.monotonic() > deadline):
            return batch
        time.sleep(poll)


def demo_batch_render(
    *, count: int = 32, seed: int = 2024, checkpoint_path: Path | str | None = None, chunk_size: int = 16
) -> GenerationBatch:
    """The demo's synthetic images: register the demo checkpoint and run one batch through
    ``batch_schedule`` (eagerly in the embedded default; via the workers when a broker is set).

    Conditions are those of the checkpoint that the taxonomy knows, equally weighted;
    skin types 1–6 equally mixed. Re-running it returns the existing batch with the
    same checkpoint and seed instead of rendering a second copy.
    """
    path = Path(checkpoint_path) if checkpoint_path else DEMO_CHECKPOINT
    checkpoint = checkpoint_register(path=path, name="DermGAN demo" if path == DEMO_CHECKPOINT else "")
    existing = (
        GenerationBatch.objects.filter(checkpoint=checkpoint, seed=seed, count=count)
        .exclude(status__in=[GenerationBatch.Status.FAILED, GenerationBatch.Status.CANCELLED])
        .first()
    )
    if existing is not None:
        return existing
    known = set(Condition.objects.values_list("code", flat=True))
    codes = [c for c in checkpoint.conditions if c in known]
    if not codes:
        raise LibraryError(
            "none of the checkpoint's conditions are in the taxonomy (load fixtures/conditions.json)"
        )
    distribution = {
        "condition_weights": {c: 1.0 for c in codes},
        "fitzpatrick_weights": {k: 1.0 for k in range(1, 7)},
    }
    return batch_schedule(
        checkpoint=checkpoint, count=count, seed=seed, distribution=distribution, chunk_size=chunk_size
    )
