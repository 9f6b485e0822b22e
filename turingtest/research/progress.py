"""The researcher-facing shape of a study's progress, and the cache key of its results.

The numbers come from ``turingtest.studies.progress`` (the one place they are counted);
this module only names them the way the dashboard and the researcher API show them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db.models import Q

from turingtest.studies.models import Assignment, Study
from turingtest.studies.progress import judgment_state
from turingtest.studies.progress import study_progress as progress_of


def state_key(study: Study) -> str:
    """Changes with every new judgment, and with every exclusion or qualification outcome
    (they change which raters the statistics keep)."""
    n, last = judgment_state(study)
    left_out = sorted(
        (pk, at.timestamp() if at else 0, reason, q)
        for pk, at, reason, q in Assignment.objects.filter(study=study)
        .filter(Q(excluded_at__isnull=False) | Q(qualified=False))
        .values_list("pk", "excluded_at", "exclusion_reason", "qualified")
    )
    quality = hashlib.sha256(repr(left_out).encode()).hexdigest()[:16] if left_out else "-"
    return f"{study.pk}:{n}:{last.timestamp() if last else 0}:{quality}"


def study_progress(study: Study) -> dict[str, Any]:
    """Raters invited / joined / started / finished, items and judgments so far (JSON-ready)."""
    p = progress_of(study)
    return {
        "invited": p.n_invited,
        "invitations_accepted": p.n_invitations_used,
        "joined": p.n_assignments,
        "started": p.n_started,
        "finished": p.n_finished,
        "n_items": p.n_items,
        "n_judgments": p.n_judgments,
        "last_answered_at": p.last_answered_at.isoformat() if p.last_answered_at else None,
    }


def utc_text(iso: str | None) -> str:
    """What a page shows for a progress time before (or without) static/js/local-time.js
    turns it into the viewer's local time: "1 Dec 2026, 15:30 UTC", or "none yet"."""
    if iso is None:
        return "none yet"
    t = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return f"{t.day} {t:%b %Y, %H:%M} UTC"
