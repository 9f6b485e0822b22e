"""Rater quality control: tutorial qualification, attention checks, exclusion (issue 13)."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.test import Client

from tests.factories import ImageFactory, ResearcherFactory, open_study, rater_for
from turingtest import reports
from turingtest.exports.raters import raters_csv
from turingtest.library.models import Image
from turingtest.studies import protocol, quality, services
from turingtest.studies.models import Assignment, Presentation, StudyItem
from turingtest.studies.protocol import REAL, SYNTHETIC
from turingtest.trail.models import AuditEvent
from turingtest.trail.services import Action

# --- the protocol (pure) ----------------------------------------------------------------


def _items(n: int) -> list[tuple[int, str, bool]]:
    return [(i, REAL if i % 2 else SYNTHETIC, False) for i in range(n)]


def _cfg(**kw) -> dict:
    return protocol.config_with_defaults({"n_real": 10, "n_synthetic": 10, **kw})


def test_attention_checks_are_placed_once_each_at_seeded_positions_never_first():
    c = _cfg(repeat_fraction=0.2, repeat_min_gap=3)
    plan = lambda seed, attention: protocol.plan_sequence(  # noqa: E731
        items=_items(20), tutorial=[100, 101], config=c, seed=seed, attention=attention
    )
    a = plan(5, [900, 901])
    assert a == plan(5, [901, 900])  # deterministic, whatever the order given
    positions = [p for p, s in enumerate(a) if s.is_attention_check]
    assert sorted(a[p].item_id for p in positions) == [900, 901]
    assert min(positions) > 2  # after the tutorial and after the first rated item
    assert positions != [p for p, s in enumerate(plan(6, [900, 901])) if s.is_attention_check]
    # Repeats still point at their first showing, spaced as before.
    for p, s in enumerate(a):
        if s.repeat_of is not None:
            assert a[s.repeat_of].item_id == s.item_id and p - s.repeat_of >= 3
    # Without attention checks the sequence is the one drawn before they existed.
    # (positions shift by the inserted checks, so repeats are compared by what they repeat).
    shape = lambda seq: [(s.item_id, s.is_tutorial, s.repeat_of is None) for s in seq]  # noqa: E731
    assert shape(s for s in a if not s.is_attention_check) == shape(plan(5, []))


def test_the_pool_draw_never_draws_a_designated_attention_check():
    cands = [protocol.Candidate(i, REAL if i <= 6 else SYNTHETIC, 1) for i in range(1, 13)]
    config = protocol.config_with_defaults({"n_real": 5, "n_synthetic": 6, "attention_checks": [1]})
    for seed in range(10):
        draw = protocol.draw_pool(candidates=cands, config=config, seed=seed)
        assert 1 not in draw.items and 1 not in draw.tutorial and len(draw.items) == 11


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"qualification_min_correct": 2}, "needs tutorial items"),
        ({"n_tutorial": 2, "qualification_min_correct": 3}, "between 1 and n_tutorial"),
        ({"n_tutorial": 2, "qualification_min_correct": 1.5}, "fraction"),
        ({"attention_checks": ["x"]}, "list of image ids"),
    ],
)
def test_a_bad_quality_control_design_is_refused_when_saved(config, message):
    with pytest.raises(ValueError, match=message):
        protocol.config_with_defaults({"n_real": 1, "n_synthetic": 1, **config})


def test_a_fractional_threshold_rounds_up_to_whole_answers():
    assert protocol.qualification_needed(_cfg(n_tutorial=4, qualification_min_correct=0.6)) == 3
    assert protocol.qualification_needed(_cfg(n_tutorial=4, qualification_min_correct=1.0)) == 4
    assert protocol.qualification_needed(_cfg(n_tutorial=4, qualification_min_correct=2)) == 2
    assert protocol.qualification_needed(_cfg()) is None


# --- the rating path (database) -----------------------------------------------------------


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _answer(c: Client, study_id: int, token: str, says_synthetic: bool):
    payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": says_synthetic}
    return c.post(f"/api/rate/{study_id}/answers", json.dumps(payload), content_type="application/json")


def _truth(token: str) -> bool:
    return Presentation.objects.get(public_token=token).item.image.kind == Image.Kind.SYNTHETIC


def _answer_all(c: Client, study_id: int, *, tutorial_right: bool = True, right: bool = True) -> dict:
    """Answer until the study ends for this rater; the last response's body."""
    body = c.get(f"/api/rate/{study_id}/state").json()
    while body.get("item"):
        token = body["item"]["token"]
        correct = tutorial_right if body["item"]["is_tutorial"] else right
        response = _answer(c, study_id, token, _truth(token) == correct)
        assert response.status_code == 201, response.content
        body = response.json()
        if body.get("not_qualified"):
            return body
        body = body["state"]
    return body


