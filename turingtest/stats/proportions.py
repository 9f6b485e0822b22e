"""Proportions: Wilson interval, exact binomial test, two-proportion comparison, McNemar."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import special
from scipy import stats as sps

from turingtest.stats.arrays import _confidence, _count

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
