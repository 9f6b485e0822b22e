"""Crossed random-effects inference: raters and images as random samples.

The shared result types of the reader-study estimators (:class:`CrossedEstimate`,
:class:`VarianceComponents`), their input checks and t interval, and
:func:`crossed_mean`, the judgment mean with the two-way crossed random-effects variance
(method-of-moments components of Gao & Owen 2017). The reader-averaged headline
estimators built on these live in :mod:`turingtest.stats.reader_study`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from turingtest.stats.arrays import factorize

__all__ = ["CrossedEstimate", "VarianceComponents", "crossed_mean"]


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class VarianceComponents:
    """Per-unit variance components behind a crossed interval.

    ``rater``, ``image`` and ``residual`` are the variances σ²_R, σ²_I, σ²_E of the
    additive crossed model, scaled so that a fully crossed study of ``R`` raters who each
    judge the same ``I`` images (same real:synthetic mix) has estimator variance

        Var = σ²_R / R + σ²_I / I + σ²_E / (R·I).

    Raters and images trade off differently: more raters shrink the first and last
    terms, more images the last two; no number of images removes σ²_R / R.
    Negative moment estimates are reported as 0.
    """

    rater: float
    image: float
    residual: float

    def variance(self, n_raters: int, n_images: int) -> float:
        """Predicted variance of the estimate for ``n_raters`` × ``n_images``, fully crossed."""
        if n_raters < 1 or n_images < 1:
            raise ValueError(f"n_raters and n_images must be >= 1, got {n_raters} and {n_images}")
        return self.rater / n_raters + self.image / n_images + self.residual / (n_raters * n_images)


@dataclass(frozen=True)
class CrossedEstimate:
    """An estimate with a t interval that generalises to new raters and new images.

    ``p_value`` is two-sided against ``null`` (``None`` when no null was given). ``df``
    may be ``inf`` (normal quantiles). ``n_raters`` and ``n_images`` count the raters and
    images the estimate rests on.
    """

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float | None
    null: float | None
    components: VarianceComponents
    n_raters: int
    n_images: int


# --------------------------------------------------------------------------- input checks


def _confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _aligned(**arrays: object) -> dict[str, np.ndarray]:
    """1-D, equal-length, non-empty arrays or a ValueError naming the culprit."""
    out: dict[str, np.ndarray] = {}
    n: int | None = None
    first = ""
    for name, values in arrays.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if n is None:
            n, first = arr.size, name
        elif arr.size != n:
            raise ValueError(f"{name} has {arr.size} entries but {first} has {n}")
        out[name] = arr
    return out


def _ids(name: str, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..n-1 for integer ids (O(n) for database keys and codes, see ``factorize``)."""
    if values.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer ids, got dtype {values.dtype}")
    uniques, codes = factorize(values.astype(np.int64))
    return codes.astype(np.int64), int(uniques.size)


def _binary(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype == bool:
        return values
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        raise ValueError(f"{name} must be 0/1 or boolean, got {bad[0].item()!r}")
    return values.astype(bool)


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be numeric, got dtype {values.dtype}")
    out = values.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} holds a non-finite value: {out[~np.isfinite(out)][0].item()!r}")
    return out


# --------------------------------------------------------------------------- t interval


def _t_interval(
    estimate: float, variance: float, df: float, confidence: float, null: float | None
) -> tuple[float, float, float, float | None]:
    """se, ci_low, ci_high and the two-sided p-value of a t statistic with ``df``."""
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:
        # Every rater and image agreed perfectly: no sampling variation is visible.
        p = None if null is None else (1.0 if estimate == null else 0.0)
        return se, estimate, estimate, p
    q = float(sps.t.ppf(0.5 + confidence / 2, df))
    p = None if null is None else float(2 * sps.t.sf(abs(estimate - null) / se, df))
    return se, estimate - q * se, estimate + q * se, p


# --------------------------------------------------------------------------- crossed mean


