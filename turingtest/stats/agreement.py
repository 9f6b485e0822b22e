"""Inter-rater agreement: Cohen's κ (one pair and every pair), Fleiss' κ, Krippendorff's α."""

from __future__ import annotations

import math
from typing import Literal

import krippendorff
import numpy as np
from statsmodels.stats import inter_rater

from turingtest.stats.arrays import _as_1d

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
