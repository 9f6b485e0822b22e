"""The leak audit as a background job of the study page: run ``audit.audit_study``, keep the table.

``leak_audit_execute`` is what the Celery task runs (``tasks.run_leak_audit``): it claims the
``LeakAudit`` row (queued → running, once), audits the study and stores the feature table and
the flagged names on the row, or the error. ``scheduling.leak_audit_request`` creates rows.
"""

from __future__ import annotations

from django.utils import timezone

from turingtest.studies import audit
from turingtest.studies.models import LeakAudit


def _row(r: audit.FeatureResult) -> dict:
    return {
        "name": r.name,
        "type": "cat" if r.categorical else "num",
        "content_driven": r.content_driven,
        "n_distinct": r.n_distinct,
        "auc": round(r.auc, 4),
        "ci_low": round(r.ci_low, 4),
        "ci_high": round(r.ci_high, 4),
        "flagged": r.flagged,
    }


def leak_audit_execute(*, audit_pk: int) -> LeakAudit:
    """Audit the row's study and store the outcome; a second delivery of the same row is a no-op."""
    claimed = LeakAudit.objects.filter(pk=audit_pk, status=LeakAudit.Status.QUEUED).update(
        status=LeakAudit.Status.RUNNING, started=timezone.now()
    )
    row = LeakAudit.objects.select_related("study").get(pk=audit_pk)
    if not claimed:
        return row
    try:
        outcome = audit.audit_study(study=row.study)
    except Exception as exc:  # stored on the row, shown on the study page (STYLE.md rule 15)
        LeakAudit.objects.filter(pk=audit_pk).update(
            status=LeakAudit.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
    else:
        LeakAudit.objects.filter(pk=audit_pk).update(
            status=LeakAudit.Status.SUCCEEDED,
            n_items=outcome.n_items,
            result=[_row(r) for r in outcome.table],
            flagged=outcome.flagged,
            finished=timezone.now(),
        )
    row.refresh_from_db()
    return row


def leak_audit_latest(*, study_id: int) -> LeakAudit | None:
    return LeakAudit.objects.filter(study_id=study_id).order_by("-created").first()
