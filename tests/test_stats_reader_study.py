"""turingtest.stats.reader_study against a published analysis, brute force, and edge cases.

The AUC method is checked against the single-treatment analysis of the Van Dyke data
printed by OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce & Berbaum), the reference
implementation of Hillis (2007): RJafroc's ``inst/IowaResults/VanDyke.txt``. The ratings
are RJafroc's ``dataset02`` (``inst/MRMCRuns/VD/VD.lrc``): 5 readers, 69 normal and 45
abnormal cases, two treatments, 5-point ratings.
"""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest

from turingtest import stats
from turingtest.stats import crossed, reader_study
from turingtest.stats.reader_study import (
    CrossedEstimate,
    VarianceComponents,
    crossed_mean,
    reader_study_accuracy,
    reader_study_auc,
)

# Van Dyke ratings per reader: (treatment 1 normal, t1 abnormal, t2 normal, t2 abnormal),
# one digit per case in the order of VD.lrc.
VAN_DYKE = [
    (
        "122151111111411111111131311214111113121211233131133111111221111332111",
        "555545554555434245555555154454553555115554451",
        "333222223213122222211111421312214323123122233111333113412421241442111",
        "535555554555544335555555355355554455535555551",
    ),
    (
        "232222222322522232222222422223222222222222222222222222222432232222222",
        "535555542555442225555555243354552425225555352",
        "322222223222222122221222322222212212222231223222222222322322222222122",
        "535555552555344245455545252355532425525555552",
    ),
    (
        "222235112242422232221232411322112224121412112222223211211221151421212",
        "545555555555542355555555252255552555225555552",
        "242222322211132222121121411512112122212221132111233113221232341242121",
        "525555555555354145555555253355543555534555551",
    ),
    (
        "111111311111111111112111211112111111111111111111331111111111111311111",
        "555555555555555155555555554544553555125555555",
        "221111312111122111211111321212111122112111112121212211111212111323211",
        "545555554555455555555555455445555555535555555",
    ),
    (
        "351211112221211122113221111211211231221113332111211111111341231212113",
        "525255551545452235555554144322151515115553552",
        "223122221222111222122212322321212222112121132122332122221222231233111",
        "525455555455343335555555251332532545533555553",
    ),
]

# OR-DBM MRMC 2.51, "Analysis 1 (OR Analysis): Random Readers and Random Cases",
# c) Single-treatment 95% confidence intervals (jackknife covariances):
#   Treatment  AUC         Std Err     DF     95% CI                       Cov2
#   1          0.89703704  0.03317360  12.74  (0.82522360 , 0.96885048)  0.00048396
#   2          0.94083736  0.02156637  12.71  (0.89413783 , 0.98753689)  0.00020419
# and the reader ANOVA: MS(R) 0.00308263 (t1), 0.00130460 (t2).
VAN_DYKE_OR = {
    0: (0.89703704, 0.03317360, 12.74, 0.82522360, 0.96885048),
    1: (0.94083736, 0.02156637, 12.71, 0.89413783, 0.98753689),
}


def van_dyke(treatment: int) -> tuple[np.ndarray, ...]:
    score, truth, rater, image = [], [], [], []
    for j, reader in enumerate(VAN_DYKE):
        normal, abnormal = reader[2 * treatment], reader[2 * treatment + 1]
        for k, digit in enumerate(normal + abnormal):
            score.append(int(digit))
            truth.append(k >= len(normal))
            rater.append(j)
            image.append(k)
    return tuple(np.array(a) for a in (score, truth, rater, image))


@pytest.mark.parametrize("module", [crossed, reader_study])
def test_every_docstring_example_runs(module):
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 4
    assert failures == 0


def test_the_names_are_importable_from_turingtest_stats():
    assert stats.reader_study_auc is reader_study_auc
    assert stats.CrossedEstimate is CrossedEstimate
    assert {"crossed_mean", "reader_study_accuracy", "reader_study_auc"} <= set(stats.__all__)


def test_van_dyke_data_were_transcribed_with_the_published_case_counts():
    for reader in VAN_DYKE:
        assert [len(x) for x in reader] == [69, 45, 69, 45]


