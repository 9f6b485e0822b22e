"""turingtest.stats against published worked examples, the libraries, and properties.

Every reference number is given with its source next to it. Where a number could not be
checked against a publication the test compares with the library that computes it and
says so.
"""

from __future__ import annotations

import doctest
import math

import krippendorff
import numpy as np
import pytest
import statsmodels.stats.inter_rater as ir
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from turingtest import stats
from turingtest.stats import agreement, arrays, bootstrap, detection, proportions

nan = np.nan
TOPIC_MODULES = (agreement, arrays, bootstrap, detection, proportions)

# Every public name of the single-file stats.py before it became a package (issue 10):
# ``turingtest.stats.<name>`` is the one import path and must keep working.
PUBLIC_NAMES_BEFORE_THE_SPLIT = {
    "AucResult", "BootstrapResult", "DPrime", "Interval", "McNemarResult", "ProportionComparison",
    "ProportionResult", "StratifiedBootstrap", "binomial_test", "bootstrap_two_way",
    "bootstrap_two_way_mean", "bootstrap_two_way_mean_stratified", "cohens_kappa",
    "compare_proportions", "dprime", "factorize", "fleiss_kappa", "hype_error_rate",
    "krippendorff_alpha", "krippendorff_alpha_counts", "mcnemar_test", "pairwise_cohens_kappa",
    "proportion", "rating_auc", "rating_auc_ci", "wilson_interval",
}  # fmt: skip


def test_every_docstring_example_runs():
    """The doctests are part of the normal run (pytest's testpaths is tests/)."""
    attempted = 0
    for module in TOPIC_MODULES:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 40  # as many as the single stats.py ran


def test_the_package_still_offers_every_public_name_of_the_old_module():
    missing = {name for name in PUBLIC_NAMES_BEFORE_THE_SPLIT if not hasattr(stats, name)}
    assert missing == set()
    assert set(stats.__all__) >= PUBLIC_NAMES_BEFORE_THE_SPLIT - {"StratifiedBootstrap", "factorize"}
    # Each name is the object defined in a topic module, not a second copy left in __init__.
    homes = {m.__name__ for m in TOPIC_MODULES}
    for name in PUBLIC_NAMES_BEFORE_THE_SPLIT:
        assert getattr(stats, name).__module__ in homes, name


# --------------------------------------------------------------------------- Wilson / exact


# Newcombe RG (1998) Stat Med 17:857–872, Table II, examples (a)–(d):
# method 3 (Wilson score, no continuity correction) and method 5 (Clopper–Pearson exact).
NEWCOMBE_1998 = [
    # x, n, wilson (low, high), exact (low, high)
    (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
    (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
    (0, 20, (0.0000, 0.1611), (0.0000, 0.1684)),
    (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
]


@pytest.mark.parametrize(("x", "n", "wilson", "exact"), NEWCOMBE_1998)
def test_wilson_and_exact_intervals_reproduce_newcombe_1998_table_ii(x, n, wilson, exact):
    assert stats.wilson_interval(x, n) == pytest.approx(wilson, abs=5e-5)
    assert stats.wilson_interval(x, n, method="exact") == pytest.approx(exact, abs=5e-5)


def test_the_exact_interval_matches_r_binom_test_for_mendels_peas():
    # R documentation, ?binom.test: binom.test(682, 925, p = 0.75)
    #   p-value = 0.3825; 95 percent confidence interval: 0.7076683 0.7654066
    assert stats.wilson_interval(682, 925, method="exact") == pytest.approx((0.7076683, 0.7654066), abs=5e-8)
    assert stats.binomial_test(682, 925, p=0.75) == pytest.approx(0.3825, abs=5e-5)


def test_wilson_interval_returns_a_plain_tuple_of_floats():
    low, high = stats.wilson_interval(3, 10)
    assert type(low) is float and type(high) is float


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 0), "n must be at least 1"),
        ((5, 4), "cannot exceed n"),
        ((-1, 4), "successes must be a non-negative integer"),
        ((1.5, 4), "successes must be a non-negative integer"),
    ],
)
def test_wilson_interval_rejects_impossible_counts(args, message):
    with pytest.raises(ValueError, match=message):
        stats.wilson_interval(*args)


