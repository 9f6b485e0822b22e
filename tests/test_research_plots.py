"""Plots: every plot renders from the real report; the ROC curve agrees with the report's AUC."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import StudyFactory
from tests.research_study import build_small_study
from turingtest import reports, stats
from turingtest.research import plots
from turingtest.research.reporting import study_report


def test_roc_points_span_zero_to_one_and_their_area_is_the_mann_whitney_auc():
    rng = np.random.default_rng(3)
    signed = rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5], size=200).astype(float)
    truth = rng.random(200) < 0.5
    fpr, tpr = plots.roc_points(signed, truth)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(stats.rating_auc(signed[truth], signed[~truth]))


def test_roc_points_of_perfect_and_useless_ratings():
    truth = np.array([True, True, False, False])
    fpr, tpr = plots.roc_points(np.array([5.0, 4.0, -4.0, -5.0]), truth)
    assert np.trapezoid(tpr, fpr) == 1.0
    fpr, tpr = plots.roc_points(np.array([1.0, 1.0, 1.0, 1.0]), truth)
    assert np.trapezoid(tpr, fpr) == 0.5


@pytest.mark.django_db
def test_every_plot_renders_from_the_real_report_and_the_roc_matches_its_auc():
    small = build_small_study(n_raters=3, n_real=5, n_synthetic=5)
    report = study_report(small.study)
    assert [p.name for p in plots.available(report)] == list(plots.PLOTS)
    for name in plots.PLOTS:
        svg = plots.render(name, report, small.study, fmt="svg")
        png = plots.render(name, report, small.study, fmt="png")
        assert svg is not None and b"<svg" in svg, name
        assert png is not None and png.startswith(b"\x89PNG"), name
    signed, truth = plots.signed_ratings(small.study)["all raters"]
    fpr, tpr = plots.roc_points(signed, truth)
    assert np.trapezoid(tpr, fpr) == pytest.approx(report["detection"]["pooled"]["auc"]["auc"])
    assert len(signed) == report["detection"]["pooled"]["n"]
    convincing = plots.most_convincing(report, limit=3)
    rates = [c["fooling_rate"] for c in convincing]
    assert rates == sorted(rates, reverse=True) and len(convincing) <= 3
    kinds = {row["token"]: row["kind"] for row in report["images"]["per_image"]}
    assert all(kinds[c["token"]] == "synthetic" for c in convincing)


@pytest.mark.django_db
def test_an_empty_study_has_no_plots_and_render_says_so():
    study = StudyFactory()
    report = reports.build(study).to_dict()
    assert plots.available(report) == []
    for name in plots.PLOTS:
        assert plots.render(name, report, study, fmt="svg") is None
    with pytest.raises(ValueError, match="unknown plot format"):
        plots.render("roc", report, study, fmt="gif")


@pytest.mark.django_db
def test_the_per_rater_plot_shows_balanced_accuracies_and_the_crossed_ci_band_not_the_wilson_band():
    small = build_small_study(n_raters=4, n_real=5, n_synthetic=5)
    report = study_report(small.study)
    ba = report["headline"]["balanced_accuracy"]
    fig = plots.per_rater_accuracy(report, small.study)
    ax = fig.axes[0]
    (band,) = [p for p in ax.patches if p.get_alpha() == 0.12]
    box = band.get_bbox()  # axvspan: x in data coordinates
    xs = np.array([box.x0, box.x1])
    assert (xs.min(), xs.max()) == (pytest.approx(ba["ci_low"]), pytest.approx(ba["ci_high"]))
    wilson = report["detection"]["pooled"]["accuracy"]
    assert (xs.min(), xs.max()) != (pytest.approx(wilson["ci_low"]), pytest.approx(wilson["ci_high"]))
    # One point per rater at its balanced accuracy (sensitivity + specificity) / 2.
    (points,) = [line for line in ax.lines if line.get_marker() == "o"]
    expected = sorted(
        ((r["detection"]["sensitivity"]["proportion"] + r["detection"]["specificity"]["proportion"]) / 2
         for r in report["detection"]["per_rater"]),
        reverse=True,
    )  # fmt: skip
    assert list(points.get_xdata()) == pytest.approx(expected)
    assert "crossed 95% CI" in ax.get_xlabel()
