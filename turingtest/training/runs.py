"""What a training segment does: claim the job, resume its run, train a bounded while, save, hand on.

One job is one ``generator.train`` run: its options are the command line
``python -m generator.train`` would take (:func:`job_argv`, parsed by the CLI's own
``options_from_args``) and every segment calls ``generator.train.train`` with a
``TrainLimits`` bound. Between segments the run folder lives in Django storage.

The claim is a lease taken by a conditional UPDATE (``next_segment <= n`` and no live
lease): a duplicate or redelivered task for a segment that already ran finds
``next_segment`` past it and does nothing; one that arrives while another holds the job
waits for the lease (``busy``). Each metrics record renews the lease, so a segment that
stops renewing it (a killed worker) is taken over once ``lease_seconds`` pass, resuming
from the last checkpoint the dead one stored. Every write a segment makes is conditional
on still holding its lease token, so a job cancelled or taken over is never written by
the segment that lost it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from turingtest import queue
from turingtest.core.failures import job_failure_notify
from turingtest.library.checkpoints import checkpoint_register
from turingtest.library.models import GeneratorCheckpoint
from turingtest.training.models import TrainingJob
from turingtest.training.selection import (
    TrainingError,
    manifest_download,
    manifest_write,
    storage_download,
    storage_upload,
)

logger = logging.getLogger(__name__)

ACTIVE = (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING)
STATE_FILES = ("generator.pt", "train_state.pt", "metrics.jsonl")  # a run folder's resumable state


@dataclass(frozen=True)
class SegmentOutcome:
    status: str  # trained | succeeded | failed | cancelled | stale | busy
    next_segment: int | None = None  # the job goes on with this segment
    retry_in: float | None = None  # busy: try again after this many seconds


class LeaseLost(Exception):
    """The job was cancelled or another segment took it over: stop writing to it."""


def job_argv(job: TrainingJob, *, manifest: Path | str, out: Path | str, resume: bool = False) -> list[str]:
    """The ``python -m generator.train`` arguments of the job (the discriminator is as wide as the generator)."""
    argv = ["--manifest", str(manifest), "--out", str(out), "--image-size", str(job.image_size)]
    argv += ["--ngf", str(job.ngf), "--ndf", str(job.ngf), "--steps", str(job.steps)]
    argv += ["--batch-size", str(job.batch_size), "--lr", repr(job.lr), "--seed", str(job.seed)]
    argv += [
        "--checkpoint-every",
        str(job.checkpoint_every),
        "--log-every",
        str(min(10, job.checkpoint_every)),
    ]
    argv += ["--device", os.environ.get("DERMGAN_DEVICE", "auto"), "--no-progress"]
    return argv + (["--resume"] if resume else [])


def segment_run(
    *, job_pk: int, segment: int, send_next: Callable[[int], object] | None = None
) -> SegmentOutcome:
    """Run segment ``segment`` of the job if it is this segment's turn; ``send_next(n)`` enqueues segment n.

    Without ``send_next`` (tasks run eagerly) the caller runs ``outcome.next_segment`` itself.
    """
    claimed = _claim(job_pk, segment)
    if isinstance(claimed, SegmentOutcome):
        return claimed
    job, token = claimed
    workdir = Path(tempfile.mkdtemp(prefix=f"dermgan-training-{job_pk}-"))
    try:
        step = _train(job, token, workdir)
        if step >= job.steps:
            return _succeed(job, token, segment, workdir / "run")
        return _hand_on(job, token, segment, send_next)
    except LeaseLost:
        _mine(job, token, active=False).update(lease_token="", lease_until=None)  # cancelled: let go
        job.refresh_from_db()
        return SegmentOutcome("cancelled" if job.status == job.Status.CANCELLED else "stale")
    except Exception as exc:
        logger.exception("training job %s, segment %s failed", job_pk, segment)
        _fail(job, token, error=f"{type(exc).__name__}: {exc}")
        return SegmentOutcome("failed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _claim(job_pk: int, segment: int) -> tuple[TrainingJob, str] | SegmentOutcome:
    job = TrainingJob.objects.filter(pk=job_pk).first()
    if job is None or job.is_finished or segment < job.next_segment:
        return SegmentOutcome("stale")
    now, token = timezone.now(), secrets.token_hex(16)
    lease_free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    # next_segment <= segment, not ==: a segment sent by one whose last write never committed
    # may go ahead once that one's lease is gone; the run resumes from the stored state either way.
    claimed = TrainingJob.objects.filter(
        lease_free, pk=job_pk, status__in=ACTIVE, next_segment__lte=segment
    ).update(
        status=TrainingJob.Status.RUNNING,
        next_segment=segment,
        lease_token=token,
        lease_until=job.lease_expiry(),
        n_claims=F("n_claims") + 1,
        started=Coalesce(F("started"), Value(now)),
    )
    job.refresh_from_db()
    if claimed:
        return job, token
    if job.is_finished or segment < job.next_segment:
        return SegmentOutcome("stale")
    wait = (job.lease_until - now).total_seconds() if job.lease_until else 0.0
    return SegmentOutcome("busy", retry_in=max(1.0, wait + 0.5))


def _mine(job: TrainingJob, token: str, *, active: bool = True):
    """The job's row while this segment holds it (and, by default, while it is still running)."""
    rows = TrainingJob.objects.filter(pk=job.pk, lease_token=token)
    return rows.filter(status=TrainingJob.Status.RUNNING) if active else rows


