"""Results dashboard: permissions, live progress JSON, cached downloadable plots, thumbnails, CSP."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from tests.factories import AdminFactory, ImageFactory, ResearcherFactory
from tests.research_study import build_small_study
from turingtest.research import plots
from turingtest.studies.models import Judgment, Presentation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def small():
    return build_small_study(n_raters=3, n_real=4, n_synthetic=4)


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _add_judgment(study) -> None:
    p = Presentation.objects.filter(assignment__study=study, judgment__isnull=True, is_tutorial=False).first()
    if p is None:
        a = study.assignments.first()
        p = Presentation.objects.create(
            assignment=a, item=study.items.filter(is_tutorial=False).first(), position=999
        )
    Judgment.objects.create(presentation=p, client_key=uuid.uuid4(), says_synthetic=True, confidence=5)


def test_the_owner_sees_progress_plots_exports_and_tables_without_inline_code(small):
    owner = small.study.owner
    page = _client(owner).get(f"/studies/{small.study.pk}/results/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in plots.PLOTS:
        assert f"/studies/{small.study.pk}/results/plots/{name}.svg" in html
        assert f"/studies/{small.study.pk}/results/plots/{name}.png?download=1" in html
    assert f'data-progress="n_judgments">{small.n_judgments}<' in html
    assert f"/api/studies/{small.study.pk}/package.zip" in html
    assert "identities=1" not in html  # admin-only link
    assert "Per-rater balanced accuracy" in html and "Detection" in html
    # Strict CSP: no inline scripts, no style attributes, scripts only from static files.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html
    assert "default-src 'self'" in page["Content-Security-Policy"]
    thumbs = re.findall(rf"/studies/{small.study.pk}/results/images/([0-9a-f]+)", html)
    assert thumbs, "most convincing synthetic images are shown"


def test_every_plot_downloads_as_svg_and_png_and_is_cached_until_new_judgments(small, monkeypatch):
    client = _client(small.study.owner)
    for name in plots.PLOTS:
        svg = client.get(f"/studies/{small.study.pk}/results/plots/{name}.svg")
        assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml", name
        assert b"<svg" in svg.content
        png = client.get(f"/studies/{small.study.pk}/results/plots/{name}.png?download=1")
        assert png.content.startswith(b"\x89PNG") and png["Content-Type"] == "image/png"
        assert f'filename="study-{small.study.pk}-{name}.png"' in png["Content-Disposition"]
    calls = []
    real_render = plots.render_or_reason
    monkeypatch.setattr(
        plots, "render_or_reason", lambda *a, **kw: calls.append(a[0]) or real_render(*a, **kw)
    )
    url = f"/studies/{small.study.pk}/results/plots/fooling_rate.svg"
    first = client.get(url).content
    assert calls == []  # served from the cache
    _add_judgment(small.study)
    assert client.get(url).status_code == 200
    assert calls == ["fooling_rate"]  # a new judgment invalidates it
    assert first.startswith(b"<?xml")
    assert client.get(f"/studies/{small.study.pk}/results/plots/nonsense.svg").status_code == 404
    assert client.get(f"/studies/{small.study.pk}/results/plots/roc.pdf").status_code == 404


def test_progress_json_follows_new_answers(small):
    client = _client(small.study.owner)
    url = f"/studies/{small.study.pk}/results/progress.json"
    before = client.get(url).json()
    assert before["n_judgments"] == small.n_judgments
    assert (before["joined"], before["started"], before["finished"]) == (3, 3, 2)
    assert before["n_items"] == 8
    _add_judgment(small.study)
    after = client.get(url)
    assert after.json()["n_judgments"] == small.n_judgments + 1
    assert "no-cache" in after["Cache-Control"] or "max-age=0" in after["Cache-Control"]


def test_who_may_see_the_dashboard(small):
    study = small.study
    urls = [
        f"/studies/{study.pk}/results/",
        f"/studies/{study.pk}/results/progress.json",
        f"/studies/{study.pk}/results/plots/roc.svg",
    ]
    for url in urls:
        anonymous = _client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert _client(small.raters[0]).get(url).status_code == 403
        assert _client(ResearcherFactory()).get(url).status_code == 404
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    assert _client(collaborator).get(urls[1]).status_code == 200
    admin_page = _client(AdminFactory()).get(urls[0])
    assert admin_page.status_code == 200 and "identities=1" in admin_page.content.decode()


def test_thumbnails_are_for_this_studys_researchers_only(small):
    item = small.study.items.filter(image__kind="synthetic").select_related("image").first()
    url = f"/studies/{small.study.pk}/results/images/{item.image.public_token}"
    response = _client(small.study.owner).get(url)
    assert response.status_code == 200
    with item.image.file.open("rb") as f:
        assert b"".join(response.streaming_content) == f.read()
    assert "private" in response["Cache-Control"]
    assert _client(small.raters[0]).get(url).status_code == 403
    assert _client(ResearcherFactory()).get(url).status_code == 404
    outside = ImageFactory()
    assert (
        _client(small.study.owner)
        .get(f"/studies/{small.study.pk}/results/images/{outside.public_token}")
        .status_code
        == 404
    )


def test_a_study_without_answers_shows_no_plots_yet():
    from tests.factories import StudyFactory

    study = StudyFactory()
    client = _client(study.owner)
    page = client.get(f"/studies/{study.pk}/results/")
    assert page.status_code == 200 and "No judgments yet" in page.content.decode()
    # A plot asked for anyway is a small image saying why, not a broken image; no download.
    roc = client.get(f"/studies/{study.pk}/results/plots/roc.svg")
    assert roc.status_code == 200 and b"<svg" in roc.content and b"Not drawn yet" in roc.content
    assert roc["X-Plot-Unavailable"] == "No answers yet: plots appear once raters answer."
    assert client.get(f"/studies/{study.pk}/results/plots/roc.png?download=1").status_code == 404


def test_the_dashboard_opens_on_the_headline_card_before_progress_and_tables(small):
    from turingtest.research.reporting import study_report

    html = _client(small.study.owner).get(f"/studies/{small.study.pk}/results/").content.decode()
    headline = study_report(small.study)["headline"]
    card = html.index('id="headline-h"')
    assert card < html.index('id="progress-h"') < html.index('id="tables-h"')
    assert card < html.index('id="plots-h"')
    # The sentence, the four numbers with their crossed CIs, the variance components.
    sentence = headline["sentence"].replace("'", "&#x27;")
    assert sentence in html
    ba = headline["balanced_accuracy"]
    assert f"{ba['estimate']:.3f} [{ba['ci_low']:.3f}, {ba['ci_high']:.3f}]" in html
    for label in (
        "balanced accuracy",
        "sensitivity (1 − fooling rate)",
        "specificity",
        "AUC (confidence ratings)",
    ):
        assert f'<th scope="row">{label}</th>' in html
    assert f"<td>{ba['components']['rater']:.3f}</td>" in html
    assert "σ²<sub>rater</sub>" in html
    assert f"verdict-{headline['verdict']}" in html


def test_a_study_without_answers_has_a_headline_card_saying_why_there_is_no_estimate():
    from tests.factories import StudyFactory

    study = StudyFactory()
    html = _client(study.owner).get(f"/studies/{study.pk}/results/").content.decode()
    assert "Not enough data for a reader-study estimate yet" in html
    assert "verdict-not_estimable" in html