def test_wilson_interval_rejects_an_unknown_method_and_a_bad_confidence():
    with pytest.raises(ValueError, match="method"):
        stats.wilson_interval(1, 2, method="wald")
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 2, confidence=1.5)


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=60, deadline=None)
def test_wilson_interval_contains_the_estimate_and_mirrors_under_complement(xn):
    x, n = xn
    low, high = stats.wilson_interval(x, n)
    assert 0.0 <= low <= x / n <= high <= 1.0
    low_c, high_c = stats.wilson_interval(n - x, n)
    assert low == pytest.approx(1 - high_c, abs=1e-12)
    assert high == pytest.approx(1 - low_c, abs=1e-12)


@given(
    st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
@settings(max_examples=60, deadline=None)
def test_both_intervals_equal_statsmodels_proportion_confint(xn, confidence):
    x, n = xn
    for method, sm in (("wilson", "wilson"), ("exact", "beta")):
        low, high = proportion_confint(x, n, alpha=1 - confidence, method=sm)
        low = 0.0 if x == 0 else low
        high = 1.0 if x == n else high
        assert stats.wilson_interval(x, n, confidence, method=method) == pytest.approx((low, high), abs=1e-10)


def test_all_correct_and_all_wrong_give_one_sided_intervals():
    assert stats.wilson_interval(20, 20)[1] == 1.0
    assert stats.wilson_interval(0, 20)[0] == 0.0
    assert stats.wilson_interval(20, 20, method="exact") == pytest.approx(
        (0.8316, 1.0), abs=1e-4
    )  # 1 − (0.025)^(1/20)


# --------------------------------------------------------------------------- binomial test


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=50, deadline=None)
def test_binomial_test_is_symmetric_at_one_half_and_agrees_with_scipy(xn):
    x, n = xn
    p = stats.binomial_test(x, n)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(stats.binomial_test(n - x, n))
    assert p == pytest.approx(sps.binomtest(x, n).pvalue)


@pytest.mark.parametrize(("x", "n"), [(499_000, 1_000_000), (50_210, 100_000), (2_460, 5_000), (7, 20_001)])
def test_binomial_test_at_one_half_agrees_with_scipy_for_large_samples(x, n):
    assert stats.binomial_test(x, n) == pytest.approx(sps.binomtest(x, n).pvalue, rel=1e-9, abs=1e-300)


def test_binomial_test_rejects_an_empty_sample_and_a_bad_null():
    with pytest.raises(ValueError, match="n must be at least 1"):
        stats.binomial_test(0, 0)
    with pytest.raises(ValueError, match="p must be in"):
        stats.binomial_test(1, 2, p=1.2)


# --------------------------------------------------------------------------- comparing proportions


# Newcombe RG (1998b) Stat Med 17:873–890, Table II, method 10 (hybrid score, no CC).
NEWCOMBE_1998B = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "ci"), NEWCOMBE_1998B)
def test_difference_ci_reproduces_newcombe_1998b_method_10(counts, ci):
    res = stats.compare_proportions(*counts)
    assert (res.ci_low, res.ci_high) == pytest.approx(ci, abs=5e-5)
    sm = confint_proportions_2indep(*counts, method="newcomb", compare="diff")
    assert (res.ci_low, res.ci_high) == pytest.approx(sm, abs=1e-9)


def test_fisher_exact_reproduces_the_tea_tasting_example():
    # Agresti A (2002) Categorical Data Analysis, 2nd ed., §3.5.2 (Fisher's tea tasting):
    # table [[3, 1], [1, 3]], one-sided P = 0.243, two-sided P = 0.486.
    res = stats.compare_proportions(3, 4, 1, 4)
    assert res.fisher_p == pytest.approx(0.486, abs=5e-4)
    assert res.chi2 == pytest.approx(2.0)  # Pearson, no correction: every E = 2, Σ(O − E)²/E = 4·½
    assert res.chi2_p == pytest.approx(sps.chi2.sf(2.0, 1))