def _train(job: TrainingJob, token: str, workdir: Path) -> int:
    """Download the job's data and last state, train one bounded piece; returns the step reached."""
    from generator.train import TrainLimits, options_from_args, train

    if not job.manifest_name:
        name = manifest_write(job=job)
        if not _mine(job, token).update(manifest_name=name, lease_until=job.lease_expiry()):
            raise LeaseLost
        job.manifest_name = name
    manifest = manifest_download(job=job, folder=workdir / "data")
    run = workdir / "run"
    run.mkdir()
    if job.state_name:
        for file in STATE_FILES:
            storage_download(f"{job.state_name}/{file}", run / file)
        if job.state_step is not None and job.state_step >= job.steps:
            return job.state_step  # killed after its last checkpoint: only the registration is left
    opts = options_from_args(job_argv(job, manifest=manifest, out=run, resume=bool(job.state_name)))
    limits = TrainLimits(
        max_steps=job.segment_steps,
        max_seconds=job.segment_seconds,
        on_log=partial(_on_log, job, token),
        on_checkpoint=partial(_on_checkpoint, job, token, run),
    )
    try:
        return train(opts, limits).step
    except ValueError as exc:  # the trainer's own refusals (a bad manifest, a mismatched state)
        raise TrainingError(str(exc)) from None


def _on_log(job: TrainingJob, token: str, record: dict[str, float]) -> bool:
    """Show progress and renew the lease; True (stop) when the job was cancelled or taken over."""
    per_second = record.get("images_per_s") or 0.0
    renewed = _mine(job, token).update(
        step=int(record["step"]),
        losses={k: float(v) for k, v in record.items() if k.startswith("loss")},
        seconds_per_step=job.batch_size / per_second if per_second > 0 else None,
        lease_until=job.lease_expiry(),
    )
    return not renewed


def _on_checkpoint(job: TrainingJob, token: str, run: Path, step: int) -> None:
    """Store the checkpoint the trainer just wrote, then point the job at it (the resume point)."""
    if not _mine(job, token).update(lease_until=job.lease_expiry()):
        raise LeaseLost
    folder = f"{job.work_prefix}/state/{step:07d}-{secrets.token_hex(4)}"  # never overwrites a stored one
    for file in STATE_FILES:
        storage_upload(run / file, f"{folder}/{file}")
    sample = storage_upload(
        run / "samples" / f"step-{step:07d}.png", f"{job.work_prefix}/samples/step-{step:07d}.png"
    )
    previous = TrainingJob.objects.values_list("state_name", flat=True).get(pk=job.pk)
    if not _mine(job, token).update(state_name=folder, state_step=step, sample_name=sample):
        _delete_state(folder)
        raise LeaseLost
    if previous:
        _delete_state(previous)


def _delete_state(folder: str) -> None:
    for file in STATE_FILES:
        try:
            default_storage.delete(f"{folder}/{file}")
        except OSError:
            logger.warning("could not delete %s/%s", folder, file)


def _hand_on(
    job: TrainingJob, token: str, segment: int, send_next: Callable[[int], object] | None
) -> SegmentOutcome:
    """Release the job to segment ``segment + 1`` and send it.

    The send happens inside the transaction that releases the lease: a worker killed after
    the commit but before a send would leave the job with nobody to continue it, while a
    send before a commit that then fails only leaves a task that waits for this lease to
    expire and goes ahead (``_claim``). If the broker refuses the send, the job fails with its message.
    """
    with transaction.atomic():
        if not _mine(job, token).update(next_segment=segment + 1, lease_token="", lease_until=None):
            return SegmentOutcome("stale")
        if send_next is not None:
            sent = queue.send_or_fail(
                partial(send_next, segment + 1),
                model=TrainingJob,
                pk=job.pk,
                what="the next training segment",
            )
            if sent is None:
                return SegmentOutcome("failed")
    return SegmentOutcome("trained", next_segment=segment + 1)


def _succeed(job: TrainingJob, token: str, segment: int, run: Path) -> SegmentOutcome:
    """Register the final checkpoint in the library with the job's data provenance; the job succeeds."""
    from generator.checkpoint import load

    trained_on = load(run / "generator.pt").metadata["training"]["data"].get("image_sha256")
    if trained_on != job.image_sha256:
        raise TrainingError("the checkpoint's image sha256 list is not the job's: refusing to register it")
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if locked.lease_token != token or locked.status != TrainingJob.Status.RUNNING:
            raise LeaseLost
        checkpoint = checkpoint_register(path=run / "generator.pt", name=job.name or f"training job {job.pk}")
        provenance = {
            "training_job": job.pk,
            "image_ids": job.image_ids,
            "selection": {"conditions": job.conditions, "skin_types": job.skin_types, "masks": job.masks},
        }
        GeneratorCheckpoint.objects.filter(pk=checkpoint.pk).update(
            metadata={**checkpoint.metadata, "library": provenance}
        )
        TrainingJob.objects.filter(pk=job.pk).update(
            status=TrainingJob.Status.SUCCEEDED,
            checkpoint=checkpoint,
            step=job.steps,
            next_segment=segment + 1,
            lease_token="",
            lease_until=None,
            finished=timezone.now(),
        )
    return SegmentOutcome("succeeded")


def _fail(job: TrainingJob, token: str, *, error: str) -> None:
    """The job fails (unless it was cancelled meanwhile) and this segment lets go of it."""
    _mine(job, token).update(status=TrainingJob.Status.FAILED, error=error[:2000], finished=timezone.now())
    _mine(job, token, active=False).update(lease_token="", lease_until=None)
    job_failure_notify(job=job)
