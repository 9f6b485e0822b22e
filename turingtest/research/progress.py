"""Progress and the "has anything changed" state of a study, in a few aggregate queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Max, Q

from turingtest.studies.models import Assignment, Invitation, Judgment, Study


def judgment_state(study: Study) -> tuple[int, dt.datetime | None]:
    """(number of judgments, latest answered_at or edited_at): changes whenever an answer arrives
    or is edited, so caches keyed on it are invalidated by new data and only by new data."""
    fields = {"n": Count("id"), "last": Max("answered_at")}
    if any(f.name == "edited_at" for f in Judgment._meta.get_fields()):
        fields["last_edit"] = Max("edited_at")
    agg = Judgment.objects.filter(presentation__assignment__study=study).aggregate(**fields)
    last = max((t for t in (agg["last"], agg.get("last_edit")) if t is not None), default=None)
    return agg["n"], last


def state_key(study: Study) -> str:
    n, last = judgment_state(study)
    return f"{study.pk}:{n}:{last.timestamp() if last else 0}"


def study_progress(study: Study) -> dict[str, Any]:
    """Raters invited / joined / started / finished, items and judgments so far."""
    inv = Invitation.objects.filter(study=study).aggregate(
        invited=Count("id"), accepted=Count("id", filter=Q(used_at__isnull=False))
    )
    asg = Assignment.objects.filter(study=study).aggregate(
        joined=Count("id"),
        started=Count("id", filter=Q(started_at__isnull=False)),
        finished=Count("id", filter=Q(finished_at__isnull=False)),
    )
    n_judgments, last = judgment_state(study)
    return {
        "invited": inv["invited"],
        "invitations_accepted": inv["accepted"],
        "joined": asg["joined"],
        "started": asg["started"],
        "finished": asg["finished"],
        "n_items": study.items.filter(is_tutorial=False).count(),
        "n_judgments": n_judgments,
        "last_answered_at": last.isoformat() if last else None,
    }
