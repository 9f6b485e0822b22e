"""Researcher API: who sees which study, token auth, streamed exports, the OpenAPI schema."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import AdminFactory, ResearcherFactory, StudyFactory
from tests.research_study import build_small_study
from turingtest import exports, reports

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """The named personas around one small study with judgments."""
    owner = ResearcherFactory(username="owner")
    small = build_small_study(owner=owner, n_raters=3, n_real=4, n_synthetic=4)
    collaborator = ResearcherFactory(username="collab")
    small.study.collaborators.add(collaborator)
    other_study = StudyFactory(owner=ResearcherFactory(username="someone"), title="Not yours")
    return {
        "study": small.study,
        "other_study": other_study,
        "small": small,
        "owner": owner,
        "collaborator": collaborator,
        "other": ResearcherFactory(username="other"),
        "rater": small.raters[0],
        "admin": AdminFactory(username="admin"),
    }


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _urls(study_id: int) -> list[str]:
    return [
        f"/api/studies/{study_id}/",
        f"/api/studies/{study_id}/judgments.csv",
        f"/api/studies/{study_id}/judgments.jsonl",
    ]


def test_anonymous_users_get_nothing_but_the_schema(world):
    client = _client()
    for url in ["/api/studies/", *_urls(world["study"].pk), f"/api/studies/{world['study'].pk}/report/"]:
        assert client.get(url).status_code in (401, 403), url
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    body = schema.content.decode()
    for path in ("/api/studies/", "/api/studies/{study_id}/report/", "/api/studies/{study_id}/package.zip"):
        assert path in body


def test_raters_are_refused_the_researcher_api(world):
    client = _client(world["rater"])
    assert client.get("/api/studies/").status_code == 403
    for url in _urls(world["study"].pk):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("persona", ["owner", "collaborator", "admin"])
def test_owners_collaborators_and_admins_see_the_study_and_its_progress(world, persona):
    client = _client(world[persona])
    listed = {s["id"] for s in client.get("/api/studies/").json()}
    assert world["study"].pk in listed
    assert (world["other_study"].pk in listed) == (persona == "admin")
    detail = client.get(f"/api/studies/{world['study'].pk}/").json()
    assert detail["config"] == world["study"].config
    assert detail["progress"]["n_judgments"] == world["small"].n_judgments
    assert detail["progress"]["joined"] == 3 and detail["progress"]["finished"] == 2
    assert detail["links"]["dashboard"] == f"/studies/{world['study'].pk}/results/"


def test_another_researcher_gets_404_for_a_study_that_is_not_theirs(world):
    client = _client(world["other"])
    assert client.get("/api/studies/").json() == []
    for url in [
        *_urls(world["study"].pk),
        f"/api/studies/{world['study'].pk}/report/",
        f"/api/studies/{world['study'].pk}/package.zip",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.get("/api/studies/999999/").status_code == 404


def test_token_authentication_works_and_a_bad_token_is_refused(world):
    token = Token.objects.create(user=world["owner"])
    client = Client()
    ok = client.get("/api/studies/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert ok.status_code == 200 and [s["id"] for s in ok.json()] == [world["study"].pk]
    csv_response = client.get(
        f"/api/studies/{world['study'].pk}/judgments.csv", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert csv_response.status_code == 200
    bad = client.get("/api/studies/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.status_code in (401, 403) and "Invalid token" in bad.json()["detail"]
    other_token = Token.objects.create(user=world["other"])
    assert (
        client.get(
            f"/api/studies/{world['study'].pk}/", HTTP_AUTHORIZATION=f"Token {other_token.key}"
        ).status_code
        == 404
    )


def test_the_judgments_download_is_streamed_and_equals_the_exporter(world):
    client = _client(world["collaborator"])
    response = client.get(f"/api/studies/{world['study'].pk}/judgments.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response["X-Export-Identities"] == "pseudonymous"
    body = b"".join(response.streaming_content)
    assert body == b"".join(exports.iter_export(world["study"], fmt="csv"))
    assert len(list(csv.DictReader(io.StringIO(body.decode())))) == world["small"].n_judgments
    jsonl = client.get(f"/api/studies/{world['study'].pk}/judgments.jsonl")
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert len(lines) == world["small"].n_judgments and json.loads(lines[0])["study_id"] == world["study"].pk
    assert client.get(f"/api/studies/{world['study'].pk}/judgments.xlsx").status_code == 404


def test_only_admins_may_ask_for_identities(world):
    url = f"/api/studies/{world['study'].pk}/judgments.csv?identities=1"
    assert _client(world["owner"]).get(url).status_code == 403
    response = _client(world["admin"]).get(url)
    assert response.status_code == 200
    assert response["X-Export-Identities"] == "included; requested-by=admin"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["rater_username"] for r in rows} == {u.username for u in world["small"].raters}


def test_report_and_package_come_from_the_real_report(world):
    client = _client(world["owner"])
    report = client.get(f"/api/studies/{world['study'].pk}/report/").json()
    assert report["study"]["id"] == world["study"].pk
    assert report["detection"]["pooled"]["n"] == world["small"].n_judgments - 3  # first showings only
    assert next(iter(report)) == "headline" and report["schema_version"] == 2
    headline = report["headline"]
    assert headline["balanced_accuracy"]["ci_low"] <= headline["balanced_accuracy"]["estimate"]
    assert headline["sentence"].endswith(
        f"{headline['n_raters']} raters × {headline['balanced_accuracy']['n_images']} images."
    )
    package = client.get(f"/api/studies/{world['study'].pk}/package.zip")
    assert package.status_code == 200 and package["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(package.streaming_content))) as zf:
        assert json.loads(zf.read("report.json")) == report  # the cached report, same data state
        assert zf.read("headline.csv").decode() == reports.headline_csv(report)
        assert zf.read("judgments.csv") == b"".join(exports.iter_export(world["study"], fmt="csv"))


def test_a_researcher_can_trade_username_and_password_for_a_token(world):
    client = Client()
    ok = client.post("/api/token/", {"username": "owner", "password": "correct horse battery"})
    assert ok.status_code == 200
    key = ok.json()["token"]
    assert client.get("/api/studies/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.post("/api/token/", {"username": "owner", "password": "wrong"}).status_code == 400


def test_the_token_endpoint_locks_out_after_repeated_failures_like_the_login_page(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    ResearcherFactory(username="guessed")
    client = Client()
    for _ in range(3):
        assert client.post("/api/token/", {"username": "guessed", "password": "bad"}).status_code == 400
    locked = client.post("/api/token/", {"username": "guessed", "password": "correct horse battery"})
    assert locked.status_code != 200 and "token" not in locked.content.decode()
