"""Statistics for reader studies: pure functions on numpy arrays.

Nothing here touches the database: ``turingtest.reports`` reads a study into arrays
and calls these functions. Where SciPy, statsmodels or krippendorff already compute a
statistic we wrap them (with input checks and documented conventions) instead of
re-deriving it; the few formulas written out here (log-linear d′, DeLong's variance,
the vectorized pairwise κ matrix and the two-way bootstrap) are checked in
``tests/test_stats.py`` against published worked examples and the libraries.

Conventions shared by every function:

- The functions named in the statistics issue return exactly a plain ``float`` or a
  small ``NamedTuple`` (which is a tuple); richer frozen dataclasses are built on top.
- Malformed input (empty arrays, negative counts, mismatched shapes, a single rater
  where agreement needs two) raises ``ValueError`` naming the bad value.
- A statistic that is mathematically undefined *for the data* although the input is
  well formed (κ when both raters used a single category, α when every rating is the
  same value) is returned as ``nan``: the report turns ``nan`` into ``None`` plus a
  warning rather than crashing on a small pilot study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import krippendorff
import numpy as np
from scipy import sparse, special
from scipy import stats as sps
from statsmodels.stats import inter_rater

from turingtest.stats.reader_study import (  # noqa: E402, F401  (reader-study estimators, issue 11)
    CrossedEstimate,
    ReaderStudyAccuracy,
    VarianceComponents,
    crossed_mean,
    reader_study_accuracy,
    reader_study_auc,
)

__all__ = [
    "AucResult",
    "CrossedEstimate",
    "ReaderStudyAccuracy",
    "VarianceComponents",
    "crossed_mean",
    "reader_study_accuracy",
    "reader_study_auc",
    "BootstrapResult",
    "DPrime",
    "Interval",
    "McNemarResult",
    "ProportionComparison",
    "ProportionResult",
    "binomial_test",
    "bootstrap_two_way",
    "bootstrap_two_way_mean",
    "bootstrap_two_way_mean_stratified",
    "cohens_kappa",
    "compare_proportions",
    "dprime",
    "fleiss_kappa",
    "hype_error_rate",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "mcnemar_test",
    "pairwise_cohens_kappa",
    "proportion",
    "rating_auc",
    "rating_auc_ci",
    "wilson_interval",
]


# --------------------------------------------------------------------------- helpers


def _count(name: str, value: object) -> int:
    """A non-negative integer count, accepting numpy integers and integral floats."""
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}") from None
    if not math.isfinite(as_float) or as_float < 0 or as_float != int(as_float):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(as_float)


def _confidence(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _as_1d(name: str, values: object, *, allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


# --------------------------------------------------------------------------- proportions


class Interval(NamedTuple):
    low: float
    high: float


def wilson_interval(
    successes: int,
    n: int,
    confidence: float = 0.95,
    method: Literal["wilson", "exact"] = "wilson",
) -> Interval:
    """Confidence interval for a binomial proportion (Wilson score or Clopper–Pearson).

    Wilson (score) interval, with ``p̂ = x/n`` and ``z = Φ⁻¹(1 − α/2)``::

        (p̂ + z²/2n ± z·sqrt(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)

    ``method="exact"`` gives the Clopper–Pearson interval from beta quantiles,
    ``[B(α/2; x, n − x + 1), B(1 − α/2; x + 1, n − x)]``, conservative by construction.

    Parameters
    ----------
    successes : int
        Number of successes ``x``, ``0 <= x <= n``.
    n : int
        Number of trials, ``n >= 1``.
    confidence : float
        Two-sided coverage, in (0, 1).
    method : {"wilson", "exact"}

    Returns
    -------
    Interval
        ``(low, high)`` as plain floats inside [0, 1].

    Notes
    -----
    Wilson is the default because it keeps close to nominal coverage for small ``n``
    and proportions near 0 or 1 (Newcombe 1998, method 3), where the Wald interval
    collapses to zero width. ``n = 0`` raises ``ValueError``: there is no interval
    without data. Equal to ``statsmodels.stats.proportion.proportion_confint`` with
    ``method="wilson"`` / ``"beta"`` (tested); evaluated directly because it is cheap.

    References
    ----------
    Wilson EB (1927). J Am Stat Assoc 22:209–212. doi:10.1080/01621459.1927.10502953
    Clopper CJ, Pearson ES (1934). Biometrika 26:404–413. doi:10.1093/biomet/26.4.404
    Newcombe RG (1998). Stat Med 17:857–872.
    doi:10.1002/(SICI)1097-0258(19980430)17:8<857::AID-SIM777>3.0.CO;2-E

    Examples
    --------
    Newcombe (1998), Table II, example (a), 81/263:

    >>> [round(v, 4) for v in wilson_interval(81, 263)]
    [0.2553, 0.3662]
    >>> [round(v, 4) for v in wilson_interval(81, 263, method="exact")]
    [0.2527, 0.3676]
    """
    x, n = _count("successes", successes), _count("n", n)
    if n == 0:
        raise ValueError("n must be at least 1 for a confidence interval, got 0")
    if x > n:
        raise ValueError(f"successes ({x}) cannot exceed n ({n})")
    confidence = _confidence(confidence)
    alpha = 1.0 - confidence
    if method == "wilson":
        # The closed form above, evaluated directly: the report calls this thousands of
        # times, and statsmodels' proportion_confint (checked equal in the tests) costs
        # ~100× more per call in array handling.
        z = float(special.ndtri(1.0 - alpha / 2.0))
        phat, z2 = x / n, z * z
        centre = (phat + z2 / (2 * n)) / (1 + z2 / n)
        half = z * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        low, high = centre - half, centre + half
    elif method == "exact":
        low = float(sps.beta.ppf(alpha / 2, x, n - x + 1)) if x > 0 else 0.0
        high = float(sps.beta.ppf(1 - alpha / 2, x + 1, n - x)) if x < n else 1.0
    else:
        raise ValueError(f"method must be 'wilson' or 'exact', got {method!r}")
    low = 0.0 if x == 0 else low
    high = 1.0 if x == n else high
    return Interval(max(0.0, low), min(1.0, high))


def binomial_test(successes: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test of ``H0: π = p``; returns the p-value.

    The two-sided p-value sums the probabilities of every outcome no more likely than
    the observed one, ``Σ_{k: P(k) <= P(x)} C(n,k) pᵏ (1−p)ⁿ⁻ᵏ`` (the "minlike"
    convention of R's ``binom.test`` and ``scipy.stats.binomtest``).

    Parameters
    ----------
    successes : int
        ``0 <= x <= n``.
    n : int
        ``n >= 1``.
    p : float
        Proportion under the null hypothesis, in [0, 1]; 0.5 is chance in a
        real/synthetic Turing test.

    Returns
    -------
    float
        The p-value.

    References
    ----------
    Clopper CJ, Pearson ES (1934). doi:10.1093/biomet/26.4.404 (the exact test).
    Wraps ``scipy.stats.binomtest``.

    Examples
    --------
    Mendel's peas, R's ``binom.test(682, 925, p = 0.75)`` example (p-value = 0.3825):

    >>> round(binomial_test(682, 925, p=0.75), 4)
    0.3825
    """
    x, n = _count("successes", successes), _count("n", n)
    if n == 0:
        raise ValueError("n must be at least 1 for a binomial test, got 0")
    if x > n:
        raise ValueError(f"successes ({x}) cannot exceed n ({n})")
    if not (0.0 <= float(p) <= 1.0):
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if float(p) == 0.5:
        # Symmetric null: outcomes no more likely than x are exactly the two tails beyond
        # min(x, n − x), so the "minlike" p-value is 2·P(K ≤ min(x, n − x)), capped at 1.
        # Same value as binomtest (checked in the tests), without its search: the report
        # runs this test for every rater and group.
        return min(1.0, 2.0 * float(special.bdtr(min(x, n - x), n, 0.5)))
    return float(sps.binomtest(x, n, float(p), alternative="two-sided").pvalue)


@dataclass(frozen=True)
class ProportionResult:
    """A proportion with its Wilson interval and the exact test against ``p0``."""

    successes: int
    n: int
    proportion: float
    ci_low: float
    ci_high: float
    p0: float
    p_value: float


def proportion(successes: int, n: int, *, p0: float = 0.5, confidence: float = 0.95) -> ProportionResult:
    """``x/n`` with its Wilson CI and exact two-sided binomial p-value against ``p0``.

    >>> r = proportion(7, 10)  # p = 2·P(K ≤ 3) = 2·176/1024
    >>> r.proportion, round(r.p_value, 5)
    (0.7, 0.34375)
    """
    low, high = wilson_interval(successes, n, confidence)
    return ProportionResult(
        successes=int(successes),
        n=int(n),
        proportion=int(successes) / int(n),
        ci_low=low,
        ci_high=high,
        p0=float(p0),
        p_value=binomial_test(successes, n, p0),
    )


@dataclass(frozen=True)
class ProportionComparison:
    """Two independent proportions: difference with Newcombe's CI, Fisher and χ² p-values."""

    p1: float
    p2: float
    difference: float
    ci_low: float
    ci_high: float
    fisher_p: float
    odds_ratio: float
    chi2: float
    chi2_p: float


def compare_proportions(
    successes1: int, n1: int, successes2: int, n2: int, *, confidence: float = 0.95
) -> ProportionComparison:
    """Compare ``x1/n1`` with ``x2/n2``: Fisher's exact test, Pearson χ², Newcombe CI.

    The 2×2 table is ``[[x1, n1 − x1], [x2, n2 − x2]]``. Fisher's exact two-sided
    p-value sums the hypergeometric probabilities of tables no more likely than the
    observed one (``scipy.stats.fisher_exact``); Pearson's χ² is without continuity
    correction (``scipy.stats.chi2_contingency(correction=False)``; ``nan`` when a
    margin is zero). The CI of ``p1 − p2`` is Newcombe's hybrid score interval
    (method 10), built from the two Wilson intervals ``(l1, u1)``, ``(l2, u2)``::

        d − sqrt((p1 − l1)² + (u2 − p2)²),  d + sqrt((u1 − p1)² + (p2 − l2)²)

    Use Fisher's p-value for small expected counts (any cell below 5), χ² otherwise.

    References
    ----------
    Fisher RA (1935). J R Stat Soc 98:39–82. doi:10.2307/2342435
    Newcombe RG (1998). Stat Med 17:873–890.
    doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I

    Examples
    --------
    Newcombe (1998b), example (a), 56/70 versus 48/80:

    >>> r = compare_proportions(56, 70, 48, 80)
    >>> round(r.difference, 4), round(r.ci_low, 4), round(r.ci_high, 4)
    (0.2, 0.0524, 0.3339)
    """
    x1, m1 = _count("successes1", successes1), _count("n1", n1)
    x2, m2 = _count("successes2", successes2), _count("n2", n2)
    if m1 == 0 or m2 == 0:
        raise ValueError(f"both groups need at least one trial, got n1={m1}, n2={m2}")
    if x1 > m1 or x2 > m2:
        raise ValueError(f"successes cannot exceed n (got {x1}/{m1} and {x2}/{m2})")
    p1, p2 = x1 / m1, x2 / m2
    l1, u1 = wilson_interval(x1, m1, confidence)
    l2, u2 = wilson_interval(x2, m2, confidence)
    d = p1 - p2
    table = np.array([[x1, m1 - x1], [x2, m2 - x2]])
    odds_ratio, fisher_p = sps.fisher_exact(table, alternative="two-sided")
    if (table.sum(axis=0) == 0).any():
        chi2, chi2_p = math.nan, math.nan
    else:
        res = sps.chi2_contingency(table, correction=False)
        chi2, chi2_p = float(res.statistic), float(res.pvalue)
    return ProportionComparison(
        p1=p1,
        p2=p2,
        difference=d,
        ci_low=max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
        ci_high=min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)),
        fisher_p=float(fisher_p),
        odds_ratio=float(odds_ratio),
        chi2=chi2,
        chi2_p=chi2_p,
    )