def test_chi_square_is_undefined_when_a_margin_is_empty_but_fisher_is_not():
    res = stats.compare_proportions(0, 10, 0, 12)
    assert math.isnan(res.chi2_p)
    assert res.fisher_p == 1.0


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_uses_only_the_discordant_pairs_as_in_agresti_table_10_1():
    # Agresti (2002) Table 10.1, Presidential approval: [[794, 150], [86, 570]];
    # the (uncorrected) McNemar statistic is z² = (86 − 150)²/(86 + 150) = 17.36.
    assert (86 - 150) ** 2 / (86 + 150) == pytest.approx(17.36, abs=5e-3)
    res = stats.mcnemar_test(150, 86)
    assert res.p_value == pytest.approx(mcnemar([[794, 150], [86, 570]], exact=True).pvalue, rel=1e-12)
    assert res.p_value < 1e-4


def test_mcnemar_without_discordant_pairs_has_p_value_one():
    assert stats.mcnemar_test(0, 0).p_value == 1.0
    assert stats.mcnemar_test(5, 5).p_value == 1.0


# --------------------------------------------------------------------------- d′


# Schneider W, "Short notes on theory of signal detection" (course handout), d′ table:
# H = .70, F = .10 → 1.806; H = .50, F = .40 → 0.253; H = .85, F = .05 → 2.681.
@pytest.mark.parametrize(
    ("hits", "misses", "fa", "cr", "expected"),
    [(70, 30, 10, 90, 1.806), (50, 50, 40, 60, 0.253), (85, 15, 5, 95, 2.681)],
)
def test_plain_dprime_reproduces_the_textbook_table(hits, misses, fa, cr, expected):
    assert stats.dprime(hits, misses, fa, cr, correction=None).d_prime == pytest.approx(expected, abs=1e-3)


def test_loglinear_dprime_adds_one_half_to_every_cell_as_hautus_1995():
    # Hautus (1995): H = (hits + 0.5)/(hits + misses + 1), F likewise; a perfect observer
    # with 10 signal and 10 noise trials gets H = 10.5/11, F = 0.5/11.
    d, c = stats.dprime(10, 0, 0, 10)
    assert d == pytest.approx(2 * sps.norm.ppf(10.5 / 11))
    assert c == pytest.approx(0.0, abs=1e-12)
    d, c = stats.dprime(7, 3, 2, 8)
    zh, zf = sps.norm.ppf(7.5 / 11), sps.norm.ppf(2.5 / 11)
    assert (d, c) == pytest.approx((zh - zf, -(zh + zf) / 2))


def test_plain_dprime_refuses_perfect_scores_and_points_to_the_correction():
    with pytest.raises(ValueError, match="hit rate is 1.*loglinear"):
        stats.dprime(10, 0, 2, 8, correction=None)
    with pytest.raises(ValueError, match="false-alarm rate is 0"):
        stats.dprime(5, 5, 0, 10, correction=None)


def test_dprime_needs_signal_and_noise_trials():
    with pytest.raises(ValueError, match="signal trial"):
        stats.dprime(0, 0, 3, 4)
    with pytest.raises(ValueError, match="noise trial"):
        stats.dprime(3, 4, 0, 0)
    with pytest.raises(ValueError, match="correction"):
        stats.dprime(3, 4, 1, 1, correction="hautus")


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
@settings(max_examples=80, deadline=None)
def test_swapping_signal_and_noise_keeps_dprime_and_flips_the_criterion(h, m, fa, cr):
    if h + m == 0 or fa + cr == 0:
        return
    d, c = stats.dprime(h, m, fa, cr)
    d2, c2 = stats.dprime(cr, fa, m, h)
    assert d2 == pytest.approx(d, abs=1e-9)
    assert c2 == pytest.approx(-c, abs=1e-9)


def test_dprime_is_zero_when_hits_and_false_alarms_are_equally_likely():
    assert stats.dprime(6, 4, 6, 4).d_prime == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- AUC


HM_NORMAL = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])  # Hanley & McNeil (1982) Table 1
HM_ABNORMAL = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])


def _brute_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return float(psi.mean())


def _brute_delong_se(pos: np.ndarray, neg: np.ndarray) -> float:
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


