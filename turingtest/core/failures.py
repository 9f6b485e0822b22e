"""``job_failure_notify``: e-mail the person who scheduled a batch, import or training job that it failed.

Every path that marks such a row failed calls it (a chunk giving up, a batch that finished
short, an import that raised, a training segment that raised, an enqueue the broker refused).
Those paths can run more than once for one failure (a batch is recounted after each chunk),
so the mail is claimed with a conditional UPDATE of ``failure_notified_at``: one mail per job,
whoever calls first. It knows no app: a job is any row with ``status``, ``error``,
``created_by`` and ``failure_notified_at``; rows without that field (mask jobs, evaluation
runs) are not mailed and show up on the operators page instead.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

logger = logging.getLogger(__name__)


def admin_path(obj: Model) -> str:
    """The admin page of ``obj``, or "" when its model has no admin page."""
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def job_failure_notify(*, job: Model) -> bool:
    """Mail ``job.created_by`` that ``job`` failed, once per job; True if a mail was handed to the server.

    Never raises: the caller is recording a failure already, and a mail server that refuses
    must not turn it into a second one (the refusal is logged).
    """
    model = type(job)
    if not any(f.name == "failure_notified_at" for f in model._meta.fields):
        return False
    claimed = model.objects.filter(pk=job.pk, status="failed", failure_notified_at__isnull=True).update(
        failure_notified_at=timezone.now()
    )
    if not claimed:  # not failed, or somebody was told already
        return False
    row = model.objects.select_related("created_by").get(pk=job.pk)
    user = row.created_by
    if user is None or not user.email:
        return False
    what = f"{model._meta.verbose_name} {row.pk}"
    path = admin_path(row)
    link = settings.SITE_URL + path if path else ""
    body = (
        f"Hello {user.get_full_name() or user.get_username()},\n\n"
        f"The {what} you scheduled failed:\n\n{row.error or '(no message)'}\n\n"
        + (f"Details: {link}\n\n" if link else "")
        + "The operators page lists workers, queues and recent failures: "
        f"{settings.SITE_URL}{reverse('ops')}\n"
    )
    try:
        send_mail(f"Failed: {what}", body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
    except Exception:
        logger.exception("could not e-mail %s about the failure of %s", user.email, what)
        return False
    return True
