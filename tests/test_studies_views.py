"""HTML flows and permissions: invitations, registration, consent, instructions, rating page, study pages.

Personas: anonymous, rater of this study, rater of another study, owner researcher,
other researcher, collaborator, admin.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.factories import AdminFactory, ResearcherFactory, library_images, open_study, rater_for
from turingtest.core import roles
from turingtest.studies import services
from turingtest.studies.models import Assignment, Invitation, RaterProfile, Study

pytestmark = pytest.mark.django_db


def client_for(user=None) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


@pytest.fixture
def personas():
    owner = ResearcherFactory()
    study = open_study(owner=owner, n_real=2, n_synthetic=2)
    other_study = open_study(n_real=2, n_synthetic=2)
    rater, _ = rater_for(study)
    other_rater, _ = rater_for(other_study)
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    return {
        "study": study,
        "anonymous": None,
        "rater": rater,
        "other_rater": other_rater,
        "owner": owner,
        "other_researcher": ResearcherFactory(),
        "collaborator": collaborator,
        "admin": AdminFactory(),
    }


# --- the invitation flow ------------------------------------------------------------------


def test_a_new_rater_registers_from_an_invitation_consents_reads_instructions_and_reaches_the_page():
    study = open_study(n_real=2, n_synthetic=2)
    study.instructions = "# Read me\n\nLook **closely**.<script>alert(1)</script>"
    Study.objects.filter(pk=study.pk).update(instructions=study.instructions)
    (token,) = services.invitation_create(study=study)
    c = Client()
    r = c.get(f"/invite/{token}/")
    assert r.status_code == 200 and b"Create account" in r.content
    r = c.post(
        f"/invite/{token}/",
        {
            "name": "Dr Ada",
            "email": "ada@example.org",
            "password": "a long enough passphrase",
            "role": "dermatologist",
            "years_experience": "12",
        },
    )
    assert r.status_code == 302 and r["Location"] == f"/rate/{study.pk}/consent/"
    user = get_user_model().objects.get(username="ada@example.org")
    assert roles.is_rater(user)
    profile = RaterProfile.objects.get(user=user)
    assert (profile.role, profile.years_experience) == ("dermatologist", 12)
    assignment = Assignment.objects.get(study=study, rater=user)
    assert assignment.presentations.count() == 4
    # Rating before consent goes back to consent.
    assert c.get(f"/rate/{study.pk}/")["Location"] == f"/rate/{study.pk}/consent/"
    assert c.post(f"/rate/{study.pk}/consent/", {}).status_code == 200  # box not ticked
    r = c.post(f"/rate/{study.pk}/consent/", {"agree": "on"})
    assert r["Location"] == f"/rate/{study.pk}/instructions/"
    r = c.get(f"/rate/{study.pk}/instructions/")
    assert b"<h1>Read me</h1>" in r.content and b"<strong>closely</strong>" in r.content
    assert b"<script>alert" not in r.content
    # The keys the rating page really uses (rate.js): Shift+digit for confidence.
    assert b"<kbd>Shift</kbd>+<kbd>1</kbd>" in r.content and b"digit keys" not in r.content
    r = c.get(f"/rate/{study.pk}/")
    assert r.status_code == 200
    assert r.context["state_url"] == f"/api/rate/{study.pk}/state"
    assert r.context["answers_url"] == f"/api/rate/{study.pk}/answers"
    assert "csrftoken" in r.cookies
    assert c.get(f"/api/rate/{study.pk}/state").status_code == 200
    # Single use.
    r = Client().get(f"/invite/{token}/")
    assert r.status_code == 410 and b"already been used" in r.content


def test_an_existing_rater_logs_in_and_accepts_an_invitation():
    study = open_study(n_real=2, n_synthetic=2)
    other = open_study(n_real=2, n_synthetic=2)
    rater, _ = rater_for(other)
    (token,) = services.invitation_create(study=study)
    c = client_for(rater)
    r = c.get(f"/invite/{token}/")
    assert r.status_code == 200 and b"Join the study" in r.content
    r = c.post(f"/invite/{token}/")
    assert r["Location"] == f"/rate/{study.pk}/consent/"
    assert Assignment.objects.filter(study=study, rater=rater).exists()
    assert Invitation.objects.get().used_by == rater


def test_registering_with_a_taken_email_or_weak_password_shows_errors_and_keeps_the_invitation():
    study = open_study(n_real=1, n_synthetic=1)
    (token,) = services.invitation_create(study=study)
    get_user_model().objects.create_user(username="taken@example.org", email="taken@example.org")
    r = Client().post(
        f"/invite/{token}/",
        {
            "name": "X",
            "email": "taken@example.org",
            "password": "123",
            "role": "other",
            "years_experience": "1",
        },
    )
    assert r.status_code == 200
    assert set(r.context["form"].errors) == {"email", "password"}
    assert Invitation.objects.get().used_at is None


@pytest.mark.parametrize("case", ["unknown", "expired", "closed", "draft"])
def test_bad_invitations_get_a_clear_page_with_404_or_410(case):
    study = open_study(n_real=1, n_synthetic=1)
    (token,) = services.invitation_create(study=study)
    expected = 410
    if case == "unknown":
        token, expected = token[:-2] + "zz", 404
    elif case == "expired":
        Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "closed":
        services.study_close(study=study)
    elif case == "draft":
        Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
        expected = 404
    r = Client().get(f"/invite/{token}/")
    assert r.status_code == expected
    assert b"Invitation not valid" in r.content


def test_the_invitation_token_is_stored_only_as_a_hash():
    study = open_study(n_real=1, n_synthetic=1)
    (token,) = services.invitation_create(study=study)
    inv = Invitation.objects.get()
    assert token not in inv.token_sha256 and len(inv.token_sha256) == 64


# --- rater pages ------------------------------------------------------------------------


def test_the_rate_list_shows_the_raters_own_studies_only(personas):
    r = client_for(personas["rater"]).get("/rate/")
    assert r.status_code == 200
    assert [a.study_id for a in r.context["assignments"]] == [personas["study"].pk]
    assert client_for().get("/rate/").status_code == 302


@pytest.mark.parametrize(
    "who,status",
    [
        ("anonymous", 302),
        ("rater", 200),
        ("other_rater", 404),
        ("owner", 404),
        ("other_researcher", 404),
        ("admin", 404),
    ],
)
def test_only_the_studys_raters_open_its_rating_page(personas, who, status):
    r = client_for(personas[who]).get(f"/rate/{personas['study'].pk}/")
    assert r.status_code == status


def test_a_closed_study_shows_a_410_page_to_its_rater(personas):
    services.study_close(study=personas["study"])
    r = client_for(personas["rater"]).get(f"/rate/{personas['study'].pk}/")
    assert r.status_code == 410 and b"closed" in r.content


# --- researcher pages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "who,status",
    [
        ("anonymous", 302),
        ("rater", 403),
        ("other_rater", 403),
        ("owner", 200),
        ("collaborator", 200),
        ("other_researcher", 404),
        ("admin", 200),
    ],
)
def test_study_pages_are_visible_to_owner_collaborators_and_admins_only(personas, who, status):
    study = personas["study"]
    r = client_for(personas[who]).get(f"/studies/{study.pk}/")
    assert r.status_code == status
    listing = client_for(personas[who]).get("/studies/")
    if status == 200:
        assert study in list(listing.context["studies"])
    elif who == "other_researcher":
        assert study not in list(listing.context["studies"])


@pytest.mark.parametrize("who,allowed", [("owner", True), ("admin", True), ("collaborator", False)])
def test_closing_and_inviting_are_for_the_owner_and_admins(personas, who, allowed):
    study = personas["study"]
    c = client_for(personas[who])
    r = c.post(f"/studies/{study.pk}/invite/", {"count": "2"})
    assert r.status_code == (302 if allowed else 403)
    assert Invitation.objects.filter(study=study).count() == (2 if allowed else 0)
    if allowed:
        page = c.get(f"/studies/{study.pk}/")
        assert len(page.context["invite_urls"]) == 2
        assert all("/invite/" in u for u in page.context["invite_urls"])
        assert c.get(f"/studies/{study.pk}/").context["invite_urls"] is None  # shown once
    r = c.post(f"/studies/{study.pk}/close/")
    study.refresh_from_db()
    assert (study.status == Study.Status.CLOSED) == allowed


def test_a_researcher_creates_edits_opens_and_copies_a_study_through_the_pages():
    library_images(6, 6)
    owner = ResearcherFactory()
    c = client_for(owner)
    assert c.get("/studies/new/").status_code == 200
    form = {
        "title": "Pilot",
        "instructions": "Be quick.",
        "pool_size": "8",
        "synthetic_percent": "50",
        "balance_conditions": "on",
        "n_anchors": "0",
        "n_tutorial": "2",
        "repeat_fraction": "0.25",
        "repeat_min_gap": "2",
        "ask_confidence": "on",
        "ask_diagnosis": "on",
    }
    r = c.post("/studies/new/", form)
    assert r.status_code == 302, r.context["form"].errors if r.context else r
    study = Study.objects.get(title="Pilot")
    assert study.owner == owner and study.status == Study.Status.DRAFT
    assert study.items.filter(is_tutorial=False, image__kind="synthetic").count() == 4
    assert study.items.filter(is_tutorial=True).count() == 2
    assert c.get(f"/studies/{study.pk}/edit/").status_code == 200
    r = c.post(f"/studies/{study.pk}/edit/", {**form, "pool_size": "6", "title": "Pilot 2"})
    assert r.status_code == 302
    study.refresh_from_db()
    assert study.title == "Pilot 2" and study.items.filter(is_tutorial=False).count() == 6
    # Asking for more images than the library has is a form error, not a crash.
    r = c.post(f"/studies/{study.pk}/edit/", {**form, "pool_size": "40"})
    assert r.status_code == 200 and "images match the pool filters" in str(
        r.context["form"].non_field_errors()
    )
    assert c.post(f"/studies/{study.pk}/open/").status_code == 302
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and len(study.config_sha256) == 64
    # Frozen: the edit page sends you back.
    assert c.get(f"/studies/{study.pk}/edit/")["Location"] == f"/studies/{study.pk}/"
    r = c.post(f"/studies/{study.pk}/copy/")
    copy = Study.objects.exclude(pk=study.pk).get()
    assert r["Location"] == f"/studies/{copy.pk}/" and copy.status == Study.Status.DRAFT
    assert sorted(copy.items.values_list("image_id", flat=True)) == sorted(
        study.items.values_list("image_id", flat=True)
    )


def test_raters_cannot_create_studies(personas):
    assert client_for(personas["rater"]).get("/studies/new/").status_code == 403
    assert client_for(personas["rater"]).post("/studies/new/", {"title": "x"}).status_code == 403


def test_the_owner_shares_a_study_with_another_researcher_who_then_sees_it(personas):
    study, other = personas["study"], personas["other_researcher"]
    assert client_for(other).get(f"/studies/{study.pk}/").status_code == 404
    r = client_for(personas["owner"]).post(f"/studies/{study.pk}/share/", {"username": other.username})
    assert r.status_code == 302
    assert client_for(other).get(f"/studies/{study.pk}/").status_code == 200
    # Raters cannot be made collaborators, and collaborators cannot share further.
    client_for(personas["owner"]).post(
        f"/studies/{study.pk}/share/", {"username": personas["rater"].username}
    )
    assert personas["rater"] not in study.collaborators.all()
    r = client_for(other).post(f"/studies/{study.pk}/share/", {"username": personas["collaborator"].username})
    assert r.status_code == 403


def test_registering_on_an_already_used_invitation_creates_no_account():
    study = open_study(n_real=1, n_synthetic=1)
    (token,) = services.invitation_create(study=study)
    c = Client()
    assert c.get(f"/invite/{token}/").status_code == 200
    Invitation.objects.update(used_at=timezone.now())
    r = c.post(
        f"/invite/{token}/",
        {
            "name": "Late",
            "email": "late@example.org",
            "password": "a long enough passphrase",
            "role": "other",
            "years_experience": "3",
        },
    )
    assert r.status_code == 410
    assert not get_user_model().objects.filter(username="late@example.org").exists()