def test_rating_auc_reproduces_hanley_mcneil_1982():
    # Hanley JA, McNeil BJ (1982) Radiology 143:29–36, Table 1: 58 normal and 51 abnormal
    # CT images rated on 5 levels; area A = 0.893 (their SE 0.032 is from their own
    # exponential approximation; DeLong's nonparametric SE is a different estimator).
    assert stats.rating_auc(HM_ABNORMAL, HM_NORMAL) == pytest.approx(0.893, abs=5e-4)
    res = stats.rating_auc_ci(HM_ABNORMAL, HM_NORMAL)
    assert res.se == pytest.approx(_brute_delong_se(HM_ABNORMAL, HM_NORMAL), rel=1e-12)
    assert res.se == pytest.approx(0.032, abs=0.002)
    z = sps.norm.ppf(0.975)
    assert (res.ci_low, res.ci_high) == pytest.approx((res.auc - z * res.se, res.auc + z * res.se))


ratings = st.lists(st.integers(1, 6), min_size=2, max_size=40).map(np.array)


@given(ratings, ratings)
@settings(max_examples=80, deadline=None)
def test_auc_is_the_pairwise_probability_and_reverses_when_the_groups_swap(pos, neg):
    auc = stats.rating_auc(pos, neg)
    assert auc == pytest.approx(_brute_auc(pos, neg), abs=1e-12)
    assert stats.rating_auc(neg, pos) == pytest.approx(1.0 - auc, abs=1e-12)
    assert 0.0 <= auc <= 1.0
    # any strictly increasing recoding of the rating scale leaves it unchanged
    assert stats.rating_auc(3 * pos + 7, 3 * neg + 7) == pytest.approx(auc, abs=1e-12)
    res = stats.rating_auc_ci(pos, neg)
    assert res.se == pytest.approx(_brute_delong_se(pos, neg), abs=1e-12)
    assert 0.0 <= res.ci_low <= res.auc <= res.ci_high <= 1.0


@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=30), ratings)
@settings(max_examples=40, deadline=None)
def test_continuous_ratings_take_the_sorting_path_with_the_same_definition(pos, neg):
    pos = np.array(pos) + 0.25  # not integers: the general placement-value path
    res = stats.rating_auc_ci(pos, neg)
    assert res.auc == pytest.approx(_brute_auc(pos, neg), abs=1e-12)
    assert res.se == pytest.approx(_brute_delong_se(pos, neg), abs=1e-12)


