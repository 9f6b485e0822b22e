"""The rater's turn: access, the state (no hidden writes), and recording answers with either writer.

Tests that record answers run once per writer: the ORM writer everywhere, the PostgreSQL
single statement where the database is PostgreSQL (marker ``postgres``).
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import RaterFactory, open_study, rater_for
from turingtest.studies import rating, services
from turingtest.studies.models import Assignment, Judgment, Presentation
from turingtest.studies.rating import record, writers

pytestmark = pytest.mark.django_db

WRITERS = {"orm": writers.write_orm, "postgresql": writers.write_postgresql}


@pytest.fixture(params=["orm", pytest.param("postgresql", marks=pytest.mark.postgres)])
def writer(request, monkeypatch) -> str:
    """Every answer in the test goes through this writer, whatever the database."""
    monkeypatch.setattr(record, "WRITERS", {connection.vendor: WRITERS[request.param]})
    return request.param


def _record(assignment: Assignment, token: str, key: uuid.UUID, answer: rating.Answer | None = None):
    turn = rating.turn_load(assignment_id=assignment.pk)
    return rating.judgment_record(
        turn=turn, token=token, answer=answer or rating.Answer(says_synthetic=True), client_key=key
    )


def test_judgment_record_twice_with_one_key_writes_once(writer):
    study = open_study()
    _, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    key = uuid.uuid4()
    answer = rating.Answer(says_synthetic=True, confidence=3)
    first = _record(assignment, token, key, answer)
    again = _record(assignment, token, key, answer)
    assert (first.created, again.created) == (True, False) and first.body == again.body
    assert Judgment.objects.count() == 1


def test_a_client_key_reused_for_another_item_is_a_conflict_and_rolls_back(writer):
    study = open_study()
    _, assignment = rater_for(study)
    p0, p1 = assignment.presentations.order_by("position")[:2]
    key = uuid.uuid4()
    _record(assignment, p0.public_token, key)
    with pytest.raises(rating.RatingError) as exc:
        _record(assignment, p1.public_token, key)
    assert exc.value.reason == "key_reused"
    p1.refresh_from_db()
    assert p1.answered_at is None and Judgment.objects.count() == 1


def test_an_answer_with_a_stale_turn_is_replayed_not_written_twice(writer):
    """The turn read before a concurrent submit won: the writer claims nothing, the replay answers."""
    study = open_study()
    _, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    key = uuid.uuid4()
    stale = rating.turn_load(assignment_id=assignment.pk)
    _record(assignment, token, key)
    again = rating.judgment_record(turn=stale, token=token, answer=rating.Answer(True), client_key=key)
    assert not again.created and Judgment.objects.count() == 1
    with pytest.raises(rating.RatingError) as exc:
        rating.judgment_record(turn=stale, token=token, answer=rating.Answer(True), client_key=uuid.uuid4())
    assert exc.value.reason == "already_answered"


def test_the_answer_is_validated_before_anything_else():
    study = open_study()
    _, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[2].public_token  # out of order
    with pytest.raises(rating.RatingError) as exc:
        _record(assignment, token, uuid.uuid4(), rating.Answer(True, comment="not asked"))
    assert exc.value.reason == "invalid" and set(exc.value.errors) == {"comment"}


def test_reading_the_state_writes_nothing_and_marking_shown_stamps_the_current_item_once():
    study = open_study()
    rater, assignment = rater_for(study)
    turn = rating.turn_for_rater(study_id=study.pk, user=rater)
    with CaptureQueriesContext(connection) as ctx:
        state = rating.assignment_state(turn=turn)
    assert not [q for q in ctx.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    first = Presentation.objects.get(public_token=state["item"]["token"])
    assert first.shown_at is None
    rating.presentation_mark_shown(turn=turn)
    first.refresh_from_db()
    shown_at = first.shown_at
    assert shown_at is not None
    rating.presentation_mark_shown(turn=rating.turn_for_rater(study_id=study.pk, user=rater))
    first.refresh_from_db()
    assert first.shown_at == shown_at


@pytest.mark.parametrize(
    ("setup", "reason"),
    [("no_assignment", "not_found"), ("no_consent", "consent_required"), ("closed", "closed")],
)
def test_turn_for_rater_refuses_with_a_reason(setup, reason):
    study = open_study()
    rater, _ = rater_for(study, consent=setup != "no_consent")
    if setup == "no_assignment":
        rater = RaterFactory()
    if setup == "closed":
        services.study_close(study=study)
    with pytest.raises(rating.RatingError) as exc:
        rating.turn_for_rater(study_id=study.pk, user=rater)
    assert exc.value.reason == reason


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_key", [True, False], ids=["one-key", "two-keys"])
def test_concurrent_double_submits_record_one_judgment_on_postgresql(writer, same_key):
    """Two threads, two connections, same answer at once, each with its turn read as the API
    reads it: the claim lets exactly one write; with two keys the loser gets already_answered."""
    study = open_study()
    rater, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    keys = [uuid.uuid4()] * 2 if same_key else [uuid.uuid4(), uuid.uuid4()]
    barrier = threading.Barrier(2)
    results: list = []

    def submit(key) -> None:
        try:
            barrier.wait()
            turn = rating.turn_for_rater(study_id=study.pk, user=rater)
            recorded = rating.judgment_record(
                turn=turn, token=token, answer=rating.Answer(True), client_key=key
            )
            results.append(201 if recorded.created else 200)
        except rating.RatingError as exc:
            results.append(exc.reason)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results.append(exc)
        finally:
            connection.close()

    for _ in range(10):  # the interleavings differ from run to run: try several
        results.clear()
        threads = [threading.Thread(target=submit, args=(key,)) for key in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results, key=str) == ([200, 201] if same_key else [201, "already_answered"]), results
        assert Judgment.objects.count() == 1
        Judgment.objects.all().delete()
        Presentation.objects.filter(public_token=token).update(answered_at=None)
        Assignment.objects.filter(pk=assignment.pk).update(finished_at=None)
