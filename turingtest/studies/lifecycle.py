"""Pausing and resuming a running study, and what opening or closing one would do.

Pause is the reversible stop: raters are told to come back later (``rating.check_access``
refuses with ``paused``), nothing they did is lost, and ``study_resume`` reopens. Closing stays
in ``services.study_close`` and is for the end only; ``close_consequences`` and
``open_consequences`` are what the confirmation pages spell out before either happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from turingtest.studies.models import Assignment, Invitation, Study
from turingtest.trail.services import Action, event_record


class WrongStatus(ValueError):
    """The study is not in a status this change applies to (the message says which it is)."""


@transaction.atomic
def _move(study: Study, *, source: str, target: str, paused_at, refusal: str) -> Study:
    """``source`` → ``target`` under a row lock; already at ``target`` is a no-op (a double
    click changes nothing), any other status ``WrongStatus``."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == target:
        return study
    if study.status != source:
        raise WrongStatus(f"{refusal}; this one is {study.get_status_display().lower()}")
    before = study.status
    study.status = target
    study.paused_at = paused_at
    study.save(update_fields=["status", "paused_at"])
    action = Action.STUDY_PAUSED if target == Study.Status.PAUSED else Action.STUDY_RESUMED
    event_record(action=action, obj=study, before={"status": before}, after={"status": target})
    return study


def study_pause(*, study: Study) -> Study:
    """Pause an open study (raters are asked to come back later)."""
    return _move(
        study,
        source=Study.Status.OPEN,
        target=Study.Status.PAUSED,
        paused_at=timezone.now(),
        refusal="only an open study can be paused",
    )


def study_resume(*, study: Study) -> Study:
    """Reopen a paused study. The design stays the frozen one."""
    return _move(
        study,
        source=Study.Status.PAUSED,
        target=Study.Status.OPEN,
        paused_at=None,
        refusal="only a paused study can resume",
    )


@dataclass(frozen=True)
class CloseConsequences:
    n_joined: int
    n_finished: int
    n_unfinished: int  # joined and not finished: cut off by closing
    n_started_unfinished: int  # ... of whom this many answered at least one item
    n_open_invitations: int  # unused, unrevoked, unexpired links that stop working


def close_consequences(study: Study) -> CloseConsequences:
    """Who closing ``study`` now would cut off (two aggregate queries)."""
    a = Assignment.objects.filter(study=study).aggregate(
        n=Count("pk"),
        finished=Count("pk", filter=Q(finished_at__isnull=False)),
        started_unfinished=Count("pk", filter=Q(finished_at__isnull=True, started_at__isnull=False)),
    )
    n_links = Invitation.objects.filter(
        study=study, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).count()
    return CloseConsequences(
        n_joined=a["n"],
        n_finished=a["finished"],
        n_unfinished=a["n"] - a["finished"],
        n_started_unfinished=a["started_unfinished"],
        n_open_invitations=n_links,
    )
