"""The report's headline: reader-study estimates first, a sentence true to the CI, caveats.

The report is built from arrays (``build_report`` runs no query), so most cases here are
simulated studies handed straight to it; the hand-built study of ``tests/report_study.py``
checks the numbers against the estimators themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.report_study import ANSWERS, make_study
from turingtest import reports, stats
from turingtest.reports.headline import headline_sentence
from turingtest.reports.inputs import Images, Rows, StudyData


def _estimate(estimate: float, low: float, high: float, n_raters: int = 20, n_images: int = 200):
    return stats.CrossedEstimate(
        estimate,
        0.03,
        19.0,
        low,
        high,
        0.2,
        0.5,
        stats.VarianceComponents(0.01, 0.02, 0.2),
        n_raters,
        n_images,
    )


@pytest.mark.parametrize(
    ("est", "verdict", "sentence"),
    [
        (
            _estimate(0.53, 0.46, 0.60),
            "not_distinguishable",
            "Raters could not reliably tell synthetic from real images: balanced accuracy 0.53, "
            "95% CI 0.46–0.60, 20 raters × 200 images.",
        ),
        (
            _estimate(0.71, 0.64, 0.78),
            "above_chance",
            "Raters told synthetic from real images apart better than chance: balanced accuracy 0.71, "
            "95% CI 0.64–0.78, 20 raters × 200 images.",
        ),
        (
            _estimate(0.41, 0.35, 0.47, 12, 80),
            "below_chance",
            "Raters were systematically fooled, calling synthetic images real more often than real "
            "ones (below chance): balanced accuracy 0.41, 95% CI 0.35–0.47, 12 raters × 80 images.",
        ),
        (  # a bound that two decimals would round onto chance keeps a third
            _estimate(0.56, 0.502, 0.62),
            "above_chance",
            "Raters told synthetic from real images apart better than chance: balanced accuracy 0.56, "
            "95% CI 0.502–0.62, 20 raters × 200 images.",
        ),
    ],
)
def test_the_sentence_says_what_the_balanced_accuracy_interval_allows(est, verdict, sentence):
    assert headline_sentence(est, confidence=0.95, n_raters_judged=20) == (verdict, sentence)


def test_without_an_estimate_the_sentence_says_what_is_missing():
    verdict, sentence = headline_sentence(None, confidence=0.9, n_raters_judged=1)
    assert verdict == "not_estimable"
    assert "at least 2 raters" in sentence and "(1 raters so far)" in sentence


# --------------------------------------------------------------------------- simulated studies


def _study(n_real: int, n_syn: int) -> StudyData:
    n = n_real + n_syn
    syn = np.arange(n) >= n_real
    images = Images(
        ids=np.arange(1, n + 1, dtype=np.int64),
        token=[f"t{k}" for k in range(n)],
        kind=["synthetic" if s else "real" for s in syn],
        is_synthetic=syn,
        condition=np.where(np.arange(n) % 2 == 0, 1, 2).astype(np.int64),
        fitzpatrick=np.full(n, np.nan),
        lesion_area_fraction=np.full(n, np.nan),
    )
    return StudyData(
        id=1, title="sim", status="open", config_sha256="", seed=3, images=images,
        conditions={1: ("MEL", "Melanoma"), 2: ("NEV", "Nevus")}, n_choices=2,
        profiles={}, roles=("dermatologist", "other"),
        n_invited=0, n_invitations_used=0, n_assignments=0, n_started=0, n_finished=0,
    )  # fmt: skip


def _rows(data: StudyData, says: np.ndarray, rater: np.ndarray, image: np.ndarray) -> Rows:
    n = says.size
    return Rows(
        presentation=np.arange(n, dtype=np.float64),
        repeat_of=np.full(n, np.nan),
        rater=rater.astype(np.float64) + 100,
        image=data.images.ids[image].astype(np.float64),
        says_synthetic=says.astype(np.float64),
        confidence=np.full(n, 3.0),
        diagnosis=np.full(n, np.nan),
        response_ms=np.full(n, 1000.0),
        diagnosis_unsure=np.zeros(n),
    )


def _simulate(n_raters: int, n_real: int, n_syn: int, ability: float, seed: int = 1):
    """Every rater judges every image; ``ability`` shifts the call towards the truth."""
    rng = np.random.default_rng(seed)
    data = _study(n_real, n_syn)
    rater, image = (a.ravel() for a in np.indices((n_raters, n_real + n_syn)))
    truth = data.images.is_synthetic[image]
    latent = (
        np.where(truth, ability, -ability) + rng.normal(0, 0.5, n_raters)[rater] + rng.normal(size=rater.size)
    )
    return data, rater, image, latent > 0


def _build(data, rows, **kw):
    return reports.build_report(data, rows, generated_at="now", n_boot=50, **kw)


def test_the_headline_is_the_estimators_output_and_hype_is_one_minus_it():
    data, rater, image, says = _simulate(8, 20, 20, ability=1.0)
    report = _build(data, _rows(data, says, rater, image))
    h = report.headline
    truth = data.images.is_synthetic[image]
    expected = stats.headline_estimates(says, np.where(says, 3.0, -3.0), truth, rater, image, 0.95)
    assert h.balanced_accuracy.estimate == pytest.approx(expected.accuracy.estimate)
    assert (h.balanced_accuracy.ci_low, h.balanced_accuracy.ci_high) == pytest.approx(
        (expected.accuracy.ci_low, expected.accuracy.ci_high)
    )
    assert h.sensitivity.ci_high == pytest.approx(expected.accuracy.sensitivity.ci_high)
    assert h.auc.estimate == pytest.approx(expected.auc.estimate)
    assert h.balanced_accuracy.components == expected.accuracy.components
    assert h.hype.error_rate.estimate == pytest.approx(1 - h.balanced_accuracy.estimate)
    assert h.hype.error_rate.ci_low == pytest.approx(1 - h.balanced_accuracy.ci_high)
    assert h.hype.synthetic_error_rate.estimate == pytest.approx(1 - h.sensitivity.estimate)
    assert h.hype.real_error_rate.ci_high == pytest.approx(1 - h.specificity.ci_low)
    assert h.d_prime == report.detection.pooled.d_prime
    assert (h.verdict, h.n_raters, h.n_images, h.n_raters_left_out) == ("above_chance", 8, 40, 0)
    assert h.sentence.startswith("Raters told synthetic from real images apart better than chance")
    assert h.notes == () and not any(w.startswith("headline") for w in report.warnings)
    assert next(iter(report.to_dict())) == "headline"


def test_raters_at_chance_get_the_could_not_tell_sentence():
    data, rater, image, says = _simulate(10, 20, 20, ability=0.0, seed=4)
    h = _build(data, _rows(data, says, rater, image)).headline
    assert h.verdict == "not_distinguishable"
    assert h.balanced_accuracy.ci_low < 0.5 < h.balanced_accuracy.ci_high
    assert h.sentence.startswith("Raters could not reliably tell synthetic from real images")


def test_few_raters_few_images_and_left_out_raters_are_warned_about():
    data, rater, image, says = _simulate(4, 8, 8, ability=1.0)
    # A fifth rater who judged a single synthetic image cannot enter the reader average.
    rater = np.r_[rater, 4]
    image = np.r_[image, 12]
    says = np.r_[says, True]
    report = _build(data, _rows(data, says, rater, image))
    h = report.headline
    assert (h.n_raters, h.n_raters_judged, h.n_raters_left_out) == (4, 5, 1)
    assert any("1 of 5 raters judged fewer than 2 real or 2 synthetic images" in n for n in h.notes)
    assert any("rest on 4 raters (fewer than 5)" in n for n in h.notes)
    assert any("rest on 8 real and 8 synthetic images (fewer than 10 of a kind)" in n for n in h.notes)
    assert all(f"headline: {n}" in report.warnings for n in h.notes)


def test_an_unequal_pool_says_raw_accuracy_is_not_comparable_to_chance():
    # The example: 20 real + 60 synthetic, raters who cannot discriminate but say
    # "synthetic" 80% of the time: raw accuracy near 0.65, balanced accuracy near 0.5.
    rng = np.random.default_rng(2)
    data = _study(20, 60)
    rater, image = (a.ravel() for a in np.indices((12, 80)))
    says = rng.random(rater.size) < 0.8
    report = _build(data, _rows(data, says, rater, image))
    h = report.headline
    assert not h.equal_kinds
    (note,) = [n for n in h.notes if "not comparable to 0.5" in n]
    assert "20 real and 60 synthetic" in note and "0.75" in note and "chance level is 0.5" in note
    assert f"headline: {note}" in report.warnings
    assert report.detection.pooled.accuracy.proportion > 0.6
    assert h.verdict == "not_distinguishable"


def test_breakdown_groups_get_crossed_cis_where_estimable_and_are_descriptive_otherwise():
    data, rater, image, says = _simulate(12, 24, 24, ability=0.8)
    report = _build(data, _rows(data, says, rater, image))
    (unknown,) = report.breakdowns.fitzpatrick
    assert unknown.inference == "crossed"
    assert unknown.balanced_accuracy.estimate == pytest.approx(report.headline.balanced_accuracy.estimate)
    for group in report.breakdowns.condition:  # 12 images of each kind per condition
        assert group.inference == "crossed" and group.balanced_accuracy.n_raters == 12
    # With one rater a group cannot support a crossed interval.
    data, rater, image, says = _simulate(1, 24, 24, ability=0.8)
    report = _build(data, _rows(data, says, rater, image))
    assert {g.inference for g in report.breakdowns.condition} == {"descriptive"}
    assert all(g.balanced_accuracy is None for g in report.breakdowns.condition)
    assert report.headline.verdict == "not_estimable"


# --------------------------------------------------------------------------- the hand-built study


@pytest.mark.django_db
def test_the_known_study_headline_is_the_mean_of_each_raters_balanced_accuracy():
    study, _, _ = make_study()
    h = reports.build(study, n_boot=50).headline
    # Balanced accuracy per rater from ANSWERS: R1 (3/4 + 3/4)/2, R2 (1/4 + 2/4)/2, R3 1.
    assert h.balanced_accuracy.estimate == pytest.approx((0.75 + 0.375 + 1.0) / 3)
    assert h.sensitivity.estimate == pytest.approx((3 / 4 + 1 / 4 + 1) / 3)
    assert len(ANSWERS) == h.n_raters == 3
    assert h.verdict == "not_distinguishable"
    # headline(study) is the same section without the rest of the report.
    assert reports.headline(study) == h


def test_the_html_report_and_tidy_csv_lead_with_the_headline_and_label_the_pooled_figures():
    data, rater, image, says = _simulate(6, 12, 12, ability=1.0)
    report = _build(data, _rows(data, says, rater, image))
    html = reports.render(report, "html")
    sentence_at = html.index(report.headline.sentence)
    assert sentence_at < html.index("<h2>Headline: can raters tell synthetic from real?</h2>")
    assert html.index("<h2>Headline") < html.index(
        "<h2>Detection: judgment-level, assumes independent judgments</h2>"
    )
    assert "Pooled (judgment-level, assumes independent judgments)" in html
    assert "balanced accuracy [crossed CI]" in html  # breakdown tables
    tidy = {(s, stat): v for s, _, stat, v in reports.tidy_rows(report)}
    assert tidy[("headline", "balanced_accuracy.ci_low")] == report.headline.balanced_accuracy.ci_low
    assert tidy[("headline", "sentence")] == report.headline.sentence
    assert reports.headline_csv(report.to_dict()).splitlines()[1].startswith("balanced_accuracy,")
