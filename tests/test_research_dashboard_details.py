"""Dashboard details: readable labels, plots that say why they are missing, collapsed warnings,
progress in named counts with local times, long tables that scroll, legible figures."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.research_study import build_small_study
from turingtest import reports
from turingtest.reports.tables import report_tables
from turingtest.research import plots, views
from turingtest.research.tables import TALL_ROWS, report_sections, report_warnings
from turingtest.studies.models import Judgment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def small():
    return build_small_study(n_raters=3, n_real=4, n_synthetic=4)


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
