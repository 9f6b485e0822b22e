"""Thin Celery tasks (queue ``default``): claim a run by primary key and execute it.

Tasks import the work they run (``runs``); only ``services`` imports tasks. Both runs
claim the row with a conditional UPDATE (queued -> running), so a redelivered or
duplicated task returns without computing twice; failures are written to the row, not
left in a result backend.
"""

from __future__ import annotations

from celery import shared_task

from turingtest.evaluation.runs import augmentation_run_execute, fidelity_run_execute


@shared_task(acks_late=True, reject_on_worker_lost=True)
def compute_fidelity(*, run_pk: int) -> str:
    return fidelity_run_execute(run_pk=run_pk).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_augmentation(*, run_pk: int) -> str:
    return augmentation_run_execute(run_pk=run_pk).status
