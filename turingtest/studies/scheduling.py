"""The one place the studies app enqueues work: a leak audit requested from the study page.

The row is created in the caller's transaction and the task is sent only after it commits
(STYLE.md rule 14); a broker that cannot take it marks the row failed with its message.
"""

from __future__ import annotations

from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from turingtest.studies import tasks
from turingtest.studies.models import LeakAudit, Study
from turingtest.studies.services import study_design_sha256


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    return (OperationalError, ConnectionError, OSError, TimeoutError)


def _enqueue(audit_pk: int) -> None:
    try:
        tasks.run_leak_audit.apply_async(kwargs={"audit_pk": audit_pk})
    except _broker_errors() as exc:
        LeakAudit.objects.filter(pk=audit_pk, status=LeakAudit.Status.QUEUED).update(
            status=LeakAudit.Status.FAILED,
            error=f"could not enqueue the audit: {exc}",
            finished=timezone.now(),
        )


def leak_audit_request(*, study: Study, requested_by: AbstractBaseUser | None = None) -> LeakAudit:
    """Queue a leak audit of the study's current design (a queued or running one is reused)."""
    with transaction.atomic():
        sha = study_design_sha256(study)
        pending = (
            LeakAudit.objects.select_for_update()
            .filter(
                study=study,
                design_sha256=sha,
                status__in=[LeakAudit.Status.QUEUED, LeakAudit.Status.RUNNING],
            )
            .first()
        )
        if pending is not None:
            return pending
        row = LeakAudit.objects.create(study=study, design_sha256=sha, requested_by=requested_by)
        transaction.on_commit(partial(_enqueue, row.pk))
    row.refresh_from_db()
    return row