@pytest.mark.django_db
def test_a_rater_below_the_qualification_threshold_is_thanked_and_refused_further_items():
    study = open_study(n_tutorial=2, qualification_min_correct=2)
    rater, assignment = rater_for(study)
    c = _client(rater)
    body = _answer_all(c, study.pk, tutorial_right=False)
    assert body["state"] is None and "Thank you" in body["not_qualified"]["detail"]
    assert body["feedback"]["correct"] is False  # the last tutorial item's feedback still shows
    assignment.refresh_from_db()
    assert assignment.qualified is False and assignment.n_tutorial_correct == 0
    state = c.get(f"/api/rate/{study.pk}/state")
    assert state.status_code == 410 and state.json()["code"] == "not_qualified"
    page = c.get(f"/rate/{study.pk}/")
    assert page.status_code == 200 and b"Thank you for taking part" in page.content
    assert not assignment.presentations.filter(is_tutorial=False, answered_at__isnull=False).exists()
    report = reports.build(study, n_boot=10).to_dict()
    assert report["rater_quality"]["n_unqualified"] == 1
    assert report["headline_all_raters"] is None  # they judged nothing: no comparison to show
    assert report["rater_quality"]["qualification_min_correct"] == 2


@pytest.mark.django_db
def test_a_rater_reaching_the_threshold_goes_on_and_a_study_without_one_records_nothing():
    study = open_study(n_tutorial=2, qualification_min_correct=1.0)
    rater, assignment = rater_for(study)
    assert _answer_all(_client(rater), study.pk)["finished"] is True
    assignment.refresh_from_db()
    assert assignment.qualified is True and assignment.n_tutorial_correct == 2
    plain = open_study(n_tutorial=2)
    rater, assignment = rater_for(plain)
    assert _answer_all(_client(rater), plain.pk, tutorial_right=False)["finished"] is True
    assignment.refresh_from_db()
    assert assignment.qualified is None and assignment.qualification_result == ""


