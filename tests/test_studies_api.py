"""The rater JSON API: state, answers (idempotent, in order), and the blinded image endpoint."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from tests.factories import RaterFactory, open_study, rater_for
from turingtest.studies import services
from turingtest.studies.models import Assignment, Judgment, Presentation, Study, TutorialAnswer

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def answer(c: Client, study_id: int, token: str, key: str | None = None, **fields):
    payload = {"token": token, "client_key": key or str(uuid.uuid4()), "says_synthetic": True, **fields}
    return c.post(f"/api/rate/{study_id}/answers", json.dumps(payload), content_type="application/json")


def state(c: Client, study_id: int):
    return c.get(f"/api/rate/{study_id}/state")


def test_the_state_gives_the_first_item_progress_and_a_prefetch_url():
    study = open_study(n_real=3, n_synthetic=3)
    rater, assignment = rater_for(study)
    r = state(client_for(rater), study.pk)
    assert r.status_code == 200
    body = r.json()
    first = assignment.presentations.order_by("position")[0]
    second = assignment.presentations.order_by("position")[1]
    assert body["item"] == {
        "token": first.public_token,
        "image_url": f"/img/{first.public_token}",
        "position": 1,
        "is_tutorial": False,
    }
    assert body["next_image_url"] == f"/img/{second.public_token}"
    assert body["progress"] == {"done": 0, "total": 6}
    assert body["finished"] is False and body["score"] is None
    assert body["study"]["questions"] == {"confidence": True, "diagnosis": False, "comment": False}
    first.refresh_from_db()
    assert first.shown_at is not None


def test_an_answer_is_recorded_once_and_returns_the_next_item():
    study = open_study()
    rater, assignment = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    r = answer(c, study.pk, token, confidence=4, response_ms=1234)
    assert r.status_code == 201
    body = r.json()
    assert body["recorded"] is True and "feedback" not in body
    assert body["state"]["progress"]["done"] == 1
    assert body["state"]["item"]["token"] != token
    j = Judgment.objects.get()
    assert (j.says_synthetic, j.confidence, j.response_ms) == (True, 4, 1234)
    assert Presentation.objects.get(public_token=token).answered_at is not None


def test_the_same_client_key_twice_records_one_judgment_and_returns_the_same_body():
    study = open_study()
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    key = str(uuid.uuid4())
    first = answer(c, study.pk, token, key=key, says_synthetic=False)
    again = answer(c, study.pk, token, key=key, says_synthetic=False)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert Judgment.objects.count() == 1


def test_a_second_answer_with_another_key_is_a_conflict_when_answers_are_final():
    study = open_study()
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    assert answer(c, study.pk, token).status_code == 201
    r = answer(c, study.pk, token, says_synthetic=False)
    assert r.status_code == 409 and r.json()["code"] == "already_answered"
    assert Judgment.objects.get().says_synthetic is True


def test_editable_answers_can_be_changed_through_the_previous_item():
    study = open_study(answers_editable=True)
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    body = answer(c, study.pk, token, says_synthetic=True).json()
    assert body["state"]["previous"]["token"] == token
    assert body["state"]["previous"]["answer"]["says_synthetic"] is True
    r = answer(c, study.pk, token, says_synthetic=False)
    assert r.status_code == 200
    j = Judgment.objects.get()
    assert (j.says_synthetic, j.revision) == (False, 2)
    assert client_for(rater).get(f"/img/{token}").status_code == 200


def test_answering_an_item_out_of_order_is_a_conflict_and_records_nothing():
    study = open_study()
    rater, assignment = rater_for(study)
    later = assignment.presentations.order_by("position")[2]
    r = answer(client_for(rater), study.pk, later.public_token)
    assert r.status_code == 409 and r.json()["code"] == "out_of_order"
    assert Judgment.objects.count() == 0


def test_another_raters_token_is_not_found():
    study = open_study()
    rater, _ = rater_for(study)
    other, other_assignment = rater_for(study, seed=8)
    token = other_assignment.presentations.order_by("position")[0].public_token
    r = answer(client_for(rater), study.pk, token)
    assert r.status_code == 404
    assert client_for(rater).get(f"/img/{token}").status_code == 404
    assert Judgment.objects.count() == 0


def test_a_rater_of_another_study_gets_404_for_this_study():
    study = open_study()
    other_study = open_study()
    rater, _ = rater_for(other_study)
    assert state(client_for(rater), study.pk).status_code == 404


def test_anonymous_users_are_refused():
    study = open_study()
    _, assignment = rater_for(study)
    token = assignment.presentations.first().public_token
    c = Client()
    assert state(c, study.pk).status_code == 403
    assert answer(c, study.pk, token).status_code == 403
    assert c.get(f"/img/{token}").status_code == 404


def test_a_closed_study_answers_410_and_serves_no_images():
    study = open_study()
    rater, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    services.study_close(study=study)
    c = client_for(rater)
    assert state(c, study.pk).status_code == 410
    assert answer(c, study.pk, token).status_code == 410
    assert c.get(f"/img/{token}").status_code == 404


def test_a_rater_without_consent_is_refused_until_they_consent():
    study = open_study()
    rater, assignment = rater_for(study, consent=False)
    r = state(client_for(rater), study.pk)
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    services.assignment_consent(assignment=assignment)
    assert state(client_for(rater), study.pk).status_code == 200


def test_bad_answers_get_field_errors_and_write_nothing():
    study = open_study()
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    r = c.post(
        f"/api/rate/{study.pk}/answers",
        json.dumps({"token": token, "client_key": "nope", "confidence": 9}),
        content_type="application/json",
    )
    assert r.status_code == 400
    assert set(r.json()) == {"client_key", "says_synthetic", "confidence"}
    r = answer(c, study.pk, token, diagnosis="MEL")
    assert r.status_code == 400 and "diagnosis" in r.json()
    r = answer(c, study.pk, token, comment="hello")
    assert r.status_code == 400 and "comment" in r.json()
    assert Judgment.objects.count() == 0
    r = c.post(f"/api/rate/{study.pk}/answers", "[1, 2]", content_type="application/json")
    assert r.status_code == 400 and r.json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


def test_diagnosis_accepts_the_studys_conditions_and_unsure():
    study = open_study(questions={"confidence": True, "diagnosis": True, "comment": True})
    rater, _ = rater_for(study)
    c = client_for(rater)
    s = state(c, study.pk).json()
    codes = [d["code"] for d in s["diagnosis_choices"]]
    assert codes == ["T0", "T1"]
    s = answer(c, study.pk, s["item"]["token"], diagnosis="T1", comment="  looks odd ").json()["state"]
    answer(c, study.pk, s["item"]["token"], diagnosis="unsure")
    j1, j2 = Judgment.objects.order_by("presentation__position")
    assert (j1.diagnosis.code, j1.diagnosis_unsure, j1.comment) == ("T1", False, "looks odd")
    assert (j2.diagnosis, j2.diagnosis_unsure) == (None, True)


def test_the_answer_path_follows_the_stored_config_not_a_copy_cached_from_an_earlier_request():
    study = open_study()
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = answer(c, study.pk, state(c, study.pk).json()["item"]["token"]).json()["state"]["item"]["token"]
    assert answer(c, study.pk, token, comment="hello").status_code == 400
    config = {**study.config, "questions": {"confidence": True, "diagnosis": False, "comment": True}}
    Study.objects.filter(pk=study.pk).update(config=config)
    r = answer(c, study.pk, token, comment="hello")
    assert r.status_code == 201 and r.json()["state"]["study"]["questions"]["comment"] is True
    assert Judgment.objects.get(presentation__public_token=token).comment == "hello"


def test_a_listed_diagnosis_missing_from_the_library_fails_and_leaves_the_item_unanswered():
    study = open_study(questions={"confidence": True, "diagnosis": True, "comment": False})
    choices = [*study.config["diagnosis_choices"], {"code": "ZZ", "name": "Gone"}]
    Study.objects.filter(pk=study.pk).update(config={**study.config, "diagnosis_choices": choices})
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = state(c, study.pk).json()["item"]["token"]
    with pytest.raises(RuntimeError, match="ZZ"):
        answer(c, study.pk, token, diagnosis="ZZ")
    assert Judgment.objects.count() == 0
    assert Presentation.objects.get(public_token=token).answered_at is None
    assert answer(c, study.pk, token, diagnosis="T0").status_code == 201


def test_tutorial_items_come_first_give_feedback_and_stay_out_of_the_judgments():
    study = open_study(n_tutorial=2, n_real=3, n_synthetic=3)
    # open_study draws 3+3 for the pool; the tutorial needs 2 more images.
    rater, assignment = rater_for(study)
    c = client_for(rater)
    s = state(c, study.pk).json()
    assert s["item"]["is_tutorial"] is True and s["tutorial"] == {"done": 0, "total": 2}
    for _ in range(2):
        p = Presentation.objects.select_related("item__image").get(public_token=s["item"]["token"])
        body = answer(c, study.pk, p.public_token, says_synthetic=True).json()
        truth = p.item.image.kind
        assert body["feedback"] == {"correct": truth == "synthetic", "truth": truth}
        s = body["state"]
    assert s["item"]["is_tutorial"] is False and s["item"]["position"] == 1
    assert s["progress"] == {"done": 0, "total": 6}
    assert TutorialAnswer.objects.count() == 2 and Judgment.objects.count() == 0


def test_tutorial_feedback_names_the_true_diagnosis_only_when_the_study_asks_for_one():
    for asks in (True, False):
        study = open_study(
            n_tutorial=1, n_real=1, n_synthetic=1, questions={"confidence": False, "diagnosis": asks}
        )
        rater, _ = rater_for(study)
        c = client_for(rater)
        s = state(c, study.pk).json()
        p = Presentation.objects.select_related("item__image__condition").get(public_token=s["item"]["token"])
        body = answer(c, study.pk, p.public_token).json()
        condition = p.item.image.condition
        if asks:
            assert body["feedback"]["diagnosis"] == {"code": condition.code, "name": condition.name}
        else:
            assert "diagnosis" not in body["feedback"]
        # Study items never get feedback, diagnosis or not.
        s = body["state"]
        while s["item"]:
            body = answer(c, study.pk, s["item"]["token"]).json()
            assert "feedback" not in body
            s = body["state"]


def test_the_finished_state_counts_each_image_once_however_often_it_was_shown():
    study = open_study(n_real=3, n_synthetic=3, repeat_fraction=0.5, repeat_min_gap=2)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    s = state(c, study.pk).json()
    assert "images" not in s["progress"], "counted only at the end"
    while s["item"]:
        s = answer(c, study.pk, s["item"]["token"]).json()["state"]
    n_repeats = assignment.presentations.filter(repeat_of__isnull=False).count()
    assert n_repeats > 0
    assert s["progress"] == {"done": 6 + n_repeats, "total": 6 + n_repeats, "images": 6}


def test_finishing_shows_the_score_only_when_the_study_allows_it():
    for show in (True, False):
        study = open_study(n_real=1, n_synthetic=1, show_score=show)
        rater, _ = rater_for(study)
        c = client_for(rater)
        s = state(c, study.pk).json()
        while s["item"]:
            s = answer(c, study.pk, s["item"]["token"], says_synthetic=True).json()["state"]
        assert s["finished"] is True and s["next_image_url"] is None
        assert s["progress"] == {"done": 2, "total": 2, "images": 2}
        assert s["score"] == ({"n_correct": 1, "n_answered": 2, "accuracy": 0.5} if show else None)
        a = Assignment.objects.get(study=study, rater=rater)
        assert a.n_items == 2 and a.presentations.filter(answered_at__isnull=False).count() == 2
        assert a.started_at is not None and a.finished_at is not None and a.finished_at >= a.started_at


def test_images_are_served_only_for_the_current_and_next_item():
    study = open_study()
    rater, assignment = rater_for(study)
    c = client_for(rater)
    ps = list(assignment.presentations.order_by("position"))
    assert c.get(f"/img/{ps[0].public_token}").status_code == 200
    assert c.get(f"/img/{ps[1].public_token}").status_code == 200
    assert c.get(f"/img/{ps[2].public_token}").status_code == 404
    answer(c, study.pk, ps[0].public_token)
    assert c.get(f"/img/{ps[0].public_token}").status_code == 404  # answers are final
    assert c.get(f"/img/{ps[2].public_token}").status_code == 200


def test_the_openapi_schema_is_public_and_documents_the_rater_api():
    r = Client().get("/api/schema/")
    assert r.status_code == 200
    text = r.content.decode()
    assert "/api/rate/{study_id}/answers" in text and "client_key" in text


def test_a_non_rater_user_without_an_assignment_gets_404():
    study = open_study()
    assert state(client_for(RaterFactory()), study.pk).status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "other_rater", "owner", "other_researcher", "admin", "rater"])
def test_only_the_assigned_rater_reaches_the_api_and_the_images(who):
    from tests.factories import AdminFactory, ResearcherFactory

    owner = ResearcherFactory()
    study = open_study(owner=owner)
    rater, assignment = rater_for(study)
    other_rater, _ = rater_for(open_study())
    users = {
        "anonymous": None,
        "other_rater": other_rater,
        "owner": owner,
        "other_researcher": ResearcherFactory(),
        "admin": AdminFactory(),
        "rater": rater,
    }
    c = Client()
    if users[who] is not None:
        c.force_login(users[who])
    token = assignment.presentations.order_by("position")[0].public_token
    expected_api = {"anonymous": 403, "rater": 200}.get(who, 404)
    assert state(c, study.pk).status_code == expected_api
    assert c.get(f"/img/{token}").status_code == (200 if who == "rater" else 404)
    r = answer(c, study.pk, token)
    assert r.status_code == (201 if who == "rater" else expected_api)
    assert Judgment.objects.count() == (1 if who == "rater" else 0)
