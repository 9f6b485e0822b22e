"""Thin Celery tasks (queue ``default``): claim a run by primary key and execute it.

Both services claim the row with a conditional UPDATE (queued -> running), so a
redelivered or duplicated task returns without computing twice; failures are
written to the row, not left in a result backend.
"""

from __future__ import annotations

from celery import shared_task

from turingtest.evaluation import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def compute_fidelity(*, run_pk: int) -> str:
    return services.fidelity_run_execute(run_pk=run_pk).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_augmentation(*, run_pk: int) -> str:
    return services.augmentation_run_execute(run_pk=run_pk).status