def crossed_mean(
    values: np.ndarray,
    rater: np.ndarray,
    image: np.ndarray,
    confidence: float = 0.95,
    null: float | None = None,
) -> CrossedEstimate:
    r"""Mean of per-judgment values with a crossed random-effects (raters × images) interval.

    Model: :math:`y_{ri} = \mu + a_r + b_i + e_{ri}` with independent rater effects
    :math:`a_r \sim (0, \sigma^2_A)`, image effects :math:`b_i \sim (0, \sigma^2_B)` and
    residuals :math:`e \sim (0, \sigma^2_E)`, observed on any subset of the cells. The
    estimate is the judgment mean :math:`\bar y` and

    .. math::

        \operatorname{Var}(\bar y) = \sigma^2_A \frac{\sum_r N_{r}^2}{N^2}
            + \sigma^2_B \frac{\sum_i N_{i}^2}{N^2} + \frac{\sigma^2_E}{N}

    (:math:`N_r`, :math:`N_i`: judgments of rater r and of image i). The components are
    the method-of-moments solution of Gao & Owen (2017): the within-rater, within-image
    and total sums of squares

    .. math::

        U_A = \sum (y - \bar y_{r\cdot})^2,\quad U_B = \sum (y - \bar y_{\cdot i})^2,\quad
        U_E = \sum (y - \bar y)^2

    have expectations :math:`(N-R)(\sigma^2_B+\sigma^2_E)`,
    :math:`(N-I)(\sigma^2_A+\sigma^2_E)` and
    :math:`\sigma^2_A(N-\sum N_r^2/N) + \sigma^2_B(N-\sum N_i^2/N) + \sigma^2_E(N-1)`;
    negative solutions are set to 0. In a balanced design this is the two-way ANOVA
    variance :math:`(MS_A + MS_B - MS_E)/(RI)`. Degrees of freedom: Satterthwaite on
    that combination, with :math:`v_A+v_E`, :math:`v_B+v_E`, :math:`v_E` playing
    :math:`MS_A/(RI)`, :math:`MS_B/(RI)`, :math:`MS_E/(RI)` (df R−1, I−1, N−R−I+1);
    a component estimated as 0 drops its mean square.

    Parameters
    ----------
    values : (n,) array of float
        One value per judgment, e.g. 1/0 for correct/incorrect.
    rater, image : (n,) arrays of int
        Ids of the rater and of the image of each judgment (any integers).
    confidence : float
        Coverage of the two-sided t interval.
    null : float or None
        Value the two-sided p-value tests; ``None`` gives ``p_value=None``.

    Returns
    -------
    CrossedEstimate
        ``components`` holds (σ²_A, σ²_B, σ²_E).

    Notes
    -----
    Each judgment has equal weight, so raters who judged more images count more: use the
    reader-averaged estimators below for a headline. The additive model is a working
    model for 0/1 data; its interval is an approximation that needs several raters and
    images. Raises ``ValueError`` for fewer than 2 raters or images, or when every rater
    (or every image) has a single judgment, where the components are not identified.

    References
    ----------
    Gao K, Owen AB (2017). Efficient moment calculations for variance components in large
    unbalanced crossed random effects models. Electron J Stat 11:1235–1296.
    DOI:10.1214/17-EJS1236.
    Satterthwaite FE (1946). An approximate distribution of estimates of variance
    components. Biometrics Bull 2:110–114. DOI:10.2307/3002019.

    Examples
    --------
    >>> rater = np.repeat([1, 2, 3], 4)
    >>> image = np.tile([10, 11, 12, 13], 3)
    >>> correct = np.array([1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    >>> est = crossed_mean(correct, rater, image, null=0.5)
    >>> round(est.estimate, 3), round(est.se, 3), round(est.df, 1)
    (0.75, 0.186, 2.6)
    """
    confidence = _confidence(confidence)
    arrs = _aligned(values=values, rater=rater, image=image)
    y = _finite("values", arrs["values"])
    r_code, n_r = _ids("rater", arrs["rater"])
    i_code, n_i = _ids("image", arrs["image"])
    if n_r < 2:
        raise ValueError(f"need at least 2 raters, got {n_r}")
    if n_i < 2:
        raise ValueError(f"need at least 2 images, got {n_i}")
    n = y.size
    if n == n_r or n == n_i:
        what = "rater" if n == n_r else "image"
        raise ValueError(f"every {what} has a single judgment: the variance components are not identified")
    sigma = _gao_owen(y, r_code, n_r, i_code, n_i)
    sig_a, sig_b, sig_e = (max(s, 0.0) for s in sigma)
    count_r = np.bincount(r_code, minlength=n_r).astype(np.float64)
    count_i = np.bincount(i_code, minlength=n_i).astype(np.float64)
    v_a = sig_a * float(count_r @ count_r) / n**2
    v_b = sig_b * float(count_i @ count_i) / n**2
    v_e = sig_e / n
    df = _satterthwaite(v_a, v_b, v_e, n_r - 1, n_i - 1, max(n - n_r - n_i + 1, 1))
    estimate = float(y.mean())
    se, lo, hi, p = _t_interval(estimate, v_a + v_b + v_e, df, confidence, null)
    return CrossedEstimate(
        estimate, se, df, lo, hi, p, null, VarianceComponents(sig_a, sig_b, sig_e), n_r, n_i
    )


def _gao_owen(y: np.ndarray, r: np.ndarray, n_r: int, i: np.ndarray, n_i: int) -> np.ndarray:
    """(σ²_A, σ²_B, σ²_E) solving the three moment equations of Gao & Owen (2017)."""
    n = y.size
    count_r = np.bincount(r, minlength=n_r).astype(np.float64)
    count_i = np.bincount(i, minlength=n_i).astype(np.float64)
    sum_r = np.bincount(r, weights=y, minlength=n_r)
    sum_i = np.bincount(i, weights=y, minlength=n_i)
    # Centre first: the sums of squares are differences of large numbers otherwise.
    yc = y - y.mean()
    sum_r = sum_r - count_r * y.mean()
    sum_i = sum_i - count_i * y.mean()
    total = float(yc @ yc)
    u_a = total - float(np.sum(sum_r**2 / count_r))
    u_b = total - float(np.sum(sum_i**2 / count_i))
    u_e = total
    m = np.array(
        [
            [0.0, n - n_r, n - n_r],
            [n - n_i, 0.0, n - n_i],
            [n - float(count_r @ count_r) / n, n - float(count_i @ count_i) / n, n - 1.0],
        ]
    )
    try:
        return np.linalg.solve(m, np.array([u_a, u_b, u_e]))
    except np.linalg.LinAlgError:
        raise ValueError("the design does not identify rater, image and residual variance") from None


def _satterthwaite(v_a: float, v_b: float, v_e: float, df_a: int, df_b: int, df_e: int) -> float:
    """Satterthwaite df of v_a + v_b + v_e written as m_A + m_B − m_E (see crossed_mean)."""
    terms: list[tuple[float, float]] = []
    if v_a > 0:
        terms.append((v_a + v_e, df_a))
    if v_b > 0:
        terms.append((v_b + v_e, df_b))
    if len(terms) != 1:
        terms.append((v_e, df_e))  # with 2 mean squares it enters negatively; alone it is the error
    denom = sum(m**2 / d for m, d in terms)
    total = v_a + v_b + v_e
    return math.inf if denom == 0 else float(total**2 / denom)