class McNemarResult(NamedTuple):
    b: int
    c: int
    p_value: float


def mcnemar_test(b: int, c: int) -> McNemarResult:
    """Exact McNemar test for paired binary outcomes, from the discordant counts.

    With ``b`` pairs (yes, no) and ``c`` pairs (no, yes), under H0 the ``b`` discordant
    pairs among ``b + c`` follow Binomial(b + c, ½); the two-sided p-value is the exact
    binomial test of ``b`` in ``b + c`` trials. Concordant pairs carry no information.
    With ``b + c = 0`` there is no evidence of a difference and the p-value is 1.

    Use it to compare two paired conditions on the same images (for example the same
    raters before and after feedback, or a classifier with and without synthetic data).

    References
    ----------
    McNemar Q (1947). Psychometrika 12:153–157. doi:10.1007/BF02295996
    Fagerland MW, Lydersen S, Laake P (2013). BMC Med Res Methodol 13:91.
    doi:10.1186/1471-2288-13-91

    Examples
    --------
    Agresti (2002), Table 10.1 (approval of the President, two surveys): b=150, c=86.

    >>> r = mcnemar_test(150, 86)
    >>> r.p_value < 1e-4
    True
    """
    b, c = _count("b", b), _count("c", c)
    if b + c == 0:
        return McNemarResult(0, 0, 1.0)
    return McNemarResult(b, c, binomial_test(b, b + c, 0.5))


