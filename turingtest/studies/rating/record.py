"""Recording a rater's answer: validate once, write once, answer with the next state.

Idempotent on ``client_key`` (ARCHITECTURE.md invariant 4): the same key again returns the
first result, with one row in the database. The usual answer is to the turn's current item
and goes to a writer (``writers``); everything else — a replay, an edit, an item out of
order, another rater's token — is sorted out by ``_not_current``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection
from django.utils import timezone

from turingtest.library.models import Image
from turingtest.studies import quality
from turingtest.studies.models import Judgment, Presentation, TutorialAnswer
from turingtest.studies.rating import writers
from turingtest.studies.rating.state import assignment_state, presentation_mark_shown
from turingtest.studies.rating.turn import Answer, RaterTurn, RatingError, Rules, is_previous, turn_load

# Which writer records a new answer, by database vendor; the ORM writer for any other.
WRITERS: dict[str, writers.Writer] = {"postgresql": writers.write_postgresql}


@dataclass(frozen=True)
class Recorded:
    created: bool  # False: a replay of a recorded client_key, or an edit
    body: dict  # {"recorded": true, "feedback"?: {...}, "state": <assignment_state>}


def validate_answer(answer: Answer, rules: Rules) -> None:
    """``RatingError("invalid")`` with field errors for questions the study does not ask."""
    q = rules.questions
    errors: dict[str, list[str]] = {}
    if answer.confidence is not None and not q["confidence"]:
        errors["confidence"] = ["This study does not ask for confidence."]
    if answer.diagnosis is not None:
        if not q["diagnosis"]:
            errors["diagnosis"] = ["This study does not ask for a diagnosis."]
        elif answer.diagnosis != "unsure" and answer.diagnosis not in rules.codes:
            errors["diagnosis"] = [
                f"Unknown diagnosis {answer.diagnosis!r}; pick one of the list or 'unsure'."
            ]
    if answer.comment and not q["comment"]:
        errors["comment"] = ["This study does not take comments."]
    if errors:
        raise RatingError("invalid", "Invalid answer.", errors=errors)


def judgment_record(*, turn: RaterTurn, token: str, answer: Answer, client_key: uuid.UUID) -> Recorded:
    """Record the rater's answer to the presentation ``token``; the body carries the next state.

    Raises ``RatingError``: ``invalid`` (checked first, whatever the token), ``not_found``
    (not this rater's token), ``out_of_order`` (not the current item), ``already_answered``
    (another key for an answered item of a study with final answers), ``not_editable`` (an edit
    of anything but the previous item), ``finished`` (an edit once every item is answered: the
    score may have been shown, so nothing changes any more), ``key_reused``.
    """
    validate_answer(answer, turn.rules)
    current = turn.current
    try:
        if current is None or current.token != token:
            return _not_current(turn, token, answer, client_key)
        write = WRITERS.get(connection.vendor, writers.write_orm)
        if not write(turn=turn, answer=answer, client_key=client_key, now=timezone.now()):
            # A concurrent submit claimed the item first: a replay, or a conflict.
            return _not_current(turn, token, answer, client_key)
    except IntegrityError:
        # Only a client_key already used for another answer gets here (the claim before the
        # insert rules out a second row for this presentation); nothing was written.
        raise RatingError("key_reused", "This client_key was already used for another answer.") from None
    body = _body(current.pk, current.is_tutorial, turn.after_answer(), answer.says_synthetic)
    if current.is_tutorial and current.position == turn.n_tutorial - 1:
        # The last tutorial answer decides a qualification, once; below the threshold the rater
        # sees this item's feedback, then the thank-you page (no study item is shown).
        if quality.assignment_qualify(assignment_id=turn.assignment_id, config=turn.rules.config) is False:
            body["state"] = None
            body["not_qualified"] = {"detail": quality.NOT_QUALIFIED}
    return Recorded(created=True, body=body)


def _not_current(turn: RaterTurn, token: str, answer: Answer, client_key: uuid.UUID) -> Recorded:
    """The token is not the current item: a replay, an edit, another rater's token, or out of order."""
    p = (
        Presentation.objects.select_related("judgment", "tutorial_answer")
        .filter(public_token=token, assignment_id=turn.assignment_id)
        .first()
    )
    if p is None:
        raise RatingError("not_found", "No such item for you.")
    if p.answered_at is None:
        raise RatingError("out_of_order", "This is not your current item; reload to continue.")
    existing = _existing_answer(p)
    if existing is not None and existing.client_key == client_key:
        return Recorded(created=False, body=_replay_body(p, turn, existing.says_synthetic))
    if turn.rules.config["answers_editable"] and isinstance(existing, Judgment):
        # No score oracle: only the previous item, and only while the score cannot be shown.
        if turn.current is None:
            raise RatingError("finished", _FINISHED)
        if not is_previous(turn, p):
            raise RatingError("not_editable", "Only the previous answer can be changed.")
        if not writers.judgment_edit(
            judgment=existing, answer=answer, client_key=client_key, now=timezone.now()
        ):
            # The rater answered the current item meanwhile (another tab): no longer the previous one.
            raise RatingError("not_editable", "Only the previous answer can be changed.")
        return Recorded(created=False, body=_replay_body(p, turn, answer.says_synthetic))
    raise RatingError("already_answered", "This item was already answered; answers are final.")


_FINISHED = "You have answered every item: your answers are final and can no longer be changed."


def _existing_answer(p: Presentation) -> Judgment | TutorialAnswer | None:
    for attr in ("judgment", "tutorial_answer"):
        try:
            return getattr(p, attr)
        except (Judgment.DoesNotExist, TutorialAnswer.DoesNotExist):
            continue
    return None


def _replay_body(p: Presentation, turn: RaterTurn, says_synthetic: bool) -> dict:
    """The body of a replay or an edit: the state as it is now (the rater may have moved on in
    another tab), shown like any state, so its current item gets its ``shown_at``."""
    now_turn = turn_load(assignment_id=turn.assignment_id)
    presentation_mark_shown(turn=now_turn)
    return _body(p.pk, p.is_tutorial, now_turn, says_synthetic)


def _body(presentation_pk: int, is_tutorial: bool, turn: RaterTurn, says_synthetic: bool) -> dict:
    body: dict[str, Any] = {"recorded": True}
    if is_tutorial:
        body["feedback"] = _feedback(
            presentation_pk, says_synthetic, with_diagnosis=turn.rules.questions["diagnosis"]
        )
    body["state"] = assignment_state(turn=turn)
    return body


def _feedback(presentation_pk: int, says_synthetic: bool, *, with_diagnosis: bool) -> dict:
    """Tutorial items are labelled examples: the truth is shown after the answer.

    Only ever built for a tutorial presentation (``_body``): study items never get feedback.
    In a study that asks for a diagnosis the example's true condition is part of the lesson,
    so the rater calibrates both questions before the items that count.
    """
    kind, code, name = (
        Image.objects.filter(study_items__presentations__pk=presentation_pk)
        .values_list("kind", "condition__code", "condition__name")
        .get()
    )
    truth_synthetic = kind == Image.Kind.SYNTHETIC
    feedback: dict[str, Any] = {
        "correct": truth_synthetic == says_synthetic,
        "truth": "synthetic" if truth_synthetic else "real",
    }
    if with_diagnosis:
        feedback["diagnosis"] = {"code": code, "name": name}
    return feedback
