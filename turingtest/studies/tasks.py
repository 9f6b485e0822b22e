"""Thin Celery tasks of the studies app: keyword-only primary keys, one plain function each."""

from __future__ import annotations

from celery import shared_task

from turingtest.studies import leakaudit


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_leak_audit(*, audit_pk: int) -> str:
    return leakaudit.leak_audit_execute(audit_pk=audit_pk).status
