"""Consent withdrawal: the study's policy decides the answers' fate; identity erased on request; audited."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import ResearcherFactory, open_study, rater_for
from turingtest import reports
from turingtest.studies import services, withdrawal
from turingtest.studies.models import WITHDRAWAL_TEXT, Assignment, Invitation, Judgment, Presentation, Study
from turingtest.studies.progress import study_progress
from turingtest.trail.models import AuditEvent

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def answer_n(c: Client, study_id: int, n: int) -> None:
    for _ in range(n):
        token = c.get(f"/api/rate/{study_id}/state").json()["item"]["token"]
        payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": True}
        r = c.post(f"/api/rate/{study_id}/answers", json.dumps(payload), content_type="application/json")
        assert r.status_code in (200, 201), r.content


def study_with(policy: str, repeat_fraction: float = 0) -> Study:
    study = open_study(n_real=3, n_synthetic=3, repeat_fraction=repeat_fraction, repeat_min_gap=2)
    Study.objects.filter(pk=study.pk).update(withdrawal_policy=policy)
    study.refresh_from_db()
    return study


def two_raters_answering(study: Study):
    (a, a_assignment), (b, b_assignment) = rater_for(study, seed=1), rater_for(study, seed=2)
    ca, cb = client_for(a), client_for(b)
    answer_n(ca, study.pk, 3)
    answer_n(cb, study.pk, 4)
    return (a, a_assignment, ca), (b, b_assignment, cb)


def test_the_consent_text_states_the_studys_withdrawal_policy():
    study = study_with("delete")
    rater, _ = rater_for(study, consent=False)
    page = client_for(rater).get(f"/rate/{study.pk}/consent/").content.decode()
    assert "The answers you gave are deleted and left out of the analysis." in page
    assert WITHDRAWAL_TEXT["keep"] not in page


def test_nothing_happens_without_the_confirmation():
    study = study_with("delete")
    (a, assignment, ca), _ = two_raters_answering(study)
    page = ca.get(f"/rate/{study.pk}/withdraw/").content.decode()
    assert "The answers you gave are deleted" in page
    r = ca.post(f"/rate/{study.pk}/withdraw/", {"erase_identity": "on"})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    assert Assignment.objects.filter(pk=assignment.pk).exists() and a.is_active


def test_under_keep_the_answers_stay_in_the_analysis_and_the_rater_answers_no_more():
    study = study_with("keep")
    (a, assignment, ca), (b, _, cb) = two_raters_answering(study)
    before = reports.build(study, n_boot=10)
    assert ca.get("/rate/").content.decode().count(f"/rate/{study.pk}/withdraw/") == 1
    r = ca.post(f"/rate/{study.pk}/withdraw/", {"confirm": "on"})
    assert r.status_code == 302 and r["Location"] == "/rate/"
    assignment.refresh_from_db()
    assert assignment.withdrawn_at is not None
    assert Judgment.objects.filter(presentation__assignment=assignment).count() == 3
    assert ca.get(f"/api/rate/{study.pk}/state").status_code == 404
    assert ca.get(f"/rate/{study.pk}/").status_code == 404
    listing = ca.get("/rate/").content.decode()
    assert "Withdrawn" in listing and f"/rate/{study.pk}/withdraw/" not in listing
    after = reports.build(study, n_boot=10)
    assert after.progress == before.progress  # nothing was removed
    answer_n(cb, study.pk, 1)  # the other rater goes on
    with pytest.raises(withdrawal.WithdrawalRefused, match="already withdrawn"):
        withdrawal.consent_withdraw(assignment=assignment)


def test_under_delete_the_raters_answers_go_and_every_count_follows_other_raters_untouched():
    study = study_with("delete", repeat_fraction=0.5)  # repeats point at first showings: all go together
    (a, assignment, ca), (b, b_assignment, cb) = two_raters_answering(study)
    b_judgments = list(Judgment.objects.filter(presentation__assignment=b_assignment).values())
    assert Presentation.objects.filter(assignment=assignment, repeat_of__isnull=False).exists()
    before = study_progress(study)
    assert (before.n_assignments, before.n_judgments) == (2, 7)
    assert ca.post(f"/rate/{study.pk}/withdraw/", {"confirm": "on"}).status_code == 302
    assert not Assignment.objects.filter(pk=assignment.pk).exists()
    assert not Presentation.objects.filter(assignment_id=assignment.pk).exists()
    assert list(Judgment.objects.filter(presentation__assignment=b_assignment).values()) == b_judgments
    after = study_progress(study)
    assert (after.n_assignments, after.n_started, after.n_judgments) == (1, 1, 4)
    report = reports.build(study, n_boot=10)
    assert (report.progress.n_assignments, report.progress.n_raters_with_judgments) == (1, 1)
    assert report.meta.n_judgments_total == 4
    assert ca.get(f"/api/rate/{study.pk}/state").status_code == 404
    answer_n(cb, study.pk, 1)
    assert study_progress(study).n_judgments == 5


def test_identity_is_erased_on_request_the_pseudonym_kept_and_the_event_pseudonymous():
    study = study_with("keep")
    (a, assignment, ca), _ = two_raters_answering(study)
    pseudonym, username, email = a.rater_profile.pseudonym, a.username, a.email
    Invitation.objects.create(study=study, expires_at=study.opened_at, email=email)
    r = ca.post(f"/rate/{study.pk}/withdraw/", {"confirm": "on", "erase_identity": "on"})
    assert r.status_code == 302 and r["Location"] == "/"
    a.refresh_from_db()
    assert a.username == f"withdrawn-{pseudonym}" and a.rater_profile.pseudonym == pseudonym
    assert (a.email, a.first_name, a.last_name, a.is_active) == ("", "", "", False)
    assert not a.has_usable_password()
    assert not get_user_model().objects.filter(username=username).exists()
    assert not Invitation.objects.filter(email=email).exists()
    assert ca.get("/rate/").status_code == 302  # logged out
    event = AuditEvent.objects.get(action="consent_withdrawn")
    assert event.actor_name == pseudonym and event.study_id == study.pk
    assert event.after == {
        "policy": "keep",
        "n_judgments": 3,
        "judgments_deleted": False,
        "identity_erased": True,
    }
    assert username not in json.dumps([event.after, event.before, event.actor_name])


def test_an_account_that_manages_studies_cannot_erase_itself_here():
    study = study_with("keep")
    researcher = ResearcherFactory()
    assignment = services.assignment_create(study=study, rater=researcher)
    services.assignment_consent(assignment=assignment)
    r = client_for(researcher).post(f"/rate/{study.pk}/withdraw/", {"confirm": "on", "erase_identity": "on"})
    assert r.status_code == 200 and "cannot erase itself" in r.content.decode()
    researcher.refresh_from_db()
    assignment.refresh_from_db()
    assert researcher.is_active and assignment.withdrawn_at is None


def test_a_rater_of_another_study_cannot_withdraw_here():
    study, other = study_with("delete"), study_with("delete")
    (a, _, ca), _ = two_raters_answering(study)
    assert ca.post(f"/rate/{other.pk}/withdraw/", {"confirm": "on"}).status_code == 404
    assert Client().post(f"/rate/{study.pk}/withdraw/", {"confirm": "on"}).status_code == 302


def test_the_design_form_sets_the_policy():
    owner = ResearcherFactory()
    open_study(owner=ResearcherFactory())
    study = services.study_create(owner=owner, title="D", config={"n_real": 1, "n_synthetic": 1}, seed=3)
    services.study_update(study=study, withdrawal_policy="delete")
    study.refresh_from_db()
    assert study.withdrawal_policy == "delete"
    assert services.study_copy(study=study, owner=owner).withdrawal_policy == "delete"
