"""The study report on a small constructed study whose answers are known by hand.

Three raters see four real and four synthetic images (two conditions). The expected
numbers below are counted by hand from the answer table; library calls (scipy,
statsmodels) are used only to turn those counts into p-values and κ where the hand
arithmetic would be long.
"""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
import statsmodels.stats.inter_rater as ir
from django.db import connection
from django.test.utils import CaptureQueriesContext
from scipy import stats as sps

from tests.factories import StudyFactory
from tests.report_study import ANSWERS, make_study
from turingtest import reports
from turingtest.library.models import Image
from turingtest.reports.build import _response_times

pytestmark = pytest.mark.django_db


@pytest.fixture
def known():
    study, images, users = make_study()
    report = reports.build(study, n_boot=300)
    return study, images, users, report


def _wilson(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's closed form, written out independently of stats.wilson_interval."""
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_pooled_detection_counts_first_showings_only_and_matches_the_hand_count(known):
    _, _, _, report = known
    pooled = report.detection.pooled
    # 3 raters × 8 images; the 2 repeats and the tutorial judgment are excluded.
    assert (pooled.n, pooled.n_real, pooled.n_synthetic) == (24, 12, 12)
    assert (pooled.accuracy.successes, pooled.accuracy.n) == (17, 24)
    assert pooled.accuracy.ci_low == pytest.approx(_wilson(17, 24)[0], abs=1e-12)
    assert pooled.accuracy.ci_high == pytest.approx(_wilson(17, 24)[1], abs=1e-12)
    assert pooled.accuracy.p_value == pytest.approx(sps.binomtest(17, 24, 0.5).pvalue)
    assert (pooled.sensitivity.successes, pooled.sensitivity.n) == (8, 12)  # 3 + 1 + 4 hits
    assert (pooled.specificity.successes, pooled.specificity.n) == (9, 12)  # 3 false alarms
    assert (pooled.real_error.successes, pooled.synthetic_error.successes) == (3, 4)
    # Log-linear d′: H = 8.5/13, F = 3.5/13.
    zh, zf = sps.norm.ppf(8.5 / 13), sps.norm.ppf(3.5 / 13)
    assert pooled.d_prime == pytest.approx(zh - zf)
    assert pooled.criterion_c == pytest.approx(-(zh + zf) / 2)
    # Confidence-signed AUC counted by hand: 116 of 144 pairs (ties half).
    assert pooled.auc.auc == pytest.approx(116 / 144)
    assert pooled.auc.ci_low < pooled.auc.auc < pooled.auc.ci_high


def test_hype_error_rate_is_the_share_of_misclassified_judgments_with_a_bootstrap_ci(known):
    _, _, _, report = known
    hype = report.detection.hype
    assert hype.error_rate.estimate == pytest.approx(7 / 24)
    assert hype.real_error_rate.estimate == pytest.approx(3 / 12)
    assert hype.synthetic_error_rate.estimate == pytest.approx(4 / 12)
    assert hype.error_rate.ci_low <= 7 / 24 <= hype.error_rate.ci_high
    assert hype.error_rate.n_boot == 300


def test_bootstrap_intervals_are_reproducible_from_the_seed(known):
    study, _, _, report = known
    again = reports.build(study, n_boot=300)
    assert again.detection.hype == report.detection.hype
    other = reports.build(study, n_boot=300, seed=12345)
    assert other.detection.hype.error_rate.estimate == report.detection.hype.error_rate.estimate


def test_per_rater_detection_uses_pseudonyms_and_professional_details(known):
    study, _, _, report = known
    rows = {r.rater: r for r in report.detection.per_rater}
    r1, r2, r3 = (rows[f"p-{n}-{study.pk}"] for n in ("R1", "R2", "R3"))
    assert (r1.detection.accuracy.successes, r2.detection.accuracy.successes) == (6, 3)
    assert r3.detection.accuracy.successes == 8
    assert (r1.role, r1.years_experience) == ("dermatologist", 12)
    # A perfect rater keeps finite d′ thanks to the log-linear correction: H = 4.5/5, F = 0.5/5.
    assert r3.detection.d_prime == pytest.approx(sps.norm.ppf(0.9) - sps.norm.ppf(0.1))
    assert r3.detection.auc.auc == 1.0


def test_agreement_statistics_match_the_libraries_on_the_hand_built_tables(known):
    _, _, _, report = known
    # [calls "real", calls "synthetic"] per image r1..r4, s1..s4, read off ANSWERS.
    table = np.array([[3, 0], [2, 1], [3, 0], [1, 2], [0, 3], [1, 2], [1, 2], [2, 1]])
    det = report.agreement.detection
    assert det.fleiss_kappa == pytest.approx(ir.fleiss_kappa(table))
    assert (det.fleiss_n_images, det.fleiss_raters_per_image, det.n_raters) == (8, 3, 3)
    data = np.array([ANSWERS[n] for n in ("R1", "R2", "R3")], dtype=float)
    assert det.krippendorff_alpha == pytest.approx(krippendorff.alpha(data, level_of_measurement="nominal"))


def test_pairwise_kappa_matrix_is_symmetric_and_matches_a_hand_count(known):
    study, _, _, report = known
    pk = report.agreement.pairwise_kappa
    idx = {name: pk.raters.index(f"p-{name}-{study.pk}") for name in ("R1", "R2", "R3")}
    # R1 vs R3 agree on 6 of 8, both say "synthetic" 4 times: p_o = .75, p_e = .5, κ = .5.
    assert pk.kappa[idx["R1"]][idx["R3"]] == pytest.approx(0.5)
    assert pk.kappa[idx["R3"]][idx["R1"]] == pytest.approx(0.5)
    assert pk.n_common[idx["R1"]][idx["R2"]] == 8
    assert pk.kappa[idx["R2"]][idx["R2"]] == 1.0
    assert pk.summary.n_pairs == 3


def test_test_retest_pairs_each_repeat_with_the_first_answer(known):
    study, _, _, report = known
    tr = report.agreement.test_retest
    assert (tr.pooled.n_pairs, tr.pooled.agreement.successes) == (2, 1)
    (r1,) = tr.per_rater
    assert r1.rater == f"p-R1-{study.pk}"
    assert (r1.n_pairs, r1.agreement.successes) == (2, 1)
    assert r1.diagnosis_agreement.successes == 2


def test_diagnosis_accuracy_by_kind_condition_and_confusion_matrix(known):
    _, _, _, report = known
    dx = report.diagnosis
    assert (dx.n_answered, dx.n_unanswered, dx.n_choices) == (23, 1, 2)
    assert (dx.overall.real.successes, dx.overall.real.n) == (10, 12)
    assert (dx.overall.synthetic.successes, dx.overall.synthetic.n) == (6, 11)
    assert dx.overall.real.p0 == 0.5
    fisher = sps.fisher_exact([[10, 2], [6, 5]]).pvalue
    assert dx.overall.comparison.fisher_p == pytest.approx(fisher)
    assert dx.confusion.labels == ("MEL", "NEV")
    # Rows true, columns answered. Real: R1 right, R2 always MEL, R3 right.
    assert dx.confusion.real == ((6, 0), (2, 4))
    # Synthetic: R1 right, R2 always MEL, R3 swaps (s4 unanswered).
    assert dx.confusion.synthetic == ((4, 2), (3, 2))
    mel = {e.condition: e for e in dx.embodiment}["MEL"]
    assert (mel.n_images, mel.n_answered, mel.rate.successes) == (2, 6, 4)
    assert mel.n_images_majority == 2


def test_per_image_fooling_rates_rank_the_most_convincing_synthetic_images(known):
    _, images, _, report = known
    by_token = {row.token: row for row in report.images.per_image}
    s4 = by_token[images["s4"].public_token]
    assert (s4.n, s4.n_says_synthetic, s4.fooling_rate) == (3, 1, pytest.approx(2 / 3))
    assert by_token[images["r2"].public_token].fooling_rate is None
    assert by_token[images["r2"].public_token].correct_rate == pytest.approx(2 / 3)
    assert report.images.most_convincing[0] == images["s4"].public_token
    assert report.images.least_convincing[0] == images["s1"].public_token
    assert sum(report.images.fooling_rate_histogram.counts) == 4


def test_breakdowns_group_detection_by_image_and_rater_attributes(known):
    _, _, _, report = known
    fitz = {g.group: g.detection for g in report.breakdowns.fitzpatrick}
    assert set(fitz) == {"II", "V"}
    assert fitz["II"].n == 6  # r1 and s1, three raters each
    size = {g.group: g.detection.n for g in report.breakdowns.lesion_size}
    assert size == {"0–5%": 12, "15–35%": 12}
    roles = {g.group: g.detection.accuracy.successes for g in report.breakdowns.role}
    assert roles == {"dermatologist": 6, "resident": 3, "clinician": 8}
    exp = {g.group: g.detection.n for g in report.breakdowns.experience}
    assert exp == {"0–4 y": 8, "10–19 y": 8, "20+ y": 8}


def test_response_times_are_summarized_by_kind_and_correctness(known):
    _, _, _, report = known
    groups = {(g.kind, g.correct): g for g in report.response_times.groups}
    assert groups[("all", True)].q_ms[2] == 1000.0
    assert groups[("all", False)].q_ms[2] == 3000.0
    assert groups[("all", None)].n_missing == 1
    assert groups[("real", None)].n == 12


def test_progress_counts_invitations_and_assignments(known):
    _, _, _, report = known
    p = report.progress
    assert (p.n_invited, p.n_invitations_used) == (5, 4)
    assert (p.n_assignments, p.n_started, p.n_finished) == (4, 3, 2)
    assert (p.n_raters_with_judgments, p.n_images, p.n_synthetic_images) == (3, 8, 4)


def test_to_dict_is_json_serializable_with_nan_as_none(known):
    _, _, _, report = known
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["detection"]["pooled"]["accuracy"]["successes"] == 17
    assert data["schema_version"] == 2
    assert next(iter(data)) == "headline"
    assert data["images"]["per_image"][0]["fooling_rate"] is None  # r1: real


def test_building_the_report_takes_a_constant_number_of_queries():
    small, _, _ = make_study(("R1", "R2"))
    large, _, _ = make_study(("R1", "R2", "R3"), extra_raters=4)
    with CaptureQueriesContext(connection) as q_small:
        reports.build(small, n_boot=20)
    with CaptureQueriesContext(connection) as q_large:
        reports.build(large, n_boot=20)
    assert len(q_small) == len(q_large)
    assert len(q_small) <= 10  # rows, lookups, and study_progress (the one owner of progress counts)


def test_a_study_without_judgments_reports_warnings_instead_of_failing():
    study = StudyFactory()
    report = reports.build(study, n_boot=10)
    assert report.detection.pooled.accuracy is None
    assert report.detection.hype.error_rate is None
    assert report.agreement.detection.fleiss_kappa is None
    assert report.images.most_convincing == ()
    assert any("no judgments" in w for w in report.warnings)
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_single_rater_gets_detection_statistics_and_undefined_agreement():
    study, _, _ = make_study(("R3",))
    report = reports.build(study, n_boot=50)
    assert report.detection.pooled.accuracy.successes == 8
    assert report.agreement.detection.fleiss_kappa is None
    assert report.agreement.detection.krippendorff_alpha is None
    assert report.agreement.pairwise_kappa.summary.n_pairs == 0
    assert any("only one rater" in w for w in report.warnings)
    json.dumps(report.to_dict(), allow_nan=False)


def test_response_time_quantiles_equal_numpy_quantile_per_group():
    rng = np.random.default_rng(5)
    rt = rng.lognormal(7, 0.5, 500)
    rt[rng.random(500) < 0.1] = np.nan
    truth = rng.random(500) < 0.5
    correct = rng.random(500) < 0.7
    result = _response_times(rt, truth, correct)
    group = {(g.kind, g.correct): g for g in result.groups}[("synthetic", False)]
    values = rt[truth & ~correct]
    values = values[np.isfinite(values)]
    assert group.q_ms == pytest.approx(tuple(np.quantile(values, reports.RT_QUANTILES)), rel=1e-12)
    assert group.mean_ms == pytest.approx(values.mean())
    assert group.n_missing == int(np.isnan(rt[truth & ~correct]).sum())


def test_the_skin_type_breakdown_counts_labelled_types_only():
    study, images, _ = make_study()
    # r1/s1 carry type II as a label; r2/s2 carry type II estimated from the photo.
    Image.objects.filter(pk__in=[images["r2"].pk, images["s2"].pk]).update(
        fitzpatrick=2, fitzpatrick_source=Image.FitzpatrickSource.ESTIMATE
    )
    Image.objects.filter(pk__in=[images["r1"].pk, images["s1"].pk]).update(fitzpatrick=2)
    report = reports.build(study, n_boot=20)
    by_group = {g.group: g for g in report.breakdowns.fitzpatrick}
    assert set(by_group) == {"II", "V", "no label"}
    # Only r1 and s1 (labelled) are type II; the estimated pair sits under "no label".
    n_by_image = {row.image_id: row.n for row in report.images.per_image}
    assert by_group["II"].detection.n == n_by_image[images["r1"].pk] + n_by_image[images["s1"].pk] > 0
    assert by_group["no label"].detection.n > 0
    estimated = {images["r2"].pk, images["s2"].pk}
    rows = [row for row in report.images.per_image if row.image_id in estimated]
    assert rows and all(row.fitzpatrick is None for row in rows)  # the estimate is not shown as a type


def test_design_choices_that_weaken_blinding_are_report_warnings():
    study, _, _ = make_study()
    study.config = {**study.config, "unmatched": True}
    study.save(update_fields=["config"])
    report = reports.build(study, n_boot=20)
    assert any(w.startswith("Unmatched design") for w in report.warnings)
