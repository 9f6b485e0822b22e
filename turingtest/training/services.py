"""Training-job services: create a job (fix its images, enqueue its first segment after commit),
cancel it, resume a failed or cancelled one. The only module that imports the tasks.

What a segment does is in ``runs``; sending goes through ``turingtest.queue``, so a broker
that is down either refuses before anything is written (``BrokerUnavailable``) or leaves
the job failed with its message, never queued with nothing to run it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from turingtest import queue
from turingtest.library.models import Condition
from turingtest.training import tasks
from turingtest.training.models import TrainingJob
from turingtest.training.runs import ACTIVE, job_argv
from turingtest.training.selection import TrainingError, images_select


class BrokerUnavailable(TrainingError, queue.BrokerUnavailable):
    """The task broker could not be reached: nothing was scheduled."""


def training_job_create(
    *,
    conditions: Sequence[str] = (),
    skin_types: Sequence[int] = (),
    masks: str = TrainingJob.Masks.ANY,
    image_size: int | None = None,
    ngf: int = 16,
    steps: int = 10_000,
    batch_size: int = 4,
    lr: float = 2e-4,
    seed: int = 0,
    checkpoint_every: int = 500,
    segment_seconds: int = 600,
    segment_steps: int | None = None,
    lease_seconds: int = 120,
    name: str = "",
    user=None,
    enqueue: bool = True,
    check_broker: bool = True,
) -> TrainingJob:
    """Fix the job's images (real photos with masks matching the selection) and queue its first segment.

    Raises ``TrainingError`` for a selection that matches nothing or options the trainer
    refuses, ``BrokerUnavailable`` when the broker is down (nothing written). Run eagerly
    (no broker) the whole job trains before this returns.
    """
    unknown = sorted(set(conditions) - set(Condition.objects.values_list("code", flat=True)))
    if unknown:
        raise TrainingError(f"unknown condition code(s): {unknown}")
    bad_types = [t for t in skin_types if not 1 <= int(t) <= 6]
    if bad_types:
        raise TrainingError(f"skin types are Fitzpatrick 1–6, got {bad_types}")
    images = list(images_select(conditions=conditions, skin_types=skin_types, masks=masks))
    if not images:
        hint = (
            " (no mask of that selection has been reviewed in the mask editor yet: review some, or choose any mask)"
            if masks == TrainingJob.Masks.REVIEWED
            else ""
        )
        raise TrainingError(f"no real image with a mask matches this selection{hint}")
    if segment_seconds < 1 or lease_seconds < 1 or (segment_steps is not None and segment_steps < 1):
        raise TrainingError("segment seconds, segment steps and lease seconds must be at least 1")
    job = TrainingJob(
        name=name,
        conditions=sorted(conditions),
        skin_types=sorted(int(t) for t in skin_types),
        masks=masks,
        image_ids=[im.pk for im in images],
        image_sha256=[im.sha256 for im in images],
        image_size=image_size or settings.IMAGE_SIZE,
        ngf=ngf,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        checkpoint_every=checkpoint_every,
        segment_seconds=segment_seconds,
        segment_steps=segment_steps,
        lease_seconds=lease_seconds,
        work_prefix=f"training/{secrets.token_hex(16)}",
        created_by=user,
    )
    _options_check(job)
    if enqueue and check_broker:
        try:
            queue.broker_check()
        except queue.BrokerUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from None
    with transaction.atomic():
        job.save()
        if enqueue:
            _enqueue_on_commit(job, segment=0)
    job.refresh_from_db()
    return job


def _options_check(job: TrainingJob) -> None:
    """The trainer's own validation of the options, so a job it would refuse is never queued."""
    from generator.train import options_from_args

    try:
        options_from_args(job_argv(job, manifest="manifest.csv", out="run")).validate()
    except ValueError as exc:
        raise TrainingError(str(exc).replace("--", "")) from None


def _enqueue_on_commit(job: TrainingJob, *, segment: int) -> None:
    queue.enqueue_on_commit(
        partial(tasks.segment_send, job.pk, segment), model=TrainingJob, pk=job.pk, what="the training job"
    )


def training_job_cancel(*, job: TrainingJob) -> bool:
    """Stop a queued or running job; a segment in flight notices at its next log and stops.

    Returns False (a no-op) for a job that had already finished.
    """
    # The lease stays: a segment in flight gives it up when it stops, a dead one's expires, and
    # until then a resumed job cannot start a second segment beside it.
    cancelled = TrainingJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=TrainingJob.Status.CANCELLED, finished=timezone.now()
    )
    job.refresh_from_db()
    return bool(cancelled)


def training_job_resume(*, job: TrainingJob) -> TrainingJob:
    """Queue a failed or cancelled job again: it continues from its last stored checkpoint.

    A new failure is news again: its creator is e-mailed once more (``failure_notified_at`` cleared).
    """
    with transaction.atomic():
        resumed = TrainingJob.objects.filter(
            pk=job.pk, status__in=[TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED]
        ).update(status=TrainingJob.Status.QUEUED, error="", finished=None, failure_notified_at=None)
        if not resumed:
            raise TrainingError(
                f"job {job.pk} is {job.status}: only a failed or cancelled job can be resumed"
            )
        _enqueue_on_commit(job, segment=job.next_segment)
    job.refresh_from_db()
    return job
