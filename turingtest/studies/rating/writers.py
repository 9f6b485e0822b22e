"""The two writers of an answer: one PostgreSQL statement, and the ORM.

Both take the same inputs (a validated answer to the turn's current item, a client key and
the time) and leave the same rows behind (``tests/test_studies_writers.py`` runs both on
PostgreSQL and compares them):

- the presentation is claimed (``answered_at`` set) only if it was still unanswered, and the
  item that follows gets ``shown_at`` if it had none (the response shows it);
- a ``Judgment`` (study item) or a ``TutorialAnswer`` (tutorial item) is inserted;
- the assignment's ``started_at`` is set on the first answer, ``finished_at`` on the last.

They return True when this request recorded the answer and False when another request had
claimed the item first (nothing inserted). A ``client_key`` already used elsewhere raises
``IntegrityError``, a condition code that left the library raises ``RuntimeError``; in both
cases nothing is written. ``write_postgresql`` does it all in one round trip without
BEGIN/COMMIT (production, the benchmark); ``write_orm`` in one transaction (SQLite, and the
reference the single statement is tested against). Edits of an editable answer are rare and
always go through the ORM (``judgment_edit``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import uuid
from typing import Protocol

from django.db import connection, transaction
from django.db.models import Case, Exists, F, Q, Value, When
from django.db.models.functions import Coalesce

from turingtest.library.models import Condition
from turingtest.studies.models import Assignment, Judgment, Presentation, TutorialAnswer
from turingtest.studies.rating.turn import Answer, RaterTurn
from turingtest.trail.services import Action, event_record


class Writer(Protocol):
    def __call__(
        self, *, turn: RaterTurn, answer: Answer, client_key: uuid.UUID, now: dt.datetime
    ) -> bool: ...


def _diagnosis_code(turn: RaterTurn, answer: Answer) -> str | None:
    """The condition code to store: none for tutorial items, "unsure" or no diagnosis."""
    current = turn.upcoming[0]
    if current.is_tutorial or answer.diagnosis in (None, "unsure"):
        return None
    return answer.diagnosis


def _condition_missing(code: str) -> RuntimeError:
    # A code of the frozen list that left the library: a broken study, not a rater error.
    return RuntimeError(f"condition {code!r} not found")


def _judgment_fields(answer: Answer, code: str | None) -> dict:
    """The ``Judgment`` columns an answer sets (ORM writer and edits)."""
    diagnosis_id = None
    if code is not None:
        diagnosis_id = Condition.objects.filter(code=code).values_list("pk", flat=True).first()
        if diagnosis_id is None:
            raise _condition_missing(code)
    return {
        "says_synthetic": answer.says_synthetic,
        "confidence": answer.confidence,
        "diagnosis_id": diagnosis_id,
        "diagnosis_unsure": answer.diagnosis == "unsure",
        "comment": answer.comment,
        "response_ms": answer.response_ms,
    }


# --- ORM --------------------------------------------------------------------------------


def write_orm(*, turn: RaterTurn, answer: Answer, client_key: uuid.UUID, now: dt.datetime) -> bool:
    current = turn.upcoming[0]
    following = turn.upcoming[1] if len(turn.upcoming) > 1 else None
    code = _diagnosis_code(turn, answer)
    with transaction.atomic():
        # Looked up first: an unknown code must leave nothing behind, the claim included.
        judgment = None if current.is_tutorial else _judgment_fields(answer, code)
        # One UPDATE claims the current item (conditional on answered_at still empty) and stamps
        # the following one; that row always matches, so the count says who won the claim.
        match = Q(pk=current.pk, answered_at__isnull=True)
        fields = {"answered_at": Case(When(pk=current.pk, then=Value(now)), default=F("answered_at"))}
        if following is not None:
            match |= Q(pk=following.pk)
            fields["shown_at"] = Case(
                When(pk=following.pk, shown_at__isnull=True, then=Value(now)), default=F("shown_at")
            )
        claimed = Presentation.objects.filter(match).update(**fields)
        if claimed < (2 if following else 1):
            return False
        if judgment is None:
            TutorialAnswer.objects.create(
                presentation_id=current.pk,
                client_key=client_key,
                says_synthetic=answer.says_synthetic,
                answered_at=now,
            )
        else:
            Judgment.objects.create(
                presentation_id=current.pk,
                client_key=client_key,
                answered_at=now,
                is_late=is_late(turn, now),
                **judgment,
            )
        progress = {}
        if not turn.has_started:
            progress["started_at"] = Coalesce(F("started_at"), Value(now))
        if following is None:
            progress["finished_at"] = Value(now)
        if progress:
            Assignment.objects.filter(pk=turn.assignment_id).update(**progress)
    return True


def judgment_edit(*, judgment: Judgment, answer: Answer, client_key: uuid.UUID, now: dt.datetime) -> bool:
    """Replace an editable answer (a new key, one revision more); the presentation stays claimed.

    Only while the item after it is still unanswered (it is the previous item of an unfinished
    assignment), checked in the UPDATE itself, so an edit racing the last answer cannot slip in
    after the score was shown. False when nothing changed.
    """
    code = None if answer.diagnosis in (None, "unsure") else answer.diagnosis
    p = (
        Presentation.objects.filter(pk=judgment.presentation_id)
        .values("assignment_id", "position", "assignment__study_id")
        .get()
    )
    next_open = Presentation.objects.filter(
        assignment_id=p["assignment_id"], position=p["position"] + 1, answered_at__isnull=True
    )
    fields = _judgment_fields(answer, code)
    with transaction.atomic():
        changed = bool(
            Judgment.objects.filter(pk=judgment.pk)
            .filter(Exists(next_open))
            .update(client_key=client_key, revision=judgment.revision + 1, edited_at=now, **fields)
        )
        if changed:  # the first answer is its own record; only a change leaves an audit event
            event_record(
                action=Action.JUDGMENT_CHANGED,
                obj=judgment,
                study=p["assignment__study_id"],
                before={**{f: getattr(judgment, f) for f in fields}, "revision": judgment.revision},
                after={**fields, "revision": judgment.revision + 1},
            )
    return changed


def is_late(turn: RaterTurn, now: dt.datetime) -> bool:
    """An answer to an exposure-limited item arriving after exposure_ms + answer_window_ms from
    when the image was sent (both writers store this same flag)."""
    config = turn.rules.config
    served = turn.upcoming[0].image_served_at
    if not config["exposure_ms"] or served is None:
        return False
    allowed = dt.timedelta(milliseconds=config["exposure_ms"] + config["answer_window_ms"])
    return now - served > allowed


# --- PostgreSQL -------------------------------------------------------------------------


def write_postgresql(*, turn: RaterTurn, answer: Answer, client_key: uuid.UUID, now: dt.datetime) -> bool:
    """Claim, insert and update progress in ONE statement (data-modifying CTEs).

    The same guarantees as ``write_orm``'s transaction: the claim is the conditional UPDATE (a
    concurrent submit waits on the row lock, then sees ``answered_at`` set and claims nothing);
    the insert and the progress update only happen when the claim matched every row; the
    one-to-one and unique ``client_key`` constraints abort the whole statement, and so does a
    condition code that is not in the library (it claims nothing).
    """
    current = turn.upcoming[0]
    following = turn.upcoming[1] if len(turn.upcoming) > 1 else None
    code = _diagnosis_code(turn, answer)
    progress = []
    if not turn.has_started:
        progress.append("started_at = COALESCE(started_at, %(now)s)")
    if following is None:
        progress.append("finished_at = %(now)s")
    sql = _statement(current.is_tutorial, code is not None, ", ".join(progress))
    params = {
        "now": now,
        "current": current.pk,
        "following": following.pk if following else -1,
        "expected": 2 if following else 1,
        "key": client_key,
        "says_synthetic": answer.says_synthetic,
        "confidence": answer.confidence,
        "unsure": answer.diagnosis == "unsure",
        "comment": answer.comment,
        "response_ms": answer.response_ms,
        "code": code,
        "assignment": turn.assignment_id,
        "is_late": is_late(turn, now),
    }
    # One statement is its own transaction; inside a caller's transaction it gets a savepoint
    # like the ORM writer, so an IntegrityError leaves that transaction usable.
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            claimed, inserted, code_known = cursor.fetchone()
    if not code_known:
        raise _condition_missing(code or "")
    if claimed < params["expected"]:
        return False
    if inserted != 1:  # cannot happen: the insert runs whenever the claim matched
        raise RuntimeError("the answer was claimed but not inserted")
    return True


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _statement(is_tutorial: bool, with_code: bool, progress: str) -> str:
    p, a, c = _table(Presentation), _table(Assignment), _table(Condition)
    cond = f"SELECT id FROM {c} WHERE code = %(code)s" if with_code else "SELECT CAST(NULL AS bigint) AS id"
    won = "(SELECT count(*) FROM claim) = %(expected)s"
    if is_tutorial:
        insert = (
            f"INSERT INTO {_table(TutorialAnswer)} (presentation_id, client_key, says_synthetic, answered_at) "
            f"SELECT %(current)s, %(key)s, %(says_synthetic)s, %(now)s WHERE {won} RETURNING 1"
        )
    else:
        insert = (
            f"INSERT INTO {_table(Judgment)} (presentation_id, client_key, says_synthetic, confidence, "
            f"diagnosis_id, diagnosis_unsure, comment, response_ms, answered_at, revision, is_late) "
            f"SELECT %(current)s, %(key)s, %(says_synthetic)s, %(confidence)s, (SELECT id FROM cond), "
            f"%(unsure)s, %(comment)s, %(response_ms)s, %(now)s, 1, %(is_late)s WHERE {won} RETURNING 1"
        )
    progress_cte = (
        f", progress AS (UPDATE {a} SET {progress} WHERE id = %(assignment)s AND {won} RETURNING 1)"
        if progress
        else ""
    )
    return (
        f"WITH cond AS ({cond}), "
        f"claim AS (UPDATE {p} SET "
        f"answered_at = CASE WHEN id = %(current)s THEN %(now)s ELSE answered_at END, "
        f"shown_at = CASE WHEN id = %(following)s AND shown_at IS NULL THEN %(now)s ELSE shown_at END "
        f"WHERE ((id = %(current)s AND answered_at IS NULL) OR id = %(following)s) "
        f"AND EXISTS (SELECT 1 FROM cond) RETURNING id), "
        f"ins AS ({insert}){progress_cte} "
        f"SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM ins), EXISTS (SELECT 1 FROM cond)"
    )