@pytest.mark.parametrize("treatment", [0, 1])
def test_hillis_method_reproduces_or_dbm_mrmc_on_van_dyke(treatment):
    auc = reader_study_auc(*van_dyke(treatment), method="hillis")
    estimate, se, df, lo, hi = VAN_DYKE_OR[treatment]
    assert auc.estimate == pytest.approx(estimate, abs=1e-8)
    assert auc.se == pytest.approx(se, abs=1e-8)
    assert auc.df == pytest.approx(df, abs=0.005)
    assert (auc.ci_low, auc.ci_high) == pytest.approx((lo, hi), abs=1e-8)
    assert (auc.n_raters, auc.n_images) == (5, 114)


def test_default_method_keeps_the_variance_and_widens_only_through_df_and_the_logit_scale():
    hillis = reader_study_auc(*van_dyke(0), method="hillis")
    logit = reader_study_auc(*van_dyke(0))
    assert logit.estimate == hillis.estimate
    assert logit.se == pytest.approx(hillis.se)
    assert logit.df <= hillis.df
    assert 0 < logit.ci_low < logit.estimate < logit.ci_high < 1
    # On the logit scale the interval leans away from the boundary at 1.
    assert logit.ci_high - logit.estimate < logit.estimate - logit.ci_low


def test_components_reproduce_the_variance_at_the_pilot_design():
    auc = reader_study_auc(*van_dyke(0), method="hillis")
    assert auc.components.rater > 0 and auc.components.residual > 0
    assert auc.components.variance(5, 114) == pytest.approx(auc.se**2, rel=1e-9)
    # More raters cannot remove the image term; more images cannot remove the rater term.
    assert auc.components.variance(10_000, 114) == pytest.approx(auc.components.image / 114, rel=0.01)
    assert auc.components.variance(5, 10**9) == pytest.approx(auc.components.rater / 5, rel=0.01)


# --------------------------------------------------------------------------- brute force


def _random_study(seed: int, n_raters: int = 4, n_images: int = 12, seen: float = 0.75):
    """Small unbalanced study: each rater misses some images; ids are arbitrary."""
    rng = np.random.default_rng(seed)
    truth_img = np.arange(n_images) % 3 == 0  # 1 synthetic : 2 real
    rows = []
    for j in range(n_raters):
        for k in range(n_images):
            if rng.random() < seen or k < 4:  # images 0..3 (both kinds) are seen by all
                rows.append((j, k, rng.integers(1, 6), rng.random() < 0.5))
    rater, image, score, says = (np.array(c) for c in zip(*rows, strict=True))
    return score, says, truth_img[image], rater * 11 - 3, image * 5 + 100


def _auc(pos, neg):
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))


def _ba(says_pos, says_neg):
    return (np.mean(says_pos) + 1 - np.mean(says_neg)) / 2


