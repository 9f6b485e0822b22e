"""How far a study has got: invitations, raters, items and judgments — the one place it is counted.

The study page, the results dashboard and the researcher API all show these numbers; they
read them from ``study_progress`` so they cannot disagree. A few aggregate queries, whatever
the study's size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Q

from turingtest.studies.models import Assignment, Invitation, Judgment, Study


@dataclass(frozen=True)
class StudyProgress:
    n_invited: int  # invitation links issued
    n_invitations_used: int
    n_assignments: int  # raters who joined (one assignment each)
    n_started: int  # ... who answered at least one item
    n_finished: int  # ... who answered all of them
    n_items: int  # study items in the pool, tutorial excluded
    n_judgments: int
    last_answered_at: dt.datetime | None  # latest answer or edit; None before the first


def judgment_state(study: Study) -> tuple[int, dt.datetime | None]:
    """(number of judgments, latest answered_at or edited_at): changes whenever an answer arrives
    or is edited, so caches keyed on it are invalidated by new data and only by new data."""
    agg = Judgment.objects.filter(presentation__assignment__study=study).aggregate(
        n=Count("id"), last=Max("answered_at"), last_edit=Max("edited_at")
    )
    last = max((t for t in (agg["last"], agg["last_edit"]) if t is not None), default=None)
    return agg["n"], last


@dataclass(frozen=True)
class Participation:
    """Who was invited and who joined, started and finished: two small aggregates, whatever the
    number of judgments (the report reads these; it counts judgments from its own arrays)."""

    n_invited: int
    n_invitations_used: int
    n_assignments: int
    n_started: int
    n_finished: int


def study_participation(study: Study) -> Participation:
    invitations = Invitation.objects.filter(study=study).aggregate(
        n=Count("id"), used=Count("id", filter=Q(used_at__isnull=False))
    )
    assignments = Assignment.objects.filter(study=study).aggregate(
        n=Count("id"),
        started=Count("id", filter=Q(started_at__isnull=False)),
        finished=Count("id", filter=Q(finished_at__isnull=False)),
    )
    return Participation(
        n_invited=invitations["n"],
        n_invitations_used=invitations["used"],
        n_assignments=assignments["n"],
        n_started=assignments["started"],
        n_finished=assignments["finished"],
    )


def study_progress(study: Study) -> StudyProgress:
    """Raters invited / joined / started / finished, items and judgments so far."""
    p = study_participation(study)
    n_judgments, last = judgment_state(study)
    return StudyProgress(
        n_invited=p.n_invited,
        n_invitations_used=p.n_invitations_used,
        n_assignments=p.n_assignments,
        n_started=p.n_started,
        n_finished=p.n_finished,
        n_items=study.items.filter(is_tutorial=False).count(),
        n_judgments=n_judgments,
        last_answered_at=last,
    )
