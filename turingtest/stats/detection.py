"""Signal detection: log-linear d′ and c, the rating ROC area and its DeLong interval."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
from scipy import special
from scipy import stats as sps

from turingtest.stats.arrays import _as_1d, _confidence, _count

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