def hype_error_rate(says_synthetic: np.ndarray, is_synthetic: np.ndarray) -> float:
    """HYPE∞-style error rate: the share of judgments that misclassify the image.

    ``error = (#real called synthetic + #synthetic called real) / #judgments``. 0.5 is
    chance (raters cannot tell the two apart); above 0.5 the synthetic images look
    *more* real than the real ones. Zhou et al. report it with a bootstrap CI; use
    :func:`bootstrap_two_way_mean` on ``says_synthetic != is_synthetic`` for the CI that
    resamples both raters and images.

    References
    ----------
    Zhou S, Gordon ML, Krishna R, Narcomey A, Fei-Fei L, Bernstein MS (2019). HYPE: A
    Benchmark for Human eYe Perceptual Evaluation of Generative Models. NeurIPS.
    arXiv:1904.01121

    >>> hype_error_rate(np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0]))
    0.5
    """
    said = _as_1d("says_synthetic", says_synthetic).astype(bool)
    truth = _as_1d("is_synthetic", is_synthetic).astype(bool)
    if said.shape != truth.shape:
        raise ValueError(f"says_synthetic {said.shape} and is_synthetic {truth.shape} differ in shape")
    return float(np.mean(said != truth))


# --------------------------------------------------------------------------- signal detection


class DPrime(NamedTuple):
    d_prime: float
    criterion_c: float


def dprime(
    hits: int,
    misses: int,
    false_alarms: int,
    correct_rejections: int,
    correction: Literal["loglinear"] | None = "loglinear",
) -> DPrime:
    """Sensitivity d′ and criterion c of the equal-variance Gaussian detection model.

    ``H = hits/(hits + misses)``, ``F = false_alarms/(false_alarms + correct_rejections)``,
    ``d′ = z(H) − z(F)``, ``c = −(z(H) + z(F))/2``, with ``z = Φ⁻¹``.

    In this platform the "signal" is a synthetic image: a hit is a synthetic image
    called synthetic, a false alarm a real image called synthetic. d′ = 0 means the
    raters cannot discriminate; c > 0 means they lean towards answering "real".

    Parameters
    ----------
    hits, misses, false_alarms, correct_rejections : int
        Cell counts, each >= 0; at least one signal and one noise trial.
    correction : {"loglinear", None}
        ``"loglinear"`` (default, Hautus 1995) adds 0.5 to every cell,
        ``H = (hits + 0.5)/(hits + misses + 1)`` and likewise for F, so perfect scores
        give finite values with little bias. ``None`` is the plain formula, which is
        undefined when H or F is 0 or 1 (``ValueError``).

    Returns
    -------
    DPrime
        ``(d_prime, criterion_c)`` as plain floats.

    References
    ----------
    Macmillan NA, Creelman CD (2005). Detection Theory: A User's Guide, 2nd ed. Erlbaum.
    doi:10.4324/9781410611147
    Hautus MJ (1995). Behav Res Methods Instrum Comput 27:46–51. doi:10.3758/BF03203619
    Stanislaw H, Todorov N (1999). Behav Res Methods Instrum Comput 31:137–149.
    doi:10.3758/BF03207704

    Examples
    --------
    H = .70, F = .10 gives d′ = 0.524 + 1.282 = 1.806:

    >>> r = dprime(7, 3, 1, 9, correction=None)
    >>> round(r.d_prime, 3), round(r.criterion_c, 3)
    (1.806, 0.379)
    """
    cells = {
        "hits": _count("hits", hits),
        "misses": _count("misses", misses),
        "false_alarms": _count("false_alarms", false_alarms),
        "correct_rejections": _count("correct_rejections", correct_rejections),
    }
    n_signal = cells["hits"] + cells["misses"]
    n_noise = cells["false_alarms"] + cells["correct_rejections"]
    if n_signal == 0:
        raise ValueError("dprime needs at least one signal trial (hits + misses = 0)")
    if n_noise == 0:
        raise ValueError("dprime needs at least one noise trial (false_alarms + correct_rejections = 0)")
    if correction == "loglinear":
        h = (cells["hits"] + 0.5) / (n_signal + 1)
        f = (cells["false_alarms"] + 0.5) / (n_noise + 1)
    elif correction is None:
        h = cells["hits"] / n_signal
        f = cells["false_alarms"] / n_noise
        for name, rate in (("hit rate", h), ("false-alarm rate", f)):
            if rate in (0.0, 1.0):
                raise ValueError(
                    f"{name} is {rate:g}: d′ is infinite without a correction; use correction='loglinear'"
                )
    else:
        raise ValueError(f"correction must be 'loglinear' or None, got {correction!r}")
    zh, zf = float(special.ndtri(h)), float(special.ndtri(f))
    return DPrime(zh - zf, -(zh + zf) / 2.0)


# --------------------------------------------------------------------------- ROC area


