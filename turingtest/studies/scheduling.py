"""The one place the studies app enqueues work: a leak audit requested from the study page.

The row is created in the caller's transaction and the task is sent only after it commits
(STYLE.md rule 14) through ``turingtest.queue``: a broker that cannot take it marks the row
failed with its message.
"""

from __future__ import annotations

from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from turingtest import queue
from turingtest.studies import tasks
from turingtest.studies.models import LeakAudit, Study
from turingtest.studies.services import study_design_sha256


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
        queue.enqueue_on_commit(
            partial(tasks.run_leak_audit.apply_async, kwargs={"audit_pk": row.pk}),
            model=LeakAudit,
            pk=row.pk,
            what="the audit",
        )
    row.refresh_from_db()
    return row
