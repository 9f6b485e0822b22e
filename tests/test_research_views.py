"""Results dashboard: permissions, live progress JSON, cached downloadable plots, thumbnails, CSP;
readable labels, plots that say why they are missing, collapsed warnings, named progress counts
with local times, long tables that scroll, legible figures."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from tests.factories import AdminFactory, ImageFactory, ResearcherFactory, open_study, rater_for
from tests.research_study import build_small_study
from turingtest import reports
from turingtest.reports.tables import report_tables
from turingtest.research import plots, views
from turingtest.research.tables import TALL_ROWS, report_sections, report_warnings
from turingtest.studies import services
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


# --- dashboard details (issue 13): labels, placeholders, warnings, progress, scrolling, figures


def _owner_client(study) -> Client:
    client = Client()
    client.force_login(study.owner)
    return client


def test_every_section_table_and_header_reads_as_words_and_none_repeats(small):
    sections = report_tables(reports.build(small.study, n_boot=50).to_dict())
    titles = [s.title for s in sections]
    assert len(titles) == len(set(titles)), titles  # never two "Detection › Pooled"
    texts = titles[:]
    for s in sections:
        names = [t.title for t in s.tables]
        assert len(names) == len(set(names)), (s.title, names)
        texts += names + [h for t in s.tables for h in t.headers]
    for text in texts:
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text  # no raw keys (n_invited, lesion_size)
        assert not re.search(r"\b(\w+) \1\b", text, re.IGNORECASE), text  # no "Auc auc"
    by_title = {t.title: t for s in sections for t in s.tables}
    progress = by_title["Invitation links, raters and images"]
    assert progress.headers[:5] == ("links issued", "links used", "raters joined", "started", "finished")
    assert "By Fitzpatrick skin type" in by_title and "By lesion size (share of image)" in by_title


def test_the_progress_card_names_links_and_raters_and_shows_a_local_time(small):
    html = _owner_client(small.study).get(f"/studies/{small.study.pk}/results/").content.decode()
    for label in ("Links issued", "Links used", "Raters joined", "Started", "Finished"):
        assert f"<dt>{label}</dt>" in html
    assert "<dt>Invited</dt>" not in html and "<dt>Joined</dt>" not in html
    time = re.search(
        r'<time data-progress="last_answered_at" data-local-time datetime="([^"]+)">([^<]+)</time>', html
    )
    assert time, "the last answer is a <time> element"
    assert time.group(1).startswith("20") and time.group(2).endswith(" UTC")  # the no-JS fallback
    assert "js/local-time.js" in html and "Auc auc" not in html


def test_a_plot_that_cannot_be_drawn_is_a_placeholder_with_its_reason(small):
    # Answers on synthetic images only: no ROC (it needs both kinds), but no 404 either.
    report = reports.build(small.study, n_boot=50).to_dict()
    body, reason = plots.render_or_reason("per_rater_accuracy", report, small.study, fmt="png")
    assert reason == "" and body.startswith(b"\x89PNG")
    report["diagnosis"]["confusion"]["labels"] = []
    body, reason = plots.render_or_reason("diagnosis_confusion", report, small.study, fmt="svg")
    assert reason == "The study asks no diagnosis." and b"<svg" in body
    Judgment.objects.filter(presentation__item__image__kind="real").delete()
    client = _owner_client(small.study)
    roc = client.get(f"/studies/{small.study.pk}/results/plots/roc.svg")
    assert roc.status_code == 200 and roc["Content-Type"] == "image/svg+xml"
    assert roc["X-Plot-Unavailable"] == "The ROC needs answers on both real and synthetic images."
    assert b"Not drawn yet" in roc.content


def test_the_many_no_judgments_warnings_fold_into_one_summary(small, monkeypatch):
    real_report = views.study_report

    def with_empty_groups(study):
        report = dict(real_report(study))
        report["warnings"] = [*report["warnings"], *(f"condition C{i}: no judgments" for i in range(35))]
        return report

    monkeypatch.setattr(views, "study_report", with_empty_groups)
    html = _owner_client(small.study).get(f"/studies/{small.study.pk}/results/").content.decode()
    assert html.count('<details class="warning-summary">') == 1
    assert "35 groups without judgments yet" in html
    listed = re.search(r'<ul class="no-judgments">(.*?)</ul>', html, re.S).group(1)
    assert listed.count("<li>") == 35 and "<li>condition C7</li>" in listed
    other = re.search(r'<ul class="report-warnings">(.*?)</ul>', html, re.S).group(1)
    assert "no judgments" not in other and "<li>" in other  # the ones to read stay in view
    assert report_warnings({"warnings": ["a: no judgments", "b"]}).messages == ["b"]


def test_the_per_rater_table_scrolls_in_its_card_when_long():
    study = build_small_study(n_raters=TALL_ROWS + 1, n_real=2, n_synthetic=2).study
    sections = report_sections(reports.build(study, n_boot=20).to_dict())
    tables = {t.title: t for s in sections for t in s.tables}
    assert tables["Per rater"].tall and not tables["Fleiss' κ and Krippendorff's α"].tall
    html = _owner_client(study).get(f"/studies/{study.pk}/results/").content.decode()
    assert 'class="table-wrap tall" tabindex="0" role="region" aria-label="Per rater (scrolls)"' in html


def test_the_confusion_figure_grows_with_the_classes_and_the_histogram_counts_whole_images(small):
    def confusion(n: int):
        labels = [f"C{i}" for i in range(n)]
        eye = [[3 if i == j else 1 for j in range(n)] for i in range(n)]
        report = {"diagnosis": {"confusion": {"labels": labels, "real": eye, "synthetic": eye}}}
        return plots.diagnosis_confusion(report, None).get_size_inches()

    small_fig, large_fig = confusion(3), confusion(20)
    assert large_fig[0] > small_fig[0] and large_fig[1] > small_fig[1]
    report = {
        "images": {"fooling_rate_histogram": {"counts": [1, 0, 2, 0, 1], "edges": [0, 0.2, 0.4, 0.6, 0.8, 1]}}
    }
    ax = plots.fooling_rate(report, None).axes[0]
    ax.figure.canvas.draw()
    ticks = ax.get_yticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    page = _owner_client(small.study).get(f"/studies/{small.study.pk}/results/").content.decode()
    assert '<figure class="plot wide">' in page  # the heatmaps get their own full-width card


def test_the_study_page_names_links_and_raters_as_the_dashboard_does():
    study = open_study(n_real=2, n_synthetic=2)
    services.invitation_create(study=study, count=2)
    rater_for(study)  # joined without a link: more raters joined than links used
    html = _owner_client(study).get(f"/studies/{study.pk}/").content.decode()
    assert "2 links issued, 0 used; 1 rater joined, 0 started, 0 finished." in html