def _auc_components(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: V10[i] = P(neg < pos_i) + ½P(=), V01[j] likewise."""
    neg_sorted = np.sort(neg)
    pos_sorted = np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, side="left")
    tied = np.searchsorted(neg_sorted, pos, side="right") - below
    v10 = (below + 0.5 * tied) / neg.size
    above = pos.size - np.searchsorted(pos_sorted, neg, side="right")
    tied_p = np.searchsorted(pos_sorted, neg, side="right") - np.searchsorted(pos_sorted, neg, side="left")
    v01 = (above + 0.5 * tied_p) / pos.size
    return v10, v01


def _delong_discrete(pos: np.ndarray, neg: np.ndarray, size: int) -> tuple[float, float, float]:
    """AUC and the variances of DeLong's placement values for ratings on 0..size−1.

    Confidence scales have a handful of levels, so the placements are computed per level
    from two histograms (O(n), no sorting) and their variances weighted by the level counts.
    Same numbers as the general path (tested).
    """
    cp = np.bincount(pos.astype(np.int64), minlength=size).astype(np.float64)
    cn = np.bincount(neg.astype(np.int64), minlength=size).astype(np.float64)
    n1, n0 = pos.size, neg.size
    v10 = (np.cumsum(cn) - cn + 0.5 * cn) / n0  # placement of a positive at each level
    v01 = (n1 - np.cumsum(cp) + 0.5 * cp) / n1  # placement of a negative at each level
    auc = float(cp @ v10) / n1
    var10 = float(cp @ (v10 - auc) ** 2) / (n1 - 1)
    mean01 = float(cn @ v01) / n0
    var01 = float(cn @ (v01 - mean01) ** 2) / (n0 - 1)
    return auc, var10, var01


def _ratings(name: str, values: object) -> np.ndarray:
    arr = _as_1d(name, values).astype(float)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def rating_auc(positive_ratings: np.ndarray, negative_ratings: np.ndarray) -> float:
    """Area under the ROC curve from ordinal ratings (Mann–Whitney, ties count ½).

    ``AUC = (1/(n₁n₀)) Σᵢ Σⱼ ψ(xᵢ, yⱼ)`` with ``ψ = 1`` if ``x > y``, ``½`` if
    ``x = y``, ``0`` otherwise: the probability that a random positive is rated higher
    than a random negative. For a Turing test, positives are synthetic images and the
    rating is the confidence-signed answer (+confidence for "synthetic",
    −confidence for "real"), so 0.5 is chance and 1 perfect discrimination.

    Parameters
    ----------
    positive_ratings : array (n₁,)
    negative_ratings : array (n₀,)
        Finite numbers, both non-empty.

    Returns
    -------
    float

    Notes
    -----
    ``rating_auc(p, n) == 1 − rating_auc(n, p)``. Computed as ``U₁/(n₁n₀)`` from
    ``scipy.stats.mannwhitneyu`` (which counts ties half); this equals the trapezoidal
    area under the empirical ROC curve.

    References
    ----------
    Hanley JA, McNeil BJ (1982). Radiology 143:29–36. doi:10.1148/radiology.143.1.7063747
    Bamber D (1975). J Math Psychol 12:387–415. doi:10.1016/0022-2496(75)90001-2

    Examples
    --------
    Hanley & McNeil (1982), Table 1: 109 CT images rated 1 (definitely normal) … 5
    (definitely abnormal); the paper reports A = 0.893.

    >>> normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    >>> abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    >>> round(rating_auc(abnormal, normal), 3)
    0.893
    """
    pos = _ratings("positive_ratings", positive_ratings)
    neg = _ratings("negative_ratings", negative_ratings)
    u = sps.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (pos.size * neg.size)


class AucResult(NamedTuple):
    auc: float
    ci_low: float
    ci_high: float
    se: float


def rating_auc_ci(
    positive_ratings: np.ndarray, negative_ratings: np.ndarray, confidence: float = 0.95
) -> AucResult:
    """AUC with DeLong's nonparametric standard error and a normal-theory CI.

    With placement values ``V10ᵢ = (1/n₀) Σⱼ ψ(xᵢ, yⱼ)`` and ``V01ⱼ = (1/n₁) Σᵢ ψ(xᵢ, yⱼ)``::

        Var(AUC) = s²(V10)/n₁ + s²(V01)/n₀,   CI = AUC ± z·SE, clipped to [0, 1]

    (``s²`` the sample variance). Needs at least two positives and two negatives. With
    perfect separation the estimated variance is 0 and the CI degenerates to a point:
    treat CIs from tiny samples with care (the report warns).

    References
    ----------
    DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Biometrics 44:837–845.
    doi:10.2307/2531595
    Sun X, Xu W (2014). IEEE Signal Process Lett 21:1389–1393. doi:10.1109/LSP.2014.2337313

    >>> r = rating_auc_ci([3, 4, 5, 5], [1, 2, 3, 4])
    >>> round(r.auc, 4), round(r.se, 4)
    (0.875, 0.125)
    """
    pos = _ratings("positive_ratings", positive_ratings)
    neg = _ratings("negative_ratings", negative_ratings)
    if pos.size < 2 or neg.size < 2:
        raise ValueError(
            f"DeLong's variance needs at least 2 positives and 2 negatives, got {pos.size} and {neg.size}"
        )
    confidence = _confidence(confidence)
    lo = min(float(pos.min()), float(neg.min()))
    span = max(float(pos.max()), float(neg.max())) - lo
    if span <= 10_000 and np.all(pos == np.round(pos)) and np.all(neg == np.round(neg)):
        auc, var10, var01 = _delong_discrete(pos - lo, neg - lo, int(span) + 1)
    else:
        v10, v01 = _auc_components(pos, neg)
        auc, var10, var01 = float(v10.mean()), float(v10.var(ddof=1)), float(v01.var(ddof=1))
    se = math.sqrt(max(var10, 0.0) / pos.size + max(var01, 0.0) / neg.size)
    z = float(special.ndtri(0.5 + confidence / 2.0))
    return AucResult(auc, max(0.0, auc - z * se), min(1.0, auc + z * se), se)


# --------------------------------------------------------------------------- agreement


def _codes(*arrays: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Map labels of any type to 0..K-1 in sorted label order (shared across arrays)."""
    joined = np.concatenate(arrays)
    labels, inverse = np.unique(joined, return_inverse=True)
    out, start = [], 0
    for arr in arrays:
        out.append(inverse[start : start + arr.size])
        start += arr.size
    return out, labels.size


def cohens_kappa(
    a: np.ndarray, b: np.ndarray, weights: Literal["linear", "quadratic"] | None = None
) -> float:
    """Cohen's κ between two raters' labels of the same units (optionally weighted).

    ``κ = (p_o − p_e)/(1 − p_e)`` with ``p_o`` the observed agreement and ``p_e`` the
    agreement expected from the two raters' marginal distributions. Weighted κ uses
    disagreement weights ``w_ij = |i − j|/(K − 1)`` (linear) or ``((i − j)/(K − 1))²``
    (quadratic) over the K categories in sorted order: ``κ_w = 1 − Σ w·p_obs / Σ w·p_exp``.

    Parameters
    ----------
    a, b : array (n,)
        Labels (numbers or strings) given by rater A and rater B to the same n units;
        the categories are the sorted union of both arrays (as R ``irr::kappa2`` and
        scikit-learn do), so weights follow category *rank*, not numeric distance.
    weights : {None, "linear", "quadratic"}

    Returns
    -------
    float
        In [−1, 1]; ``nan`` when ``p_e = 1`` (both raters used one and the same
        category: agreement is perfect but κ is undefined).

    References
    ----------
    Cohen J (1960). Educ Psychol Meas 20:37–46. doi:10.1177/001316446002000104
    Cohen J (1968). Psychol Bull 70:213–220. doi:10.1037/h0026256
    Wraps ``statsmodels.stats.inter_rater.cohens_kappa``.

    Examples
    --------
    Two raters, 50 units: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no; p_o = 0.7, p_e = 0.5:

    >>> round(cohens_kappa(["yes"] * 25 + ["no"] * 25,
    ...                    ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15), 10)
    0.4
    """
    a_arr, b_arr = _as_1d("a", a), _as_1d("b", b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must have the same length, got {a_arr.size} and {b_arr.size}")
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    (ca, cb), k = _codes(a_arr, b_arr)
    table = np.zeros((k, k))
    np.add.at(table, (ca, cb), 1)
    row, col = table.sum(axis=1) / ca.size, table.sum(axis=0) / ca.size
    if k == 1 or np.isclose(float(row @ col), 1.0):
        return math.nan
    if weights is None:
        return float(inter_rater.cohens_kappa(table, return_results=False))
    return float(inter_rater.cohens_kappa(table, weights=np.arange(k), wt=weights, return_results=False))


# Up to this many stacked rows, pairwise κ takes one Gram matrix (memory: rows² floats).
_STACKED_GRAM_ROWS = 4000


def pairwise_cohens_kappa(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted Cohen's κ for every pair of raters, on the units both rated.

    Parameters
    ----------
    ratings : array (R, N)
        Category codes (integers ≥ 0) of R raters on N units, ``nan`` where a rater
        did not rate a unit.

    Returns
    -------
    (kappa, n_common) : arrays (R, R)
        ``kappa[r, s]`` is :func:`cohens_kappa` of raters r and s over the units both
        rated (diagonal 1 where defined), ``nan`` when they share no unit or κ is
        undefined; ``n_common[r, s]`` the number of shared units.

    Notes
    -----
    Vectorized with one-hot matrices so 200 raters × 5,000 images takes matrix
    products, not 19,900 separate calls: with mask ``M`` and one-hot ``X_c`` of category
    c, ``n = M Mᵀ``, ``p_o = Σ_c X_c X_cᵀ / n`` and
    ``p_e = Σ_c (X_c Mᵀ / n)(M X_cᵀ / n)``. Equal to :func:`cohens_kappa` pair by pair
    (checked in the tests).

    >>> k, n = pairwise_cohens_kappa(np.array([[0, 1, 0, 1], [0, 1, 1, 1.0]]))
    >>> round(float(k[0, 1]), 3), int(n[0, 1])
    (0.5, 4)
    """
    arr = np.asarray(ratings, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"ratings must be a raters × units array, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"pairwise κ needs at least 2 raters, got {arr.shape[0]}")
    mask = ~np.isnan(arr)
    values = np.where(mask, arr, -1).astype(np.int64)
    if (values[mask] < 0).any():
        raise ValueError("ratings must be non-negative integer category codes")
    # Counts of shared units are integers below 2**24 (the units), exact in float32,
    # which halves the cost of the products; the κ arithmetic itself is float64.
    dtype = np.float32 if arr.shape[1] < 2**24 else np.float64
    m = mask.astype(dtype)
    categories = np.unique(values[mask])
    n_r = arr.shape[0]
    onehots = [(values == c).astype(dtype) for c in categories]
    if (len(categories) + 1) * n_r <= _STACKED_GRAM_ROWS:
        # One Gram matrix of the stacked [M; X_c…] holds every block needed; a single
        # BLAS call is much cheaper than 2K + 1 small ones on a busy machine.
        stacked = np.concatenate([m, *onehots]) if onehots else m
        gram = (stacked @ stacked.T).astype(np.float64)

        def block(a: int, b: int) -> np.ndarray:
            return gram[a * n_r : (a + 1) * n_r, b * n_r : (b + 1) * n_r]
    else:

        def block(a: int, b: int) -> np.ndarray:
            left = m if a == 0 else onehots[a - 1]
            right = m if b == 0 else onehots[b - 1]
            return (left @ right.T).astype(np.float64)

    n_common = block(0, 0)
    agree = np.zeros_like(n_common)
    expected = np.zeros_like(n_common)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(1, len(categories) + 1):
            agree += block(k, k)
            # x_r on units shared with s, times x_s on units shared with r (M x_cᵀ = (x_c Mᵀ)ᵀ).
            shared = block(k, 0)
            expected += shared * shared.T
        po = agree / n_common
        pe = expected / n_common**2
        kappa = (po - pe) / (1.0 - pe)
    kappa[(n_common == 0) | np.isclose(pe, 1.0)] = np.nan
    return kappa, n_common.astype(np.int64)


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' κ for many raters from a subjects × categories count table.

    ``table[i, j]`` is how many raters put subject i in category j; every row must sum
    to the same number of raters m ≥ 2. With ``p_j`` the overall share of category j::

        P_i = (Σ_j n_ij² − m)/(m(m − 1)),  P̄ = mean P_i,  P_e = Σ_j p_j²,
        κ = (P̄ − P_e)/(1 − P_e)

    Returns
    -------
    float
        ``nan`` when ``P_e = 1`` (every rating in one category).

    Notes
    -----
    Raters need not be the same people for every subject, but their number must be.
    For unequal numbers of ratings per subject use :func:`krippendorff_alpha`.

    References
    ----------
    Fleiss JL (1971). Psychol Bull 76:378–382. doi:10.1037/h0031619
    Wraps ``statsmodels.stats.inter_rater.fleiss_kappa``.

    Examples
    --------
    >>> fleiss_kappa(np.array([[2, 0], [0, 2], [2, 0]]))
    1.0
    """
    arr = np.asarray(table, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"table must be subjects × categories, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"table is empty (shape {arr.shape})")
    if (arr < 0).any() or not np.isfinite(arr).all() or (arr != np.round(arr)).any():
        raise ValueError("table must hold non-negative integer counts")
    totals = arr.sum(axis=1)
    if not np.all(totals == totals[0]):
        raise ValueError(
            f"every subject needs the same number of ratings, got row totals {sorted(set(totals.tolist()))}"
        )
    if totals[0] < 2:
        raise ValueError(f"Fleiss' κ needs at least 2 ratings per subject, got {int(totals[0])}")
    p = arr.sum(axis=0) / arr.sum()
    if np.isclose(float(p @ p), 1.0):
        return math.nan
    return float(inter_rater.fleiss_kappa(arr, method="fleiss"))


def krippendorff_alpha(
    reliability_data: np.ndarray, level: Literal["nominal", "ordinal", "interval"] = "nominal"
) -> float:
    """Krippendorff's α for any number of raters, missing data and several scales.

    ``α = 1 − D_o/D_e``: observed disagreement within units over the disagreement
    expected by chance, both computed from the coincidence matrix of pairable values
    with the level's distance (nominal: 0/1; ordinal: rank-based; interval: squared
    difference). Units rated by fewer than two raters are not pairable and ignored.

    Parameters
    ----------
    reliability_data : array (raters, units)
        Numeric values, ``nan`` for missing.
    level : {"nominal", "ordinal", "interval"}

    Returns
    -------
    float
        1 is perfect agreement, 0 chance-level; ``nan`` when all pairable values are
        identical (no variation, ``D_e = 0``).

    References
    ----------
    Krippendorff K (2011). Computing Krippendorff's Alpha-Reliability.
    https://repository.upenn.edu/asc_papers/43
    Hayes AF, Krippendorff K (2007). Commun Methods Meas 1:77–89.
    doi:10.1080/19312450709336664
    Wraps ``krippendorff.alpha``.

    Examples
    --------
    Krippendorff (2011), 4 observers × 12 units with missing values: α_nominal = 0.743.

    >>> nan = np.nan
    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    ...         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    ...         [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    ...         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    >>> round(krippendorff_alpha(np.array(data)), 3)
    0.743
    """
    arr = np.asarray(reliability_data, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"reliability_data must be raters × units, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"reliability_data is empty (shape {arr.shape})")
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', got {level!r}")
    if arr.shape[0] < 2:
        raise ValueError(f"Krippendorff's α needs at least 2 raters, got {arr.shape[0]}")
    pairable = (~np.isnan(arr)).sum(axis=0) >= 2
    if not pairable.any():
        raise ValueError("no unit was rated by two or more raters: α is undefined")
    values = np.unique(arr[:, pairable][~np.isnan(arr[:, pairable])])
    if values.size < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=arr, level_of_measurement=level))


def krippendorff_alpha_counts(
    value_counts: np.ndarray, level: Literal["nominal", "ordinal", "interval"] = "nominal"
) -> float:
    """Krippendorff's α from a units × values count table (no rater identities needed).

    α depends only on how many raters gave each value to each unit, so a study with
    thousands of raters never needs a dense raters × units matrix. ``value_counts[u, v]``
    counts the ratings of value index ``v`` (values ``0..V−1`` in order, which matters
    for ordinal and interval levels) on unit ``u``. Same result and conventions as
    :func:`krippendorff_alpha`; units with fewer than two ratings are not pairable.

    Two raters, three units (0,0), (1,1), (0,1): D_o = 2/6, D_e = 2·3·3/(6·5), α = 1 − (1/3)/0.6:

    >>> round(krippendorff_alpha_counts(np.array([[2, 0], [0, 2], [1, 1]])), 4)
    0.4444
    """
    counts = np.asarray(value_counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError(f"value_counts must be units × values, got shape {counts.shape}")
    if counts.size == 0:
        raise ValueError(f"value_counts is empty (shape {counts.shape})")
    if (counts < 0).any() or not np.isfinite(counts).all() or (counts != np.round(counts)).any():
        raise ValueError("value_counts must hold non-negative integer counts")
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', got {level!r}")
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.shape[0] == 0:
        raise ValueError("no unit was rated by two or more raters: α is undefined")
    if np.count_nonzero(pairable.sum(axis=0)) < 2:
        return math.nan
    return float(
        krippendorff.alpha(
            value_counts=pairable, value_domain=np.arange(counts.shape[1]), level_of_measurement=level
        )
    )


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimate with a percentile bootstrap interval."""

    estimate: float
    ci_low: float
    ci_high: float
    n_boot: int
    n_valid: int


# Up to this many rater × image cells the sums live in dense matrices (BLAS products);
# beyond, in scipy.sparse matrices so memory follows the number of judgments.
_DENSE_CELLS = 20_000_000


def _draw_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) multiplicities of n draws with replacement from n items, per replicate."""
    draws = rng.integers(0, n, size=(n_boot, n))
    offsets = (np.arange(n_boot) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _two_way_draws(n_raters: int, n_images: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, R) and (B, I) multiplicities of a with-replacement draw of raters and images."""
    rng = np.random.default_rng(seed)
    return _draw_counts(rng, n_raters, n_boot), _draw_counts(rng, n_images, n_boot)


def _stratified_draws(
    n_raters: int, image_stratum: np.ndarray, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Raters drawn from all raters; images drawn within their stratum (codes 0..S−1).

    With a single stratum this is exactly :func:`_two_way_draws` (same seed, same draws).
    """
    rng = np.random.default_rng(seed)
    rater_w = _draw_counts(rng, n_raters, n_boot)
    image_w = np.zeros((n_boot, image_stratum.size))
    for s in range(int(image_stratum.max()) + 1 if image_stratum.size else 0):
        idx = np.flatnonzero(image_stratum == s)
        image_w[:, idx] = _draw_counts(rng, idx.size, n_boot)
    return rater_w, image_w


def factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniques, codes)`` with ``uniques[codes] == ids``, uniques sorted (like ``np.unique``).

    Non-negative integer ids (database keys) take an O(n) path through ``np.bincount``
    instead of a sort, which matters for a million judgments.

    >>> factorize(np.array([7, 3, 7, 10]))
    (array([ 3,  7, 10]), array([1, 0, 1, 2]))
    """
    arr = np.asarray(ids)
    if (
        arr.size
        and arr.dtype.kind in "iu"
        or (arr.size and arr.dtype.kind == "f" and np.isfinite(arr).all() and np.all(arr == np.round(arr)))
    ):
        as_int = arr.astype(np.int64)
        lo, hi = int(as_int.min()), int(as_int.max())
        if lo >= 0 and hi <= 4 * as_int.size + 1_000_000:
            present = np.bincount(as_int, minlength=hi + 1) > 0
            uniques = np.flatnonzero(present)
            mapping = np.cumsum(present) - 1
            return uniques.astype(arr.dtype), mapping[as_int]
    uniques, codes = np.unique(arr, return_inverse=True)
    return uniques, codes.reshape(-1)


def _factorize(name: str, ids: np.ndarray) -> tuple[np.ndarray, int]:
    arr = _as_1d(name, ids)
    uniques, codes = factorize(arr)
    return codes, int(uniques.size)


def _percentile_interval(
    estimate: float, reps: np.ndarray, confidence: float, n_boot: int
) -> BootstrapResult:
    valid = reps[np.isfinite(reps)]
    if valid.size == 0:
        return BootstrapResult(estimate, math.nan, math.nan, n_boot, 0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return BootstrapResult(estimate, float(low), float(high), n_boot, int(valid.size))


def bootstrap_two_way(
    rater: np.ndarray,
    image: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile CI of any study-level statistic, resampling raters *and* images.

    A reader study has two random factors: other raters and other images would give
    other answers. Each replicate draws R raters and I images with replacement and
    keeps every judgment of a drawn rater on a drawn image, repeated
    ``(times rater drawn) × (times image drawn)``; the statistic is evaluated on
    those frequency weights. Resampling one factor only understates the uncertainty.

    Parameters
    ----------
    rater, image : arrays (n,)
        Rater and image identifiers of each judgment (long format, any labels).
    statistic : callable
        ``statistic(weights)`` with ``weights`` an (n,) float array of frequency
        weights (0 = judgment not drawn) returning a float; ``statistic(ones)`` is the
        point estimate. Replicates where it returns nan are dropped (reported in
        ``n_valid``).
    n_boot : int
        Number of replicates (≥ 1).
    confidence : float
    seed : int
        Same seed, same interval.

    Returns
    -------
    BootstrapResult

    Notes
    -----
    Each replicate costs one call on n-length arrays; for means over 10⁶ judgments use
    :func:`bootstrap_two_way_mean`, which gives the identical interval for the same seed
    with matrix products.

    References
    ----------
    Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. doi:10.1201/9780429246593
    Obuchowski NA, Rockette HE (1995) on readers and cases as random factors,
    Commun Stat Simul Comput 24:285–308. doi:10.1080/03610919508813243

    Examples
    --------
    >>> r = np.repeat(np.arange(4), 5); i = np.tile(np.arange(5), 4)
    >>> y = (r + i) % 2
    >>> res = bootstrap_two_way(r, i, lambda w: float(np.sum(w * y) / np.sum(w)), n_boot=200, seed=1)
    >>> res.estimate, 0.0 <= res.ci_low <= res.estimate <= res.ci_high <= 1.0
    (0.5, True)
    """
    rcodes, n_r = _factorize("rater", rater)
    icodes, n_i = _factorize("image", image)
    if rcodes.shape != icodes.shape:
        raise ValueError(f"rater and image must have the same length, got {rcodes.size} and {icodes.size}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot!r}")
    confidence = _confidence(confidence)
    estimate = float(statistic(np.ones(rcodes.size)))
    rater_w, image_w = _two_way_draws(n_r, n_i, int(n_boot), seed)
    reps = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        reps[b] = statistic(rater_w[b, rcodes] * image_w[b, icodes])
    return _percentile_interval(estimate, reps, confidence, int(n_boot))


def _mean_replicates(
    rcodes: np.ndarray,
    icodes: np.ndarray,
    y: np.ndarray,
    n_r: int,
    n_i: int,
    rater_w: np.ndarray,
    image_w: np.ndarray,
    groups: np.ndarray,
    block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sums and weights of ``y`` per replicate and image group, (B, G) each.

    With ``S`` the rater × image sums of ``y``, ``C`` the counts, ``W`` (B × R) and ``V``
    (B × I) the draw multiplicities and ``G`` (I × G) the image-group indicators:
    ``num = ((W S) ∘ V) G`` and ``den = ((W C) ∘ V) G``.
    """
    dense = n_r * n_i <= _DENSE_CELLS
    if dense:
        flat = rcodes * n_i + icodes
        sums = np.bincount(flat, weights=y, minlength=n_r * n_i).reshape(n_r, n_i)
        counts = np.bincount(flat, minlength=n_r * n_i).reshape(n_r, n_i).astype(np.float64)
        # Integer cell sums make every product and partial sum an integer of magnitude at
        # most max|S| · ΣW_b · ΣV_b = max|S| · n_r · n_i; below 2**24 that is exact in
        # float32, whose products run twice as fast.
        integral = bool(np.all(y == np.round(y)))
        if integral and float(np.abs(sums).max(initial=0.0)) * n_r * n_i < 2**24:
            sums, rater_w, image_w = (
                sums.astype(np.float32),
                rater_w.astype(np.float32),
                image_w.astype(np.float32),
            )
        # A fully crossed design (every rater judged every image c times) has the
        # denominator c·ΣW_b·(V_b G): half the matrix products saved in the common case.
        crossed = bool(counts.min() == counts.max())
        per_cell = float(counts[0, 0])
    else:
        sums = sparse.csr_matrix((y, (rcodes, icodes)), shape=(n_r, n_i))
        counts = sparse.csr_matrix((np.ones_like(y), (rcodes, icodes)), shape=(n_r, n_i))
        crossed = counts.nnz == n_r * n_i and bool(np.all(counts.data == counts.data[0]))
        per_cell = float(counts.data[0]) if counts.nnz else 0.0
    groups = groups.astype(image_w.dtype)
    n_boot = rater_w.shape[0]
    num = np.empty((n_boot, groups.shape[1]))
    den = np.empty((n_boot, groups.shape[1]))
    for start in range(0, n_boot, block):
        w = rater_w[start : start + block]
        v = image_w[start : start + block]
        ws = w @ sums if dense else (sums.T @ w.T).T
        num[start : start + block] = (np.asarray(ws) * v) @ groups
        if crossed:
            den[start : start + block] = (
                per_cell
                * w.sum(axis=1, dtype=np.float64)[:, None]
                * (v.astype(np.float64) @ groups.astype(np.float64))
            )
        else:
            wc = w @ counts if dense else (counts.T @ w.T).T
            den[start : start + block] = (np.asarray(wc) * v) @ groups
    return num, den


def bootstrap_two_way_mean(
    rater: np.ndarray,
    image: np.ndarray,
    values: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    block: int = 100,
) -> BootstrapResult:
    """Two-way bootstrap CI of the mean of ``values`` (e.g. an error or accuracy rate).

    Same draws and result as :func:`bootstrap_two_way` with
    ``statistic = Σ w·y / Σ w``, computed with matrix products instead of a loop: with
    ``S`` the rater × image sums of ``values``, ``C`` the counts, and ``W`` (B × R),
    ``V`` (B × I) the draw multiplicities, replicate b is
    ``(W_b S V_bᵀ) / (W_b C V_bᵀ)``. One million judgments and 1,000 replicates take
    well under a second.

    >>> r = np.repeat(np.arange(4), 5); i = np.tile(np.arange(5), 4)
    >>> y = ((r + i) % 2).astype(float)
    >>> a = bootstrap_two_way_mean(r, i, y, n_boot=200, seed=1)
    >>> b = bootstrap_two_way(r, i, lambda w: float(np.sum(w * y) / np.sum(w)), n_boot=200, seed=1)
    >>> abs(a.ci_low - b.ci_low) < 1e-12 and abs(a.ci_high - b.ci_high) < 1e-12
    True
    """
    rcodes, n_r = _factorize("rater", rater)
    icodes, n_i = _factorize("image", image)
    y = _as_1d("values", values).astype(np.float64)
    if not (rcodes.size == icodes.size == y.size):
        raise ValueError(f"rater, image and values differ in length ({rcodes.size}, {icodes.size}, {y.size})")
    if not np.isfinite(y).all():
        raise ValueError("values contains NaN or infinite entries")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot!r}")
    confidence = _confidence(confidence)
    estimate = float(y.mean())
    rater_w, image_w = _two_way_draws(n_r, n_i, int(n_boot), seed)
    num, den = _mean_replicates(rcodes, icodes, y, n_r, n_i, rater_w, image_w, np.ones((n_i, 1)), block)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.where(den[:, 0] > 0, num[:, 0] / den[:, 0], np.nan)
    return _percentile_interval(estimate, reps, confidence, int(n_boot))


@dataclass(frozen=True)
class StratifiedBootstrap:
    """Overall and per-stratum means with their two-way bootstrap intervals."""

    overall: BootstrapResult
    strata: dict[Any, BootstrapResult]


def bootstrap_two_way_mean_stratified(
    rater: np.ndarray,
    image: np.ndarray,
    values: np.ndarray,
    stratum: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    block: int = 100,
) -> StratifiedBootstrap:
    """Two-way bootstrap of a mean overall and per image stratum, from one set of draws.

    Raters are resampled across the study; images are resampled *within* their stratum
    (for a Turing test: real and synthetic), so every replicate keeps the design's
    number of real and synthetic images. The overall mean and the mean of each stratum
    come from the same replicates (one pass, one set of matrix products). With a single
    stratum the result equals :func:`bootstrap_two_way_mean` for the same seed.

    Parameters
    ----------
    rater, image, values : arrays (n,)
        As for :func:`bootstrap_two_way_mean`.
    stratum : array (n,)
        The stratum of each judgment's image; it must be the same for every judgment of
        an image (``ValueError`` otherwise).

    Returns
    -------
    StratifiedBootstrap
        ``overall`` and ``strata[label]`` (labels as given, e.g. ``False``/``True``).

    >>> r = np.repeat(np.arange(4), 6); i = np.tile(np.arange(6), 4)
    >>> kind = i % 2 == 1
    >>> y = ((r + i) % 3 == 0).astype(float)
    >>> res = bootstrap_two_way_mean_stratified(r, i, y, kind, n_boot=200, seed=2)
    >>> bool(res.overall.estimate == y.mean()), bool(res.strata[True].estimate == y[kind].mean())
    (True, True)
    """
    rcodes, n_r = _factorize("rater", rater)
    icodes, n_i = _factorize("image", image)
    y = _as_1d("values", values).astype(np.float64)
    labels, scodes = factorize(_as_1d("stratum", stratum))
    if not (rcodes.size == icodes.size == y.size == scodes.size):
        raise ValueError(
            f"rater, image, values and stratum differ in length ({rcodes.size}, {icodes.size}, {y.size}, "
            f"{scodes.size})"
        )
    if not np.isfinite(y).all():
        raise ValueError("values contains NaN or infinite entries")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot!r}")
    confidence = _confidence(confidence)
    image_stratum = np.full(n_i, -1, dtype=np.int64)
    image_stratum[icodes] = scodes
    if not np.array_equal(image_stratum[icodes], scodes):
        raise ValueError("stratum must be the same for every judgment of an image")
    rater_w, image_w = _stratified_draws(n_r, image_stratum, int(n_boot), seed)
    groups = np.zeros((n_i, labels.size))
    groups[np.arange(n_i), image_stratum] = 1.0
    num, den = _mean_replicates(rcodes, icodes, y, n_r, n_i, rater_w, image_w, groups, block)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(den.sum(axis=1) > 0, num.sum(axis=1) / den.sum(axis=1), np.nan)
        per = np.where(den > 0, num / den, np.nan)
    overall = _percentile_interval(float(y.mean()), total, confidence, int(n_boot))
    strata = {
        labels[k].item() if hasattr(labels[k], "item") else labels[k]: _percentile_interval(
            float(y[scodes == k].mean()), per[:, k], confidence, int(n_boot)
        )
        for k in range(labels.size)
    }
    return StratifiedBootstrap(overall, strata)