def test_auc_edge_cases():
    assert stats.rating_auc([5, 6], [1, 2]) == 1.0
    assert stats.rating_auc([1, 2], [5, 6]) == 0.0
    assert stats.rating_auc([3, 3], [3, 3]) == 0.5
    with pytest.raises(ValueError, match="negative_ratings is empty"):
        stats.rating_auc([1, 2], [])
    with pytest.raises(ValueError, match="at least 2 positives"):
        stats.rating_auc_ci([1], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        stats.rating_auc([1, nan], [1, 2])


# --------------------------------------------------------------------------- Cohen's κ


ANXIETY = np.array(
    [3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3]
    + [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4]
    + [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]
).reshape(3, 20)  # R package irr, data(anxiety): 20 subjects × 3 raters (one row per rater here)


@pytest.mark.parametrize(
    ("weights", "expected"),
    # R: irr::kappa2(anxiety[, 2:3], weight) (Gamer et al., irr 0.84), as quoted in
    # statsmodels' test_inter_rater.py: unweighted, "equal" (linear), "squared" (quadratic).
    [(None, -0.006289308), ("linear", 0.1459075), ("quadratic", 0.2520325)],
)
def test_cohens_kappa_matches_r_irr_kappa2_on_the_anxiety_data(weights, expected):
    assert stats.cohens_kappa(ANXIETY[1], ANXIETY[2], weights=weights) == pytest.approx(expected, abs=5e-8)


def test_cohens_kappa_matches_the_sas_proc_freq_example():
    # SAS/STAT PROC FREQ simple kappa example as quoted in statsmodels' tests:
    # table [[0, 4, 1], [0, 8, 0], [0, 1, 5]] → κ = 0.4842.
    table = np.array([[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    a = np.repeat(np.repeat(np.arange(3), 3), table.ravel())
    b = np.repeat(np.tile(np.arange(3), 3), table.ravel())
    assert stats.cohens_kappa(a, b) == pytest.approx(0.4842, abs=5e-5)


labels = st.lists(st.integers(0, 3), min_size=2, max_size=30)


@given(
    labels.flatmap(
        lambda a: st.tuples(st.just(a), st.lists(st.integers(0, 3), min_size=len(a), max_size=len(a)))
    )
)
@settings(max_examples=80, deadline=None)
def test_cohens_kappa_is_symmetric_bounded_and_blind_to_label_names(ab):
    a, b = np.array(ab[0]), np.array(ab[1])
    kappa = stats.cohens_kappa(a, b)
    if math.isnan(kappa):
        assert np.unique(np.concatenate([a, b])).size == 1 or np.isclose(
            (np.bincount(a, minlength=4) / a.size) @ (np.bincount(b, minlength=4) / b.size), 1.0
        )
        return
    assert -1.0 - 1e-12 <= kappa <= 1.0 + 1e-12
    assert stats.cohens_kappa(b, a) == pytest.approx(kappa, abs=1e-12)
    names = np.array(["vit", "mel", "bcc", "nev"])  # a bijection to strings in another order
    assert stats.cohens_kappa(names[a], names[b]) == pytest.approx(kappa, abs=1e-12)
    for w in ("linear", "quadratic"):
        kw = stats.cohens_kappa(a, b, weights=w)
        # an order-preserving renaming keeps weighted κ
        assert stats.cohens_kappa(10 * a + 5, 10 * b + 5, weights=w) == pytest.approx(kw, abs=1e-12)
        assert stats.cohens_kappa(b, a, weights=w) == pytest.approx(kw, abs=1e-12)


@given(st.lists(st.integers(0, 4), min_size=2, max_size=30))
@settings(max_examples=40, deadline=None)
def test_perfect_agreement_gives_kappa_one_unless_only_one_category_was_used(a):
    a = np.array(a)
    for w in (None, "linear", "quadratic"):
        kappa = stats.cohens_kappa(a, a, weights=w)
        if np.unique(a).size == 1:
            assert math.isnan(kappa)
        else:
            assert kappa == pytest.approx(1.0)


def test_cohens_kappa_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="same length"):
        stats.cohens_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="a is empty"):
        stats.cohens_kappa([], [])
    with pytest.raises(ValueError, match="weights"):
        stats.cohens_kappa([1, 2], [1, 2], weights="cubic")


@pytest.mark.parametrize("stacked_rows", [4000, 0])  # one Gram matrix, or one product per block
def test_pairwise_kappa_matrix_equals_cohens_kappa_pair_by_pair_with_missing_ratings(
    monkeypatch, stacked_rows
):
    monkeypatch.setattr(agreement, "_STACKED_GRAM_ROWS", stacked_rows)
    rng = np.random.default_rng(3)
    ratings = rng.integers(0, 3, size=(6, 40)).astype(float)
    ratings[rng.random(ratings.shape) < 0.3] = nan
    ratings[5] = nan
    ratings[5, :3] = 1.0  # a rater with one category on few units: κ undefined with anyone
    kappa, n_common = stats.pairwise_cohens_kappa(ratings)
    for r in range(6):
        for s in range(6):
            both = ~np.isnan(ratings[r]) & ~np.isnan(ratings[s])
            assert n_common[r, s] == both.sum()
            expected = stats.cohens_kappa(ratings[r, both], ratings[s, both]) if both.any() else nan
            if math.isnan(expected):
                assert math.isnan(kappa[r, s])
            else:
                assert kappa[r, s] == pytest.approx(expected, abs=1e-10)


def test_pairwise_kappa_needs_two_raters():
    with pytest.raises(ValueError, match="at least 2 raters"):
        stats.pairwise_cohens_kappa(np.array([[0, 1, 0]]))


# --------------------------------------------------------------------------- Fleiss' κ


# Fleiss JL (1971) Psychol Bull 76:378–382: 30 patients, 6 psychiatrists, 5 diagnoses
# (raw data as in R irr's data(diagnoses) and statsmodels' tests); Fleiss reports κ = .430,
# R irr::kappam.fleiss(diagnoses) gives 0.4302445.
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)  # fmt: skip


def _count_table(raw: np.ndarray, k: int) -> np.ndarray:
    return np.stack([(raw == c).sum(axis=1) for c in range(1, k + 1)], axis=1)


def test_fleiss_kappa_reproduces_fleiss_1971():
    kappa = stats.fleiss_kappa(_count_table(FLEISS_1971, 5))
    assert kappa == pytest.approx(0.430, abs=5e-4)
    assert kappa == pytest.approx(0.4302445, abs=5e-8)


def test_fleiss_kappa_reproduces_the_14_rater_example():
    # 10 subjects × 5 categories, 14 raters each (the example of the Wikipedia article on
    # Fleiss' kappa, also in statsmodels' tests): κ = 0.210.
    table = np.array(
        [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
         [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    )  # fmt: skip
    assert stats.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


count_tables = st.integers(2, 6).flatmap(
    lambda m: st.lists(
        st.lists(st.integers(0, m), min_size=3, max_size=3).filter(lambda r, m=m: sum(r) <= m),
        min_size=2,
        max_size=12,
    ).map(lambda rows, m=m: np.array([[*r, m - sum(r)] for r in rows]))
)


@given(count_tables, st.permutations(range(4)))
@settings(max_examples=80, deadline=None)
def test_fleiss_kappa_matches_statsmodels_and_ignores_category_order(table, perm):
    kappa = stats.fleiss_kappa(table)
    if math.isnan(kappa):
        assert np.count_nonzero(table.sum(axis=0)) == 1
        return
    assert kappa <= 1.0 + 1e-12
    assert kappa == pytest.approx(ir.fleiss_kappa(table), abs=1e-12)
    assert stats.fleiss_kappa(table[:, list(perm)]) == pytest.approx(kappa, abs=1e-12)


def test_fleiss_kappa_is_one_for_perfect_agreement():
    assert stats.fleiss_kappa(np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]])) == 1.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (np.zeros((0, 2)), "empty"),
        (np.array([[1, 0], [0, 1]]), "at least 2 ratings"),  # one rater
        (np.array([[2, 0], [1, 2]]), "same number of ratings"),
        (np.array([[2, -1], [1, 0]]), "non-negative"),
        (np.array([1, 2]), "subjects × categories"),
    ],
)
def test_fleiss_kappa_rejects_malformed_tables(table, message):
    with pytest.raises(ValueError, match=message):
        stats.fleiss_kappa(table)


