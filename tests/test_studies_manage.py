"""Running a study from the researcher's pages (issue 13): the pool page and its images,
confirmations before opening and closing, pause and resume (and what raters see meanwhile),
the invitation list with revoke, re-issue and the one-time CSV, and the consent record."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from django.test import Client

from tests.factories import AdminFactory, ResearcherFactory, library_images, open_study, rater_for
from tests.test_studies_views import client_for
from turingtest.studies import invitations, lifecycle, rating, services
from turingtest.studies.models import DEFAULT_CONSENT, WITHDRAWAL_TEXT, Assignment, Invitation, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    owner = ResearcherFactory()
    study = open_study(owner=owner, n_real=2, n_synthetic=2)
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    rater, assignment = rater_for(study)
    return {
        "study": study,
        "owner": owner,
        "collaborator": collaborator,
        "stranger": ResearcherFactory(),
        "rater": rater,
        "assignment": assignment,
        "admin": AdminFactory(),
    }


# --- the pool -------------------------------------------------------------------------------


def test_the_pool_page_lists_every_image_with_kind_condition_skin_type_and_source(people):
    study = people["study"]
    image = study.items.select_related("image").first().image
    image.fitzpatrick, image.fitzpatrick_source = 3, "estimate"
    image.provenance = {"source": "PAD-UFES-20"}
    image.save()
    r = client_for(people["collaborator"]).get(f"/studies/{study.pk}/pool/")
    assert r.status_code == 200
    assert r.context["page"].paginator.count == study.items.count() == 4
    html = r.content.decode()
    assert "3 (estimate)" in html and "PAD-UFES-20" in html
    assert html.count(f"/studies/{study.pk}/pool/") >= 4  # thumbnails through the researchers' view
    assert "/img/" not in html  # never the raters' image path
    assert 'id="strata"' in html and 'id="pool-audit"' in html


def test_the_pool_page_filters_by_kind_condition_and_skin_type(people):
    study = people["study"]
    c = client_for(people["owner"])
    assert c.get(f"/studies/{study.pk}/pool/?kind=real").context["page"].paginator.count == 2
    code = study.items.first().image.condition.code
    by_condition = c.get(f"/studies/{study.pk}/pool/?condition={code}").context["page"].paginator.count
    assert by_condition == study.items.filter(image__condition__code=code).count() > 0
    image = study.items.first().image
    image.fitzpatrick, image.fitzpatrick_source = None, ""
    image.save()
    assert c.get(f"/studies/{study.pk}/pool/?fitzpatrick=3").context["page"].paginator.count == 3
    assert c.get(f"/studies/{study.pk}/pool/?fitzpatrick=5").context["page"].paginator.count == 0
    assert c.get(f"/studies/{study.pk}/pool/?fitzpatrick=none").context["page"].paginator.count == 1
    # A value that is not a choice filters nothing instead of failing.
    assert c.get(f"/studies/{study.pk}/pool/?kind=alien").context["page"].paginator.count == 4


@pytest.mark.parametrize(
    "who,status", [("owner", 200), ("collaborator", 200), ("admin", 200), ("stranger", 404), ("rater", 403)]
)
def test_pool_images_are_served_only_to_researchers_who_see_the_study(people, who, status):
    study = people["study"]
    item = study.items.first()
    r = client_for(people[who]).get(f"/studies/{study.pk}/pool/{item.pk}/image")
    assert r.status_code == status
    if status == 200:
        assert r["Content-Type"] == "image/png" and r.content.startswith(b"\x89PNG")
    assert client_for(people[who]).get(f"/studies/{study.pk}/pool/").status_code == status


def test_a_pool_image_of_another_study_is_a_404(people):
    other = open_study(n_real=1, n_synthetic=1)
    r = client_for(people["owner"]).get(f"/studies/{people['study'].pk}/pool/{other.items.first().pk}/image")
    assert r.status_code == 404
    assert client_for().get(f"/studies/{people['study'].pk}/pool/").status_code == 302  # to the login


# --- confirmations ---------------------------------------------------------------------------


def test_opening_asks_first_and_says_that_it_freezes_the_design():
    library_images(4, 4)
    owner = ResearcherFactory()
    study = services.study_create(owner=owner, title="Draft", config={"n_real": 2, "n_synthetic": 2}, seed=3)
    c = client_for(owner)
    detail = c.get(f"/studies/{study.pk}/").content.decode()
    assert f'action="/studies/{study.pk}/open/"' not in detail  # no one-click open on the study page
    assert f"/studies/{study.pk}/open/confirm/" in detail and f"/studies/{study.pk}/pool/" in detail
    page = c.get(f"/studies/{study.pk}/open/confirm/")
    assert page.status_code == 200 and "The design is frozen" in page.content.decode()
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT  # looking at the confirmation changes nothing
    c.post(f"/studies/{study.pk}/open/")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    assert c.get(f"/studies/{study.pk}/open/confirm/").status_code == 302  # open already


def test_closing_asks_first_and_counts_the_raters_it_cuts_off(people):
    study = people["study"]
    rater_for(study, seed=8)
    finished = Assignment.objects.exclude(pk=people["assignment"].pk).get()
    Assignment.objects.filter(pk=finished.pk).update(finished_at=finished.created)
    services.invitation_create(study=study, count=3)
    c = client_for(people["owner"])
    detail = c.get(f"/studies/{study.pk}/").content.decode()
    assert f'action="/studies/{study.pk}/close/"' not in detail
    page = c.get(f"/studies/{study.pk}/close/confirm/")
    text = " ".join(page.content.decode().split())
    assert "Raters can no longer answer." in text
    assert "1 of 2 raters who joined has not finished" in text
    assert "3 unused invitation links stop working" in text
    assert page.context["c"] == lifecycle.CloseConsequences(2, 1, 1, 0, 3)
    assert client_for(people["collaborator"]).get(f"/studies/{study.pk}/close/confirm/").status_code == 403


# --- pause and resume ------------------------------------------------------------------------


def test_a_paused_study_tells_its_raters_to_come_back_and_resuming_continues_where_they_were(people):
    study, rater = people["study"], people["rater"]
    owner = client_for(people["owner"])
    rc = client_for(rater)
    state = rc.get(f"/api/rate/{study.pk}/state").json()
    token = state["item"]["token"]

    r = owner.post(f"/studies/{study.pk}/pause/")
    assert r.status_code == 302
    study.refresh_from_db()
    assert study.status == Study.Status.PAUSED and study.paused_at is not None and study.is_frozen

    page = rc.get(f"/rate/{study.pk}/")
    assert page.status_code == 200 and b"paused" in page.content and b"come back later" in page.content
    api = rc.get(f"/api/rate/{study.pk}/state")
    assert api.status_code == 423 and api.json()["code"] == "paused"
    answer = {"token": token, "client_key": "8b0c1d2e-0000-4000-8000-000000000001", "says_synthetic": True}
    posted = rc.post(f"/api/rate/{study.pk}/answers", answer, content_type="application/json")
    assert posted.status_code == 423 and posted.json()["code"] == "paused"
    assert rc.get(f"/img/{token}").status_code == 404
    assert b"Paused: come back later" in rc.get("/rate/").content

    owner.post(f"/studies/{study.pk}/resume/")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.paused_at is None
    assert rc.get(f"/api/rate/{study.pk}/state").json()["item"]["token"] == token  # nothing lost
    posted = rc.post(f"/api/rate/{study.pk}/answers", answer, content_type="application/json")
    assert posted.status_code == 201


def test_pause_and_resume_are_idempotent_and_only_for_running_studies(people):
    study = people["study"]
    assert lifecycle.study_pause(study=study).status == "paused"
    assert lifecycle.study_pause(study=study).status == "paused"
    assert services.study_open(study=study).status == "paused"  # opened already: no-op
    assert lifecycle.study_resume(study=study).status == "open"
    assert lifecycle.study_resume(study=study).status == "open"
    services.study_close(study=study)
    with pytest.raises(lifecycle.WrongStatus):
        lifecycle.study_pause(study=study)
    with pytest.raises(lifecycle.WrongStatus):
        lifecycle.study_resume(study=study)


def test_a_paused_study_can_be_closed_and_only_its_managers_pause_it(people):
    study = people["study"]
    assert client_for(people["collaborator"]).post(f"/studies/{study.pk}/pause/").status_code == 403
    assert client_for(people["stranger"]).post(f"/studies/{study.pk}/pause/").status_code == 404
    client_for(people["admin"]).post(f"/studies/{study.pk}/pause/")
    study.refresh_from_db()
    assert study.status == "paused"
    detail = client_for(people["owner"]).get(f"/studies/{study.pk}/").content.decode()
    assert "Resume the study" in detail and f"/studies/{study.pk}/close/confirm/" in detail
    client_for(people["owner"]).post(f"/studies/{study.pk}/close/")
    study.refresh_from_db()
    assert study.status == "closed"
    with pytest.raises(rating.RatingError) as exc:
        rating.turn_for_rater(study_id=study.pk, user=people["rater"])
    assert exc.value.reason == "closed"


def test_invitations_of_a_paused_study_still_let_raters_join(people):
    study = people["study"]
    lifecycle.study_pause(study=study)
    (token,) = services.invitation_create(study=study)
    rater = ResearcherFactory()
    assignment = services.invitation_accept(token=token, user=rater)
    assert assignment.study_id == study.pk


# --- invitations ----------------------------------------------------------------------------


def test_links_are_only_made_for_open_or_paused_studies():
    library_images(2, 2)
    owner = ResearcherFactory()
    draft = services.study_create(owner=owner, title="D", config={"n_real": 1, "n_synthetic": 1}, seed=1)
    with pytest.raises(services.StudyFrozen):
        services.invitation_create(study=draft)
    page = client_for(owner).get(f"/studies/{draft.pk}/invitations/")
    html = page.content.decode()
    assert "Links are made once the study is open" in html and "disabled" in html
    r = client_for(owner).post(f"/studies/{draft.pk}/invitations/new/", {"count": "2"})
    assert r.status_code == 302 and not Invitation.objects.exists()


def test_the_invitations_page_shows_new_links_once_offers_them_as_csv_and_lists_every_state(people):
    study, owner = people["study"], client_for(people["owner"])
    r = owner.post(f"/studies/{study.pk}/invitations/new/", {"count": "3"})
    assert r.status_code == 302
    page = owner.get(f"/studies/{study.pk}/invitations/")
    urls = [link["url"] for link in page.context["new_links"]]
    assert len(urls) == 3 and all("/invite/" in u for u in urls)
    assert page.content.decode().count('class="copy"') == 4  # one per link, and "copy all"
    rows = list(
        csv.DictReader(io.StringIO(owner.get(f"/studies/{study.pk}/invitations/new.csv").content.decode()))
    )
    assert [row["url"] for row in rows] == urls
    # Only hashes are stored.
    for url in urls:
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert Invitation.objects.filter(token_sha256=hashlib.sha256(token.encode()).hexdigest()).exists()
        assert not Invitation.objects.filter(token_sha256__contains=token).exists()
    # The collaborator sees the list, never the links, and changes nothing.
    seen = client_for(people["collaborator"]).get(f"/studies/{study.pk}/invitations/")
    assert seen.status_code == 200 and seen.context["new_links"] == []
    assert (
        client_for(people["collaborator"]).get(f"/studies/{study.pk}/invitations/new.csv").status_code == 403
    )

    # Use one, revoke one, expire one: every state shows.
    token0 = urls[0].rstrip("/").rsplit("/", 1)[1]
    joined = ResearcherFactory()
    services.invitation_accept(token=token0, user=joined)
    invs = Invitation.objects.filter(study=study).order_by("pk")
    owner.post(f"/studies/{study.pk}/invitations/{invs[1].pk}/revoke/")
    Invitation.objects.filter(pk=invs[2].pk).update(expires_at=invs[2].created)
    owner.post(f"/studies/{study.pk}/invitations/forget/")
    page = owner.get(f"/studies/{study.pk}/invitations/")
    assert page.context["new_links"] == []
    assert owner.get(f"/studies/{study.pk}/invitations/new.csv").status_code == 404
    states = {row.pk: row.state for row in page.context["rows"]}
    assert states == {invs[0].pk: "used", invs[1].pk: "revoked", invs[2].pk: "expired"}
    assert joined.rater_profile.pseudonym in page.content.decode()
    assert joined.get_username() not in page.content.decode()
    revoked = urls[1].rstrip("/").rsplit("/", 1)[1]
    assert Client().get(f"/invite/{revoked}/").status_code == 410


def test_revoking_a_used_link_is_refused_and_reissuing_replaces_an_unused_one(people):
    study = people["study"]
    links = invitations.invitation_create_links(study=study, count=1, emails=["a@example.org"])
    first, by_mail = links[1], links[0]
    assert by_mail.email == "a@example.org" and first.email == ""
    used_token = first.url.rstrip("/").rsplit("/", 1)[1]
    services.invitation_accept(token=used_token, user=ResearcherFactory())
    with pytest.raises(ValueError):
        invitations.invitation_revoke(invitation=Invitation.objects.get(pk=first.invitation_id))
    c = client_for(people["owner"])
    c.post(f"/studies/{study.pk}/invitations/{by_mail.invitation_id}/reissue/")
    old = Invitation.objects.get(pk=by_mail.invitation_id)
    new = Invitation.objects.get(reissue_of=old)
    assert old.state() == "revoked" and new.state() == "unused" and new.email == "a@example.org"
    assert [link["id"] for link in c.get(f"/studies/{study.pk}/invitations/").context["new_links"]] == [
        new.pk
    ]
    assert (
        client_for(people["collaborator"])
        .post(f"/studies/{study.pk}/invitations/{new.pk}/revoke/")
        .status_code
        == 403
    )
    invitations.invitation_revoke(invitation=new)
    assert invitations.invitation_revoke(invitation=new).revoked_at is not None  # a no-op the second time


def test_the_invitation_list_costs_two_queries_whatever_its_length(people, django_assert_num_queries):
    study = people["study"]
    links = invitations.invitation_create_links(study=study, count=6)
    for link in links[:3]:
        services.invitation_accept(token=link.url.rstrip("/").rsplit("/", 1)[1], user=ResearcherFactory())
    with django_assert_num_queries(2):
        rows = invitations.invitation_rows(study)
    assert len(rows) == 6 and sum(bool(r.used_by_pseudonym) for r in rows) == 3


# --- consent record ---------------------------------------------------------------------------


def test_consent_records_the_time_the_texts_sha256_and_its_version():
    study = open_study(n_real=1, n_synthetic=1)
    _, assignment = rater_for(study)
    assert assignment.consented_at is not None
    assert (
        assignment.consent_sha256
        == hashlib.sha256(f"{DEFAULT_CONSENT}\n\n{WITHDRAWAL_TEXT['keep']}".encode()).hexdigest()
    )
    assert assignment.consent_version == "1"
    Study.objects.filter(pk=study.pk).update(consent_text="Own **text**", consent_version="v2 (IRB 2024-17)")
    study.refresh_from_db()
    rater = ResearcherFactory()
    assignment = services.assignment_create(study=study, rater=rater)
    c = client_for(rater)
    assert b"Own <strong>text</strong>" in c.get(f"/rate/{study.pk}/consent/").content
    c.post(f"/rate/{study.pk}/consent/", {"agree": "on"})
    assignment.refresh_from_db()
    assert (
        assignment.consent_sha256
        == hashlib.sha256(f"Own **text**\n\n{WITHDRAWAL_TEXT['keep']}".encode()).hexdigest()
    )
    assert assignment.consent_version == "v2 (IRB 2024-17)"
    first = assignment.consented_at
    services.assignment_consent(assignment=assignment)  # agreeing twice keeps the first record
    assignment.refresh_from_db()
    assert assignment.consented_at == first