@pytest.mark.django_db
def test_attention_checks_are_shown_to_every_rater_and_left_out_of_the_statistics():
    catch = ImageFactory(kind=Image.Kind.REAL)
    study = open_study(attention_checks=[catch.pk])
    item = StudyItem.objects.get(study=study, image=catch)
    assert item.is_attention_check and not item.is_anchor and not item.is_tutorial
    passing, a1 = rater_for(study, seed=1)
    failing, a2 = rater_for(study, seed=2)
    for a in (a1, a2):
        assert a.presentations.filter(item=item).count() == 1
        assert a.n_items == 7  # 6 rated + 1 catch image
    _answer_all(_client(passing), study.pk)  # calls the real catch photo real
    _answer_all(_client(failing), study.pk, right=False)  # calls it synthetic
    report = reports.build(study, n_boot=10).to_dict()
    assert catch.pk not in [i["image_id"] for i in report["images"]["per_image"]]
    assert report["progress"]["n_images"] == 6
    assert report["detection"]["pooled"]["n"] == 12  # 2 raters × 6 rated images, no catch image
    scores = {s["rater"]: (s["n_passed"], s["n_failed"]) for s in report["rater_quality"]["attention_checks"]}
    assert scores == {passing.rater_profile.pseudonym: (1, 0), failing.rater_profile.pseudonym: (0, 1)}
    assert catch.pk not in reports.read_rows(study).image
    exported = _client(study.owner).get(f"/api/studies/{study.pk}/judgments.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    flagged = [r for r in rows if r["is_attention_check"] == "true"]
    assert len(rows) == 14 and len(flagged) == 2 and {r["truth_kind"] for r in flagged} == {"real"}


@pytest.mark.django_db
def test_an_attention_check_must_be_a_library_image():
    study_owner = ResearcherFactory()
    open_study()
    with pytest.raises(ValueError, match="no library image"):
        services.study_create(
            owner=study_owner, title="x", config={"n_real": 1, "n_synthetic": 1, "attention_checks": [99999]}
        )


# --- exclusion ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_excluded_rater_leaves_the_statistics_and_the_all_raters_headline_keeps_them():
    study = open_study(n_real=3, n_synthetic=3)
    raters = [rater_for(study, seed=s) for s in range(3)]
    for i, (rater, _) in enumerate(raters):
        _answer_all(_client(rater), study.pk, right=i != 2)
    before_report = reports.build(study, n_boot=10)
    before = before_report.to_dict()
    assert before["headline_all_raters"] is None and before["detection"]["pooled"]["n"] == 18
    quality.assignment_exclude(assignment=raters[2][1], by=study.owner, reason="answered at random")
    after_report = reports.build(study, n_boot=10)
    after = after_report.to_dict()
    assert after["detection"]["pooled"]["n"] == 12
    assert after["headline"]["n_raters_judged"] == 2
    assert after["headline_all_raters"]["n_raters_judged"] == 3
    html = reports.render_html(after_report)
    assert "Headline with every rater" in html and "answered at random" in html
    assert "Rater quality control" not in reports.render_html(before_report)
    assert after["rater_quality"]["excluded"] == [
        {"rater": raters[2][0].rater_profile.pseudonym, "reason": "answered at random"}
    ]
    rows = {r["assignment_id"]: r for r in csv.DictReader(io.StringIO(raters_csv(study)))}
    assert rows[str(raters[2][1].pk)]["excluded"] == "true"
    assert rows[str(raters[2][1].pk)]["exclusion_reason"] == "answered at random"
    assert rows[str(raters[0][1].pk)]["excluded"] == "false"
    quality.assignment_include(assignment=raters[2][1], by=study.owner)
    assert reports.build(study, n_boot=10).to_dict()["headline_all_raters"] is None


@pytest.mark.django_db
def test_the_raters_page_excludes_with_a_reason_and_the_dashboard_shows_both_headlines():
    study = open_study()
    rater, assignment = rater_for(study)
    _answer_all(_client(rater), study.pk)
    owner = _client(study.owner)
    url = f"/studies/{study.pk}/results/raters/{assignment.pk}/exclusion"
    assert owner.post(url, {"action": "exclude", "reason": " "}).status_code == 400
    assert not Assignment.objects.get(pk=assignment.pk).is_excluded
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    assert _client(collaborator).post(url, {"action": "exclude", "reason": "x"}).status_code == 403
    assert _client(collaborator).get(f"/studies/{study.pk}/results/raters/").status_code == 200
    response = owner.post(url, {"action": "exclude", "reason": "straight-lined"})
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.is_excluded and assignment.excluded_by == study.owner
    event = AuditEvent.objects.get(action=Action.RATER_EXCLUDED)
    assert event.after == {"excluded": True, "reason": "straight-lined"} and event.study_id == study.pk
    page = owner.get(f"/studies/{study.pk}/results/raters/").content.decode()
    assert "yes: straight-lined" in page and "Include again" in page
    results = owner.get(f"/studies/{study.pk}/results/").content.decode()
    assert 'id="headline-compare"' in results and "all raters (1 rater)" in results
    assert owner.post(url, {"action": "include"}).status_code == 302
    assert AuditEvent.objects.filter(action=Action.RATER_INCLUDED).count() == 1
    assert 'id="headline-compare"' not in owner.get(f"/studies/{study.pk}/results/").content.decode()


@pytest.mark.django_db
def test_the_study_form_takes_a_qualification_threshold_and_attention_checks():
    from tests.factories import library_images

    images = library_images(6, 6)
    catch = images[0]
    owner = ResearcherFactory()
    form = {
        "title": "Crowd pilot",
        "pool_size": "8",
        "synthetic_percent": "50",
        "balance_conditions": "on",
        "n_anchors": "0",
        "n_tutorial": "2",
        "repeat_fraction": "0",
        "repeat_min_gap": "2",
        "qualification_min_correct": "50%",
        "attention_checks": str(catch.pk),
    }
    c = _client(owner)
    assert c.post("/studies/new/", {**form, "qualification_min_correct": "most"}).status_code == 200
    r = c.post("/studies/new/", form)
    assert r.status_code == 302, r.context["form"].errors if r.context else r
    study = owner.owned_studies.get()
    assert study.config["qualification_min_correct"] == 0.5 and study.config["attention_checks"] == [catch.pk]
    assert list(study.items.filter(is_attention_check=True).values_list("image_id", flat=True)) == [catch.pk]
    assert not study.items.filter(image=catch, is_attention_check=False).exists()
    edit = c.get(f"/studies/{study.pk}/edit/").content.decode()
    assert 'value="0.5"' in edit and f'value="{catch.pk}"' in edit