def test_fleiss_kappa_is_undefined_when_everyone_chose_one_category():
    assert math.isnan(stats.fleiss_kappa(np.array([[3, 0], [3, 0]])))


# --------------------------------------------------------------------------- Krippendorff's α


# Krippendorff K (2011) "Computing Krippendorff's Alpha-Reliability", worked example:
# 4 observers × 12 units with missing values; α_nominal = .743, α_ordinal = .815,
# α_interval = .849.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_reproduces_krippendorff_2011(level, expected):
    assert stats.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_alpha_from_counts_equals_alpha_from_the_rating_matrix():
    values = np.arange(1, 6)
    counts = np.stack([(KRIPPENDORFF_2011 == v).sum(axis=0) for v in values], axis=1)
    for level in ("nominal", "ordinal", "interval"):
        assert stats.krippendorff_alpha_counts(counts, level) == pytest.approx(
            stats.krippendorff_alpha(KRIPPENDORFF_2011, level), abs=1e-12
        )


rating_matrices = st.integers(2, 5).flatmap(
    lambda r: st.lists(
        st.lists(st.one_of(st.integers(0, 3), st.just(-1)), min_size=r, max_size=r), min_size=3, max_size=15
    ).map(lambda cols: np.where(np.array(cols).T < 0, nan, np.array(cols).T).astype(float))
)


