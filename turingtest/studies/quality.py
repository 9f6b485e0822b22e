"""Rater quality control: the tutorial qualification, attention checks and exclusion.

HYPE-style and crowd studies qualify raters on the tutorial (``qualification_min_correct``) and
monitor them with catch images (``attention_checks``); a researcher may exclude a rater from the
statistics with a reason (audited, and reversible). Reports read the outcome from ``Assignment``
(``qualified``, ``excluded_at``); ``rater_quality_rows`` gives each rater's state and
catch-image score in one query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from turingtest.library.models import Image
from turingtest.studies import protocol
from turingtest.studies.models import Assignment, Judgment, TutorialAnswer
from turingtest.trail.services import Action, event_record

NOT_QUALIFIED = (
    "Thank you for taking part. Your tutorial answers did not reach the score this study asks "
    "of its raters, so the study ends here for you. Nothing more is needed from you."
)


def assignment_qualify(*, assignment_id: int, config: dict) -> bool | None:
    """Decide the rater's qualification once the tutorial is answered, and store it.

    None (nothing stored) when the study asks no threshold. Called by the answer path right
    after the last tutorial answer is written; a second call keeps the first decision.
    """
    needed = protocol.qualification_needed(config)
    if needed is None:
        return None
    n_correct = (
        TutorialAnswer.objects.filter(presentation__assignment_id=assignment_id)
        .filter(_says_rightly(""))
        .count()
    )
    qualified = n_correct >= needed
    Assignment.objects.filter(pk=assignment_id, qualified__isnull=True).update(
        qualified=qualified, n_tutorial_correct=n_correct
    )
    return Assignment.objects.values_list("qualified", flat=True).get(pk=assignment_id)


def _exclusion_fields(assignment: Assignment) -> dict:
    return {"excluded": assignment.is_excluded, "reason": assignment.exclusion_reason}


def _exclusion_set(assignment: Assignment, *, action: str, by: AbstractBaseUser, **values: object) -> None:
    """Store the exclusion ``values`` and the audit event saying what changed."""
    before = _exclusion_fields(assignment)
    for name, value in values.items():
        setattr(assignment, name, value)
    assignment.save(update_fields=list(values))
    event_record(
        action=action,
        actor=by,
        obj=assignment,
        study=assignment.study_id,
        before=before,
        after=_exclusion_fields(assignment),
    )


@transaction.atomic
def assignment_exclude(*, assignment: Assignment, by: AbstractBaseUser, reason: str) -> Assignment:
    """Leave the rater out of the statistics, with the researcher's reason (audited).

    Excluding an excluded rater again only changes the reason when it differs.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("say why the rater is excluded")
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.is_excluded and assignment.exclusion_reason == reason:
        return assignment
    _exclusion_set(
        assignment,
        action=Action.RATER_EXCLUDED,
        by=by,
        excluded_at=assignment.excluded_at or timezone.now(),
        excluded_by=by,
        exclusion_reason=reason,
    )
    return assignment


@transaction.atomic
def assignment_include(*, assignment: Assignment, by: AbstractBaseUser) -> Assignment:
    """Lift an exclusion (audited); a no-op for a rater who is not excluded."""
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if not assignment.is_excluded:
        return assignment
    _exclusion_set(
        assignment,
        action=Action.RATER_INCLUDED,
        by=by,
        excluded_at=None,
        excluded_by=None,
        exclusion_reason="",
    )
    return assignment


@dataclass(frozen=True)
class RaterQualityRow:
    """One rater's quality-control state; ``n_passed``/``n_failed``: answered attention checks
    whose call matched the catch image's kind (an unmistakable real photo called real, a broken
    render called synthetic), and those that did not."""

    assignment_id: int
    rater_id: int
    is_excluded: bool
    reason: str
    qualified: bool | None
    n_passed: int
    n_failed: int


def _says_rightly(prefix: str) -> Q:
    kind = f"{prefix}presentation__item__image__kind"
    says = f"{prefix}says_synthetic"
    return Q(**{says: True, kind: Image.Kind.SYNTHETIC}) | Q(**{says: False, kind: Image.Kind.REAL})


def rater_quality_rows(study_id: int) -> list[RaterQualityRow]:
    """Every rater of the study with their quality-control state, in two queries.

    The attention-check counts start from the study's few catch items, never from every
    presentation: a report of a million judgments must not scan them all for this."""
    checks = {
        a: (n, n_pass)
        for a, n, n_pass in Judgment.objects.filter(
            presentation__item__study_id=study_id, presentation__item__is_attention_check=True
        )
        .values("presentation__assignment_id")
        .annotate(n=Count("pk"), n_passed=Count("pk", filter=_says_rightly("")))
        .values_list("presentation__assignment_id", "n", "n_passed")
    }
    rows = (
        Assignment.objects.filter(study_id=study_id)
        .order_by("pk")
        .values_list("pk", "rater_id", "excluded_at", "exclusion_reason", "qualified")
    )
    out = []
    for a, u, at, reason, q in rows:
        n, n_pass = checks.get(a, (0, 0))
        out.append(RaterQualityRow(a, u, at is not None, reason, q, n_pass, n - n_pass))
    return out
