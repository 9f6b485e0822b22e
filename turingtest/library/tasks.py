"""Thin Celery tasks: load a row by primary key, run the work, record failures on rows.

Tasks import the work they run (``rendering``, ``imports``); only ``scheduling`` imports tasks.

``render_chunk`` runs on queue ``gpu`` (``CELERY_TASK_ROUTES``); it is idempotent
(``chunk_render`` skips stored indexes), acknowledged late and rejected when the
worker dies, so a killed worker's chunk is redelivered and finished by another.
Failures are written to the chunk and batch rows, not left in a result backend.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from turingtest.library.imports import import_job_run
from turingtest.library.masks import mask_job_run
from turingtest.library.models import ImportJob, MaskJob
from turingtest.library.rendering import chunk_fail, chunk_render

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BACKOFF_BASE = 2.0  # seconds


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: the database or storage blinked, or the GPU ran out of memory."""
    errors: list[type[BaseException]] = [OperationalError, InterfaceError, ConnectionError, TimeoutError]
    try:
        import torch  # here, not at the top: the web process and the Celery parent never load torch

        errors.append(torch.cuda.OutOfMemoryError)
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    return tuple(errors)


def backoff_seconds(retries: int) -> float:
    """2, 4, 8, 16, 32 s: long enough for a database failover or a busy GPU to clear."""
    return min(RETRY_BACKOFF_BASE * 2**retries, 60.0)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def render_chunk(self, *, chunk_pk: int) -> str:
    attempt = self.request.retries
    while True:
        try:
            return chunk_render(chunk_pk=chunk_pk)
        except _transient_errors() as exc:
            if attempt >= self.max_retries:
                chunk_fail(chunk_pk=chunk_pk, error=f"gave up after {self.max_retries} retries: {exc}")
                return "failed"
            countdown = backoff_seconds(attempt)
            logger.warning("chunk %s: transient error, retry in %ss: %s", chunk_pk, countdown, exc)
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=countdown) from exc
            # Run eagerly (the embedded default) there is no queue to come back through: wait here.
            time.sleep(countdown)
            attempt += 1
        except Exception as exc:
            logger.exception("chunk %s failed", chunk_pk)
            chunk_fail(chunk_pk=chunk_pk, error=f"{type(exc).__name__}: {exc}")
            return "failed"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_images(*, job_pk: int) -> str:
    job = ImportJob.objects.get(pk=job_pk)
    return import_job_run(job=job).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def compute_masks(*, job_pk: int) -> str:
    """Automatic masks for a ``MaskJob`` (queue ``default``); a second run skips what is done."""
    job = MaskJob.objects.get(pk=job_pk)
    return mask_job_run(job=job).status