@given(rating_matrices, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_krippendorff_alpha_matches_the_package_and_ignores_rater_order_and_label_names(data, rnd):
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if not pairable.any():
        with pytest.raises(ValueError, match="no unit"):
            stats.krippendorff_alpha(data)
        return
    alpha = stats.krippendorff_alpha(data)
    if math.isnan(alpha):
        assert np.unique(data[:, pairable][~np.isnan(data[:, pairable])]).size == 1
        return
    assert alpha <= 1.0 + 1e-12
    assert alpha == pytest.approx(krippendorff.alpha(data, level_of_measurement="nominal"), abs=1e-9)
    order = list(range(data.shape[0]))
    rnd.shuffle(order)
    assert stats.krippendorff_alpha(data[order]) == pytest.approx(alpha, abs=1e-12)
    relabel = np.array([7.0, 2.0, 9.0, 4.0])
    renamed = np.where(np.isnan(data), nan, relabel[np.nan_to_num(data).astype(int)])
    assert stats.krippendorff_alpha(renamed) == pytest.approx(alpha, abs=1e-12)


def test_krippendorff_alpha_is_one_for_perfect_agreement_and_rejects_one_rater():
    data = np.array([[1, 2, 3, nan], [1, 2, 3, 3.0], [nan, 2, 3, 3.0]])
    for level in ("nominal", "ordinal", "interval"):
        assert stats.krippendorff_alpha(data, level) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 raters"):
        stats.krippendorff_alpha(data[:1])
    with pytest.raises(ValueError, match="empty"):
        stats.krippendorff_alpha(np.empty((2, 0)))
    with pytest.raises(ValueError, match="level"):
        stats.krippendorff_alpha(data, "ratio")


# --------------------------------------------------------------------------- HYPE∞ and bootstrap


def test_hype_error_rate_all_correct_all_wrong_and_chance():
    truth = np.array([0, 0, 1, 1])
    assert stats.hype_error_rate(truth, truth) == 0.0
    assert stats.hype_error_rate(1 - truth, truth) == 1.0
    assert stats.hype_error_rate(np.ones(4), truth) == 0.5
    with pytest.raises(ValueError, match="differ in shape"):
        stats.hype_error_rate(np.ones(3), truth)
    with pytest.raises(ValueError, match="empty"):
        stats.hype_error_rate(np.array([]), np.array([]))


def _long_study(seed: int = 0, n_raters: int = 7, n_images: int = 11, missing: float = 0.2):
    rng = np.random.default_rng(seed)
    r, i = np.meshgrid(np.arange(n_raters), np.arange(n_images), indexing="ij")
    keep = rng.random(r.shape) >= missing
    r, i = r[keep], i[keep]
    y = (rng.random(r.size) < 0.3 + 0.05 * (r % 3)).astype(float)
    return r, i, y


@pytest.mark.parametrize("missing", [0.0, 0.2])  # fully crossed and incomplete designs
def test_the_vectorized_two_way_bootstrap_equals_the_generic_one_for_the_same_seed(missing):
    r, i, y = _long_study(missing=missing)
    generic = stats.bootstrap_two_way(r, i, lambda w: float(np.sum(w * y) / np.sum(w)), n_boot=300, seed=5)
    fast = stats.bootstrap_two_way_mean(r, i, y, n_boot=300, seed=5, block=64)
    assert fast.estimate == pytest.approx(generic.estimate, abs=1e-12)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((generic.ci_low, generic.ci_high), abs=1e-12)
    assert fast.n_valid == generic.n_valid == 300


def test_the_two_way_bootstrap_is_reproducible_and_seed_dependent():
    r, i, y = _long_study(1)
    a = stats.bootstrap_two_way_mean(r, i, y, n_boot=200, seed=9)
    b = stats.bootstrap_two_way_mean(r, i, y, n_boot=200, seed=9)
    c = stats.bootstrap_two_way_mean(r, i, y, n_boot=200, seed=10)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low <= a.estimate <= a.ci_high


def test_resampling_both_raters_and_images_is_wider_than_ignoring_the_rater_effect():
    # Raters differ a lot (accuracy .2 to .8): a two-way CI must reflect that spread,
    # unlike a naive binomial interval over the pooled judgments.
    rng = np.random.default_rng(2)
    n_r, n_i = 12, 60
    skill = np.linspace(0.2, 0.8, n_r)
    r, i = np.meshgrid(np.arange(n_r), np.arange(n_i), indexing="ij")
    y = (rng.random(r.shape) < skill[:, None]).astype(float).ravel()
    res = stats.bootstrap_two_way_mean(r.ravel(), i.ravel(), y, n_boot=500, seed=0)
    low, high = stats.wilson_interval(int(y.sum()), y.size)
    assert (res.ci_high - res.ci_low) > 1.5 * (high - low)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_the_sparse_path_gives_the_same_interval_as_the_dense_path(monkeypatch, missing):
    r, i, y = _long_study(4, n_raters=9, n_images=13, missing=missing)
    dense = stats.bootstrap_two_way_mean(r, i, y, n_boot=150, seed=3)
    monkeypatch.setattr(bootstrap, "_DENSE_CELLS", 0)
    sparse = stats.bootstrap_two_way_mean(r, i, y, n_boot=150, seed=3)
    assert (sparse.ci_low, sparse.ci_high) == pytest.approx((dense.ci_low, dense.ci_high), abs=1e-12)


def test_a_single_stratum_gives_exactly_the_unstratified_bootstrap():
    r, i, y = _long_study(6)
    plain = stats.bootstrap_two_way_mean(r, i, y, n_boot=200, seed=4)
    strat = stats.bootstrap_two_way_mean_stratified(r, i, y, np.zeros(r.size), n_boot=200, seed=4)
    assert (strat.overall.ci_low, strat.overall.ci_high) == pytest.approx(
        (plain.ci_low, plain.ci_high), abs=1e-12
    )
    assert strat.strata[0.0].estimate == pytest.approx(plain.estimate)


@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_the_stratified_bootstrap_equals_a_brute_force_loop_over_the_same_draws(missing):
    r, i, y = _long_study(8, n_raters=6, n_images=14, missing=missing)
    kind = i % 3 == 0  # the stratum is an image property
    res = stats.bootstrap_two_way_mean_stratified(r, i, y, kind, n_boot=150, seed=12)
    _, icodes = np.unique(i, return_inverse=True)
    image_stratum = np.zeros(icodes.max() + 1, dtype=np.int64)
    image_stratum[icodes] = kind.astype(int)
    rater_w, image_w = bootstrap._stratified_draws(6, image_stratum, 150, 12)
    reps = {"all": [], False: [], True: []}
    for b in range(150):
        w = rater_w[b, r] * image_w[b, icodes]
        reps["all"].append(np.sum(w * y) / np.sum(w))
        for k in (False, True):
            sel = kind == k
            reps[k].append(np.sum(w[sel] * y[sel]) / np.sum(w[sel]))
    for key, result in (("all", res.overall), (False, res.strata[False]), (True, res.strata[True])):
        expected = np.quantile(reps[key], [0.025, 0.975])
        assert (result.ci_low, result.ci_high) == pytest.approx(tuple(expected), abs=1e-12)
    # every replicate keeps the design's numbers of images of each kind
    assert np.all(image_w[:, image_stratum == 1].sum(axis=1) == (image_stratum == 1).sum())


def test_the_stratified_bootstrap_rejects_a_stratum_that_varies_within_an_image():
    with pytest.raises(ValueError, match="same for every judgment of an image"):
        stats.bootstrap_two_way_mean_stratified([0, 1], [0, 0], [1.0, 0.0], [True, False])


def test_the_bootstrap_rejects_mismatched_arrays_and_reports_undefined_replicates():
    with pytest.raises(ValueError, match="differ in length"):
        stats.bootstrap_two_way_mean([0, 1], [0, 1], [1.0])
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_two_way([0, 1], [0, 1], lambda w: 0.0, n_boot=0)
    with pytest.raises(ValueError, match="rater is empty"):
        stats.bootstrap_two_way([], [], lambda w: 0.0)
    res = stats.bootstrap_two_way([0, 1], [0, 1], lambda w: float("nan"), n_boot=20)
    assert res.n_valid == 0 and math.isnan(res.ci_low)


@pytest.mark.parametrize(
    "ids",
    [
        np.array([5, 3, 5, 900, 3]),
        np.array([-2, 7, -2]),
        np.array([2.0, 1.0, 2.0]),
        np.array(["b", "a", "b"]),
    ],
)
def test_factorize_matches_numpy_unique(ids):
    uniques, codes = stats.factorize(ids)
    expected_uniques, expected_codes = np.unique(ids, return_inverse=True)
    assert list(uniques) == list(expected_uniques)
    assert list(codes) == list(expected_codes)


def test_proportion_bundles_the_interval_and_the_test():
    res = stats.proportion(17, 24)
    assert (res.ci_low, res.ci_high) == stats.wilson_interval(17, 24)
    assert res.p_value == stats.binomial_test(17, 24)
    assert res.proportion == 17 / 24