def _brute_force(fom, values, truth, rater, image):
    """θ_j, leave-one-image-out θ_j, jackknife covariances and the Hillis interval, by loops."""
    raters = sorted(set(rater))
    theta, jack = [], []
    for j in raters:
        mine = {int(k): (values[i], truth[i]) for i, k in enumerate(image) if rater[i] == j}
        pos = [v for v, t in mine.values() if t]
        neg = [v for v, t in mine.values() if not t]
        theta.append(fom(pos, neg))
        loo = {}
        for k in mine:
            rest = {kk: vt for kk, vt in mine.items() if kk != k}
            loo[k] = fom([v for v, t in rest.values() if t], [v for v, t in rest.values() if not t])
        jack.append(loo)
    n = len(raters)
    cov = np.zeros((n, n))
    for a, b in itertools.product(range(n), repeat=2):
        ka, kb = len(jack[a]), len(jack[b])
        factor = math.sqrt((ka - 1) / ka * (kb - 1) / kb)
        cov[a, b] = factor * sum(
            (jack[a][k] - theta[a]) * (jack[b][k] - theta[b]) for k in set(jack[a]) & set(jack[b])
        )
    cov2 = (cov.sum() - np.trace(cov)) / (n * (n - 1))
    ms_r = np.var(theta, ddof=1)
    variance = ms_r / n + max(cov2, 0)
    df = (ms_r + n * max(cov2, 0)) ** 2 / (ms_r**2 / (n - 1))
    return np.mean(theta), variance, df


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_matches_a_brute_force_jackknife_on_an_unbalanced_study(seed):
    score, _, truth, rater, image = _random_study(seed)
    estimate, variance, df = _brute_force(_auc, score, truth, rater, image)
    auc = reader_study_auc(score, truth, rater, image, method="hillis")
    assert auc.estimate == pytest.approx(estimate, abs=1e-12)
    assert auc.se**2 == pytest.approx(variance, rel=1e-9)
    assert auc.df == pytest.approx(df, rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_balanced_accuracy_matches_a_brute_force_jackknife_on_an_unbalanced_study(seed):
    _, says, truth, rater, image = _random_study(seed)
    estimate, variance, df = _brute_force(_ba, says.astype(float), truth, rater, image)
    ba = reader_study_accuracy(says, truth, rater, image, method="hillis")
    assert ba.estimate == pytest.approx(estimate, abs=1e-12)
    assert ba.se**2 == pytest.approx(variance, rel=1e-9)
    assert ba.df == pytest.approx(df, rel=1e-9)
    sens, _, _ = _brute_force(lambda p, q: np.mean(p), says.astype(float), truth, rater, image)
    assert ba.sensitivity.estimate == pytest.approx(sens)
    assert ba.estimate == pytest.approx((ba.sensitivity.estimate + ba.specificity.estimate) / 2)


def test_balanced_accuracy_ignores_bias_and_prevalence():
    """20 real + 60 synthetic, raters who cannot tell them apart but say 'synthetic' 80% of
    the time: raw accuracy is 0.65, balanced accuracy 0.5 (issue 11's counter-example)."""
    rng = np.random.default_rng(11)
    rater, image = (a.ravel() for a in np.indices((10, 80)))
    truth = image >= 20
    says = rng.random(rater.size) < 0.8
    ba = reader_study_accuracy(says, truth, rater, image)
    assert np.mean(says == truth) > 0.6
    assert ba.ci_low < 0.5 < ba.ci_high
    assert ba.p_value > 0.05


# --------------------------------------------------------------------------- crossed mean


def test_crossed_mean_matches_the_two_way_anova_in_a_balanced_design():
    rng = np.random.default_rng(3)
    n_r, n_i = 6, 15
    y = rng.normal(size=(n_r, 1)) + rng.normal(size=(1, n_i)) * 0.7 + rng.normal(size=(n_r, n_i))
    rater, image = (a.ravel() for a in np.indices((n_r, n_i)))
    grand = y.mean()
    ms_a = n_i * np.sum((y.mean(axis=1) - grand) ** 2) / (n_r - 1)
    ms_b = n_r * np.sum((y.mean(axis=0) - grand) ** 2) / (n_i - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_e = np.sum(resid**2) / ((n_r - 1) * (n_i - 1))
    est = crossed_mean(y.ravel(), rater, image, null=0.0)
    assert est.estimate == pytest.approx(grand)
    assert est.se**2 == pytest.approx((ms_a + ms_b - ms_e) / (n_r * n_i))
    df = (ms_a + ms_b - ms_e) ** 2 / (
        ms_a**2 / (n_r - 1) + ms_b**2 / (n_i - 1) + ms_e**2 / ((n_r - 1) * (n_i - 1))
    )
    assert est.df == pytest.approx(df)
    assert est.components.rater == pytest.approx((ms_a - ms_e) / n_i)
    assert est.components.image == pytest.approx((ms_b - ms_e) / n_r)
    assert est.components.residual == pytest.approx(ms_e)


def test_crossed_mean_solves_the_gao_owen_moment_equations_on_unbalanced_data():
    rng = np.random.default_rng(8)
    rows = [(r, i) for r in range(5) for i in range(9) if rng.random() < 0.7]
    rater, image = (np.array(c) for c in zip(*rows, strict=True))
    y = rng.normal(size=5)[rater] + rng.normal(size=9)[image] + rng.normal(size=rater.size)
    n = y.size
    u_a = sum(np.sum((y[rater == r] - y[rater == r].mean()) ** 2) for r in set(rater))
    u_b = sum(np.sum((y[image == i] - y[image == i].mean()) ** 2) for i in set(image))
    u_e = np.sum((y - y.mean()) ** 2)
    nr2 = sum(np.sum(rater == r) ** 2 for r in set(rater))
    ni2 = sum(np.sum(image == i) ** 2 for i in set(image))
    a, b, e = np.linalg.solve(
        [[0, n - 5, n - 5], [n - 9, 0, n - 9], [n - nr2 / n, n - ni2 / n, n - 1]], [u_a, u_b, u_e]
    )
    est = crossed_mean(y, rater, image)
    expected = max(a, 0) * nr2 / n**2 + max(b, 0) * ni2 / n**2 + max(e, 0) / n
    assert est.se**2 == pytest.approx(expected)
    assert est.p_value is None and est.null is None


# --------------------------------------------------------------------------- edge cases


def test_ids_may_be_any_integers():
    score, _, truth, rater, image = _random_study(9)
    a = reader_study_auc(score, truth, rater, image)
    b = reader_study_auc(score, truth, rater * -1000 + 7, image * 3 - 50)
    assert (a.estimate, a.se, a.df) == pytest.approx((b.estimate, b.se, b.df))


def test_repeated_judgments_of_an_image_are_averaged_first():
    score, says, truth, rater, image = _random_study(10)
    doubled = [np.r_[x, x] for x in (says, truth, rater, image)]
    a = reader_study_accuracy(says, truth, rater, image)
    b = reader_study_accuracy(*doubled)
    assert (a.estimate, a.se) == pytest.approx((b.estimate, b.se))


def test_raters_without_two_images_of_each_kind_are_left_out():
    _, says, truth, rater, image = _random_study(12)
    # Rater 999 judged only two images: no balanced accuracy, no jackknife.
    extra = [np.r_[x, x[:2]] for x in (says, truth)] + [np.r_[rater, 999, 999], np.r_[image, image[:2]]]
    assert reader_study_accuracy(*extra) == reader_study_accuracy(says, truth, rater, image)


def test_perfect_raters_give_a_zero_width_interval():
    rater, image = (a.ravel() for a in np.indices((3, 8)))
    truth = image % 2 == 0
    ba = reader_study_accuracy(truth, truth, rater, image)
    assert (ba.estimate, ba.se, ba.ci_low, ba.ci_high, ba.p_value) == (1.0, 0.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rater": [1, 2, 3]}, "rater has 3 entries"),
        ({"is_synthetic": [1, 1, 1, 1, 1, 1, 1, 1]}, "every image synthetic"),
        ({"is_synthetic": [0] * 8}, "every image real"),
        ({"rater": [1] * 8}, "at least 2 raters"),
        ({"says_synthetic": [0, 1, 2, 0, 1, 0, 1, 0]}, "0/1 or boolean, got 2"),
        (
            {"image": [1, 1, 2, 2, 1, 1, 2, 2], "is_synthetic": [1, 0, 1, 0, 1, 0, 1, 0]},
            "both synthetic and real",
        ),
        ({"rater": [1.5] * 8}, "integer ids"),
        ({"confidence": 1.0}, "confidence"),
        ({"method": "wald"}, "method must be"),
    ],
)
def test_bad_input_raises_a_value_error_naming_it(kwargs, message):
    args = {
        "says_synthetic": [1, 0, 1, 0, 1, 1, 0, 0],
        "is_synthetic": [1, 1, 0, 0, 1, 1, 0, 0],
        "rater": [1, 1, 1, 1, 2, 2, 2, 2],
        "image": [1, 2, 3, 4, 1, 2, 3, 4],
    } | kwargs
    with pytest.raises(ValueError, match=message):
        reader_study_accuracy(**args)


def test_crossed_mean_rejects_designs_that_do_not_identify_the_components():
    with pytest.raises(ValueError, match="single judgment"):
        crossed_mean([1.0, 0.0, 1.0], [1, 2, 3], [1, 1, 2])
    with pytest.raises(ValueError, match="at least 2 images"):
        crossed_mean([1.0, 0.0], [1, 2], [5, 5])
    with pytest.raises(ValueError, match="non-finite"):
        crossed_mean([1.0, np.nan, 1.0, 0.0], [1, 1, 2, 2], [1, 2, 1, 2])


def test_variance_components_reject_an_empty_design():
    with pytest.raises(ValueError, match="n_raters"):
        VarianceComponents(1.0, 1.0, 1.0).variance(0, 10)
