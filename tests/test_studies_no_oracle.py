"""No score oracle, and exposure limits held by the server (issue 12).

The attack from the issue: in a study with editable answers and the score shown, a rater who
has finished re-POSTs an earlier token with a new client_key and the other answer, and reads
the truth off the score. Answers can now change only for the immediately previous item, only
while the assignment is unfinished; once the last answer is in (and the score shown) they are
frozen.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import ResearcherFactory, open_study, rater_for
from turingtest.studies.models import Judgment, Presentation

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def post(c: Client, study_id: int, token: str, *, says_synthetic: bool, key: str | None = None):
    payload = {"token": token, "client_key": key or str(uuid.uuid4()), "says_synthetic": says_synthetic}
    return c.post(f"/api/rate/{study_id}/answers", json.dumps(payload), content_type="application/json")


def rows(assignment) -> list[tuple]:
    return list(
        Judgment.objects.filter(presentation__assignment=assignment)
        .order_by("presentation__position")
        .values_list("presentation__position", "says_synthetic", "revision", "client_key")
    )


def test_a_finished_rater_cannot_read_the_truth_off_the_score_by_changing_an_earlier_answer():
    study = open_study(n_real=4, n_synthetic=4, answers_editable=True, show_score=True)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    body = c.get(f"/api/rate/{study.pk}/state").json()
    tokens = []
    while body["item"]:
        assert body["score"] is None, "no score before the last answer"
        tokens.append(body["item"]["token"])
        body = post(c, study.pk, tokens[-1], says_synthetic=True).json()["state"]
    assert body["finished"] and body["score"]["n_answered"] == 8
    assert body["previous"] is None, "nothing to go back to once finished"
    score, before = body["score"], rows(assignment)

    # The attack: every earlier token again, a new key, the other answer.
    for token in tokens:
        r = post(c, study.pk, token, says_synthetic=False)
        assert r.status_code == 409 and r.json()["code"] == "finished", r.content
        assert "score" not in r.json()
    assert rows(assignment) == before
    assert c.get(f"/api/rate/{study.pk}/state").json()["score"] == score
    # Nor can the images of answered items be fetched again to look twice.
    assert all(c.get(f"/img/{t}").status_code == 404 for t in tokens)


def test_only_the_immediately_previous_answer_can_change_while_unfinished():
    study = open_study(n_real=3, n_synthetic=3, answers_editable=True, show_score=True)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    first = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    second = post(c, study.pk, first, says_synthetic=True).json()["state"]["item"]["token"]
    body = post(c, study.pk, second, says_synthetic=True).json()["state"]
    assert body["previous"]["token"] == second

    r = post(c, study.pk, first, says_synthetic=False)  # two back
    assert r.status_code == 409 and r.json()["code"] == "not_editable"
    assert c.get(f"/img/{first}").status_code == 404
    assert c.get(f"/img/{second}").status_code == 200

    r = post(c, study.pk, second, says_synthetic=False)  # the previous one: the B key
    assert r.status_code == 200 and r.json()["state"]["score"] is None
    assert [(p, s, rev) for p, s, rev, _ in rows(assignment)] == [(0, True, 1), (1, False, 2)]
    # A retry of that edit (same key) is a replay, not a third revision.
    key = str(Judgment.objects.get(presentation__position=1, presentation__assignment=assignment).client_key)
    assert post(c, study.pk, second, says_synthetic=False, key=key).status_code == 200
    assert rows(assignment)[1][2] == 2


def test_a_replay_of_the_last_answer_after_finishing_still_returns_the_first_result():
    study = open_study(n_real=1, n_synthetic=1, answers_editable=True, show_score=True)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    token = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    token = post(c, study.pk, token, says_synthetic=True).json()["state"]["item"]["token"]
    key = str(uuid.uuid4())
    assert post(c, study.pk, token, says_synthetic=False, key=key).status_code == 201
    again = post(c, study.pk, token, says_synthetic=False, key=key)
    assert again.status_code == 200 and again.json()["state"]["finished"]


# --- exposure limits ---------------------------------------------------------------------


def test_an_exposure_limited_image_is_sent_once_and_never_prefetched():
    study = open_study(n_real=2, n_synthetic=2, exposure_ms=500)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    body = c.get(f"/api/rate/{study.pk}/state").json()
    assert body["next_image_url"] is None
    assert body["item"]["image_available"] is True
    order = list(assignment.presentations.order_by("position"))
    assert c.get(f"/img/{order[1].public_token}").status_code == 404, "no prefetch of the next item"

    first = c.get(body["item"]["image_url"])
    assert first.status_code == 200 and first["Cache-Control"] == "private, no-store"
    served = Presentation.objects.get(pk=order[0].pk).image_served_at
    assert served is not None
    again = c.get(body["item"]["image_url"])
    assert again.status_code == 410 and b"already shown" in again.content
    assert Presentation.objects.get(pk=order[0].pk).image_served_at == served
    # After a reload the page answers from memory instead of asking again.
    assert c.get(f"/api/rate/{study.pk}/state").json()["item"]["image_available"] is False

    # Every refusal is the same bytes, whatever the item's kind.
    refusals = {again.content}
    token = body["item"]["token"]
    for _ in range(3):
        nxt = post(c, study.pk, token, says_synthetic=True).json()["state"]["item"]
        token = nxt["token"]
        assert c.get(nxt["image_url"]).status_code == 200
        refusals.add(c.get(nxt["image_url"]).content)
    assert len(refusals) == 1


def test_answers_arriving_after_exposure_plus_the_answer_window_are_flagged_late_and_counted():
    study = open_study(n_real=2, n_synthetic=2, exposure_ms=500, answer_window_ms=1000)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    body = c.get(f"/api/rate/{study.pk}/state").json()
    c.get(body["item"]["image_url"])
    body = post(c, study.pk, body["item"]["token"], says_synthetic=True).json()["state"]  # in time
    c.get(body["item"]["image_url"])
    Presentation.objects.filter(public_token=body["item"]["token"]).update(
        image_served_at=timezone.now() - dt.timedelta(seconds=2)
    )
    post(c, study.pk, body["item"]["token"], says_synthetic=True)  # 2 s > 0.5 s + 1 s
    late = list(
        Judgment.objects.filter(presentation__assignment=assignment)
        .order_by("presentation__position")
        .values_list("is_late", flat=True)
    )
    assert late == [False, True]
    owner = client_for(study.owner)
    page = owner.get(f"/studies/{study.pk}/").content.decode()
    assert "flagged late (1 so far)" in page


def test_studies_without_an_exposure_limit_keep_prefetching_and_repeat_image_requests():
    study = open_study(n_real=2, n_synthetic=2, owner=ResearcherFactory())
    rater, _ = rater_for(study)
    c = client_for(rater)
    body = c.get(f"/api/rate/{study.pk}/state").json()
    assert body["next_image_url"] and "image_available" not in body["item"]
    assert c.get(body["item"]["image_url"]).status_code == 200
    assert c.get(body["item"]["image_url"]).status_code == 200
    assert c.get(body["next_image_url"]).status_code == 200
