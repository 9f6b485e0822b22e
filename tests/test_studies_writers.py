"""The two answer writers leave the same rows behind (the way test_exports checks COPY against Python).

Two raters with the same seed get the same sequence; one rater's answers go through the ORM
writer, the other's through the PostgreSQL single statement, with the same answers at the
same times. Every row the answer path writes is then compared, position by position.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError

from tests.factories import open_study, rater_for
from turingtest.studies import rating
from turingtest.studies.models import Assignment, Judgment, Presentation, TutorialAnswer
from turingtest.studies.rating import writers

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)


def _answers(codes: list[str]):
    """A different kind of answer at each position: codes, unsure, none, comments, missing fields."""
    variants = [
        rating.Answer(says_synthetic=True, confidence=5, diagnosis=codes[0], comment="edge", response_ms=900),
        rating.Answer(says_synthetic=False, confidence=1, diagnosis="unsure", response_ms=0),
        rating.Answer(says_synthetic=True),
        rating.Answer(says_synthetic=False, confidence=3, diagnosis=codes[-1], comment="", response_ms=12345),
    ]
    i = 0
    while True:
        yield variants[i % len(variants)]
        i += 1


def _rows(assignment: Assignment) -> dict:
    """Everything the answer path writes for one assignment, keyed by position (not by ids)."""
    a = Assignment.objects.get(pk=assignment.pk)
    return {
        "assignment": (a.started_at, a.finished_at, a.consented_at is not None),
        "presentations": list(
            Presentation.objects.filter(assignment=a)
            .order_by("position")
            .values_list(
                "position",
                "item_id",
                "is_tutorial",
                "repeat_of__position",
                "answered_at",
                "shown_at",
                "image_served_at",
            )
        ),
        "judgments": list(
            Judgment.objects.filter(presentation__assignment=a)
            .order_by("presentation__position")
            .values_list(
                "presentation__position",
                "says_synthetic",
                "confidence",
                "diagnosis_id",
                "diagnosis_unsure",
                "comment",
                "response_ms",
                "answered_at",
                "revision",
                "edited_at",
                "is_late",
            )
        ),
        "tutorial_answers": list(
            TutorialAnswer.objects.filter(presentation__assignment=a)
            .order_by("presentation__position")
            .values_list("presentation__position", "says_synthetic", "answered_at")
        ),
    }


def _answer_all(assignment: Assignment, write: writers.Writer, codes: list[str]) -> list[bool]:
    """Answer every item in order through ``write``, each with a fresh turn as the API reads it;
    also send each answer a second time with the turn read before it (a lost claim)."""
    answers = _answers(codes)
    outcomes = []
    step = 0
    while True:
        turn = rating.turn_load(assignment_id=assignment.pk)
        if turn.current is None:
            return outcomes
        answer = next(answers)
        now = T0 + dt.timedelta(seconds=step)
        outcomes.append(write(turn=turn, answer=answer, client_key=uuid.uuid4(), now=now))
        outcomes.append(write(turn=turn, answer=answer, client_key=uuid.uuid4(), now=now))
        step += 1


def test_the_orm_writer_and_the_single_statement_leave_the_same_rows():
    study = open_study(
        n_real=6,
        n_synthetic=6,
        n_tutorial=2,
        repeat_fraction=0.25,
        repeat_min_gap=3,
        questions={"confidence": True, "diagnosis": True, "comment": True},
    )
    codes = [c["code"] for c in study.config["diagnosis_choices"]]
    _, by_orm = rater_for(study, seed=3)
    _, by_sql = rater_for(study, seed=3)
    assert _rows(by_orm) == _rows(by_sql)  # the same sequence to start from

    outcomes_orm = _answer_all(by_orm, writers.write_orm, codes)
    outcomes_sql = _answer_all(by_sql, writers.write_postgresql, codes)

    assert outcomes_orm == outcomes_sql == [True, False] * (2 + 12 + 3)
    orm, sql = _rows(by_orm), _rows(by_sql)
    assert orm == sql
    # The comparison covers every kind of row and value, not an empty list.
    assert len(orm["tutorial_answers"]) == 2 and len(orm["judgments"]) == 15
    assert {j[3] is not None for j in orm["judgments"]} == {True, False}
    assert orm["assignment"][:2] == (T0, T0 + dt.timedelta(seconds=16))
    assert all(p[4] is not None for p in orm["presentations"])
    assert [p[5] is None for p in orm["presentations"]] == [True] + [False] * 16


@pytest.mark.parametrize("write", [writers.write_orm, writers.write_postgresql], ids=["orm", "postgresql"])
def test_both_writers_write_nothing_for_a_reused_key_or_a_condition_gone_from_the_library(write):
    study = open_study(questions={"confidence": True, "diagnosis": True, "comment": False})
    _, assignment = rater_for(study)
    turn = rating.turn_load(assignment_id=assignment.pk)
    key = uuid.uuid4()
    assert write(turn=turn, answer=rating.Answer(True), client_key=key, now=T0)
    before = _rows(assignment)
    turn = rating.turn_load(assignment_id=assignment.pk)
    with pytest.raises(IntegrityError):
        write(turn=turn, answer=rating.Answer(True), client_key=key, now=T0)
    with pytest.raises(RuntimeError, match="ZZ"):
        write(turn=turn, answer=rating.Answer(True, diagnosis="ZZ"), client_key=uuid.uuid4(), now=T0)
    assert _rows(assignment) == before


def test_both_writers_flag_the_same_late_answers_of_an_exposure_limited_study():
    study = open_study(n_real=3, n_synthetic=3, exposure_ms=500, answer_window_ms=1000)
    _, by_orm = rater_for(study, seed=3)
    _, by_sql = rater_for(study, seed=3)
    for assignment in (by_orm, by_sql):
        # Sent 1 s before each answer (in time), except positions 1 and 4: 5 s before (late).
        for p in Presentation.objects.filter(assignment=assignment):
            late = p.position in (1, 4)
            p.image_served_at = T0 + dt.timedelta(seconds=p.position) - dt.timedelta(seconds=5 if late else 1)
            p.save(update_fields=["image_served_at"])
    codes = [c["code"] for c in study.config["diagnosis_choices"]]
    _answer_all(by_orm, writers.write_orm, codes)
    _answer_all(by_sql, writers.write_postgresql, codes)
    orm, sql = _rows(by_orm), _rows(by_sql)
    assert orm == sql
    assert [j[0] for j in orm["judgments"] if j[-1]] == [1, 4]
