"""Reader-study inference: estimates whose intervals treat raters and images as samples.

Every judgment in a Turing-test study is one rater looking at one image. Judgments that
share a rater (a sharp or a biased dermatologist) or an image (a convincing fake) are
correlated, so a binomial or DeLong interval that counts 4,000 judgments as 4,000
independent draws is far too narrow. The functions here generalise to the *populations*
of raters and images instead:

- :func:`crossed_mean` (from :mod:`turingtest.stats.crossed`, re-exported): the mean of
  per-judgment values with the two-way crossed random-effects variance (Gao & Owen 2017).
- :func:`reader_study_accuracy`: reader-averaged balanced accuracy, sensitivity and
  specificity with the Obuchowski–Rockette variance and Hillis degrees of freedom.
- :func:`reader_study_auc`: reader-averaged AUC of confidence ratings, same method.

All take 1-D aligned arrays, one entry per judgment, and return a frozen
:class:`CrossedEstimate`. Unbalanced designs (each rater sees a different subset, unequal
numbers of real and synthetic images) are the normal case. The work is ``np.bincount``
and one sort per call, no Python loop over judgments, so a million judgments take well
under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from turingtest.stats.arrays import factorize
from turingtest.stats.crossed import (
    CrossedEstimate,
    VarianceComponents,
    _aligned,
    _binary,
    _confidence,
    _finite,
    _ids,
    _t_interval,
    crossed_mean,
)

Method = Literal["logit", "hillis"]

__all__ = [
    "CrossedEstimate",
    "ReaderStudyAccuracy",
    "VarianceComponents",
    "crossed_mean",
    "reader_study_accuracy",
    "reader_study_auc",
]


# --------------------------------------------------------------------------- result type


@dataclass(frozen=True)
class ReaderStudyAccuracy(CrossedEstimate):
    """Balanced accuracy (the fields inherited) plus its two halves, each a CrossedEstimate.

    ``sensitivity`` = P(says synthetic | synthetic) = 1 − fooling rate;
    ``specificity`` = P(says real | real). Both are tested against 0.5 as well.
    """

    sensitivity: CrossedEstimate
    specificity: CrossedEstimate


def _method(method: str) -> Method:
    if method not in ("logit", "hillis"):
        raise ValueError(f"method must be 'logit' or 'hillis', got {method!r}")
    return method  # type: ignore[return-value]


# --------------------------------------------------------------------------- reader-averaged figures of merit


@dataclass(frozen=True)
class _Cells:
    """Judgments collapsed to one entry per (rater, image) cell, raters coded 0..J-1."""

    rater: np.ndarray
    image: np.ndarray
    synthetic: np.ndarray
    value: np.ndarray
    n_raters: int
    n_images: int


def _cells(value: np.ndarray, is_synthetic: np.ndarray, rater: np.ndarray, image: np.ndarray) -> _Cells:
    """Average repeated judgments of an image by a rater, and check each image has one kind."""
    r_code, n_r = _ids("rater", rater)
    i_code, n_i = _ids("image", image)
    kind_sum = np.bincount(i_code, weights=is_synthetic, minlength=n_i)
    kind_n = np.bincount(i_code, minlength=n_i)
    mixed = np.flatnonzero((kind_sum > 0) & (kind_sum < kind_n))
    if mixed.size:
        bad = image[i_code == mixed[0]][0]
        raise ValueError(f"image {bad.item()!r} is marked both synthetic and real in is_synthetic")
    key = r_code * n_i + i_code
    # Dense keys (a crossed design) take factorize's O(n) path instead of a sort.
    cell_key, inverse = factorize(key)
    is_syn_image = kind_sum > 0
    if cell_key.size == key.size:
        # Each rater judged each image once (the usual case): the judgments are the cells.
        # Everything downstream is order-free (bincounts, a lexsort), so skip the regrouping.
        return _Cells(r_code, i_code, is_syn_image[i_code], value.astype(np.float64), n_r, n_i)
    counts = np.bincount(inverse)
    cell_value = np.bincount(inverse, weights=value) / counts
    cell_image = cell_key % n_i
    return _Cells(
        rater=cell_key // n_i,
        image=cell_image,
        synthetic=is_syn_image[cell_image],
        value=cell_value,
        n_raters=n_r,
        n_images=n_i,
    )


def _keep_raters_with_both_kinds(cells: _Cells) -> _Cells:
    """Drop raters who saw fewer than 2 images of either kind; recode the rest 0..J-1.

    Such a rater has no balanced accuracy or AUC (or no jackknife for it).
    """
    n_syn = np.bincount(cells.rater, weights=cells.synthetic, minlength=cells.n_raters)
    n_all = np.bincount(cells.rater, minlength=cells.n_raters)
    keep_rater = (n_syn >= 2) & (n_all - n_syn >= 2)
    if not keep_rater.all():
        keep = keep_rater[cells.rater]
        new_code = np.cumsum(keep_rater) - 1
        cells = _Cells(
            rater=new_code[cells.rater[keep]],
            image=cells.image[keep],
            synthetic=cells.synthetic[keep],
            value=cells.value[keep],
            n_raters=int(keep_rater.sum()),
            n_images=cells.n_images,
        )
    if cells.n_raters < 2:
        raise ValueError(
            f"need at least 2 raters who each judged >= 2 real and >= 2 synthetic images, got {cells.n_raters}"
        )
    return cells


def _or_hillis(
    theta: np.ndarray,
    delta: np.ndarray,
    cells: _Cells,
    keep: np.ndarray | None,
    confidence: float,
    method: Method,
) -> CrossedEstimate:
    r"""Obuchowski–Rockette / Hillis single-modality interval for the mean of per-rater θ_j.

    ``delta`` holds, per cell (j, k) of ``cells`` (restricted to ``keep``), the jackknife
    difference θ_j^(−k) − θ_j (0 where j did not see k). With K_j the images rater j saw,
    the jackknife covariance of θ_j, θ_j' is Σ_k u_jk u_j'k with
    u_jk = δ_jk·sqrt((K_j−1)/K_j): the usual (K−1)/K Σ δδ when everybody saw the same K
    images (the statistics used here have Σ_k δ_jk = 0, so no centring term). Var_err is
    its mean diagonal, Cov2 its mean off-diagonal; both come from per-image and per-rater
    sums, never from the J×J matrix.
    """
    rater, image, synthetic = cells.rater, cells.image, cells.synthetic
    if keep is not None:
        rater, image, synthetic = rater[keep], image[keep], synthetic[keep]
    n_raters = theta.size
    k_j = np.bincount(rater, minlength=n_raters).astype(np.float64)
    u = delta * np.sqrt((k_j - 1) / k_j)[rater]
    diag = np.bincount(rater, weights=u * u, minlength=n_raters)
    per_image = np.bincount(image, weights=u, minlength=cells.n_images)
    # Cov2 = Σ_k w_k over images: image k's cross-rater products Σ_{j≠j'} u_jk u_j'k.
    w = (per_image**2 - np.bincount(image, weights=u * u, minlength=cells.n_images)) / (
        n_raters * (n_raters - 1)
    )
    image_synthetic = np.zeros(cells.n_images, dtype=bool)
    image_synthetic[image] = synthetic
    image_seen = np.bincount(image, minlength=cells.n_images) > 0
    var_err = float(diag.mean())
    cov2 = float(w.sum())
    ms_r = float(np.var(theta, ddof=1))
    cov2_plus = max(cov2, 0.0)
    variance = ms_r / n_raters + cov2_plus
    # Satterthwaite: df = 2 V² / Var(V̂). Hillis (2007) ddf_H counts only MS(R) (J − 1 df)
    # and treats Cov2 as known; method="logit" adds Var(Cov2) estimated from how the
    # per-image terms w_k vary within each kind of image (images are independent), which
    # matters with 10–20 images of a kind and 0/1 answers.
    var_estimate = 2 * (ms_r / n_raters) ** 2 / (n_raters - 1)
    if method == "logit" and cov2_plus > 0:
        for kind in (image_seen & image_synthetic, image_seen & ~image_synthetic):
            n_kind = int(np.count_nonzero(kind))
            if n_kind > 1:
                var_estimate += n_kind / (n_kind - 1) * float(np.sum((w[kind] - w[kind].mean()) ** 2))
    df = math.inf if var_estimate == 0 else 2 * variance**2 / var_estimate
    estimate = float(theta.mean())
    if method == "logit" and 0 < estimate < 1:
        se, lo, hi, p = _logit_t_interval(estimate, variance, df, confidence, 0.5)
    else:
        se, lo, hi, p = _t_interval(estimate, variance, df, confidence, 0.5)
    components = _per_unit_components(ms_r, var_err, cov2, k_j, rater, image, cells.n_images)
    return CrossedEstimate(estimate, se, df, lo, hi, p, 0.5, components, n_raters, int(image_seen.sum()))


def _logit_t_interval(
    estimate: float, variance: float, df: float, confidence: float, null: float
) -> tuple[float, float, float, float | None]:
    """t interval and p-value on the logit scale (delta method), mapped back to (0, 1).

    Per-rater proportions and AUCs near 1 have skewed sampling distributions whose
    variance shrinks as the estimate grows; on the logit scale the interval is
    nearly symmetric and stays inside (0, 1).
    """
    se = math.sqrt(max(variance, 0.0))
    scale = estimate * (1 - estimate)
    logit = math.log(estimate / (1 - estimate))
    _, lo, hi, p = _t_interval(logit, variance / scale**2, df, confidence, math.log(null / (1 - null)))
    return se, float(special.expit(lo)), float(special.expit(hi)), p


def _per_unit_components(
    ms_r: float,
    var_err: float,
    cov2: float,
    k_j: np.ndarray,
    cell_rater: np.ndarray,
    cell_image: np.ndarray,
    n_images: int,
) -> VarianceComponents:
    """OR quantities as per-unit σ²_R, σ²_I, σ²_E (see VarianceComponents).

    For a per-rater mean of K_j image values, Var_err ≈ (σ²_I + σ²_E)/K̃ (K̃: harmonic
    mean of K_j) and Cov2 ≈ σ²_I · mean_{j≠j'} n_jj'/(K_j K_j') (n_jj': images both saw),
    which is σ²_I/I when everybody saw the same I images; σ²_R = MS(R) − Var_err + Cov2.
    """
    n_raters = k_j.size
    inv_k = 1.0 / k_j
    per_image = np.bincount(cell_image, weights=inv_k[cell_rater], minlength=n_images)
    overlap = (float(per_image @ per_image) - float(inv_k.sum())) / (n_raters * (n_raters - 1))
    image = max(cov2, 0.0) / overlap if overlap > 0 else 0.0
    k_harmonic = 1.0 / float(inv_k.mean())
    residual = max(var_err * k_harmonic - image, 0.0)
    rater = max(ms_r - var_err + cov2, 0.0)
    return VarianceComponents(rater=rater, image=image, residual=residual)


def _per_kind_means(cells: _Cells, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-rater mean of ``cells.value`` over the cells where ``kind`` is true, and counts."""
    n = np.bincount(cells.rater, weights=kind, minlength=cells.n_raters)
    s = np.bincount(cells.rater, weights=cells.value * kind, minlength=cells.n_raters)
    return s / n, n


def reader_study_accuracy(
    says_synthetic: np.ndarray,
    is_synthetic: np.ndarray,
    rater: np.ndarray,
    image: np.ndarray,
    confidence: float = 0.95,
    method: Method = "logit",
) -> ReaderStudyAccuracy:
    r"""Reader-averaged balanced accuracy with an interval over raters and images.

    For rater j, with :math:`m_j` synthetic and :math:`n_j` real images seen,

    .. math::

        \mathrm{Se}_j = \frac{1}{m_j}\sum_{k\,\mathrm{synthetic}} x_{jk},\quad
        \mathrm{Sp}_j = \frac{1}{n_j}\sum_{k\,\mathrm{real}} (1-x_{jk}),\quad
        \theta_j = \tfrac12(\mathrm{Se}_j + \mathrm{Sp}_j)

    (:math:`x_{jk}` = 1 when j called image k synthetic) and the estimate is
    :math:`\bar\theta = \frac1J\sum_j\theta_j`. Chance is 0.5 whatever the real:synthetic
    ratio and whatever the raters' bias towards "synthetic", which raw accuracy is not.
    The variance is the Obuchowski–Rockette single-modality form with Hillis degrees of
    freedom,

    .. math::

        \widehat{\operatorname{Var}}(\bar\theta) = \frac{MS(R)}{J} + \max(\mathrm{Cov}_2, 0),
        \qquad \mathrm{df} = \frac{(MS(R) + J\max(\mathrm{Cov}_2,0))^2}{MS(R)^2/(J-1)},

    :math:`MS(R)` the sample variance of the :math:`\theta_j` and :math:`\mathrm{Cov}_2`
    the mean jackknife-over-images covariance of two different raters' :math:`\theta`
    (images resampled within their kind, raters crossed). Sensitivity and specificity get
    the same treatment on their own kind of image.

    ``method="hillis"`` is exactly that (the single-treatment analysis of OR-DBM MRMC and
    RJafroc). The default ``method="logit"`` keeps the variance but (a) forms the t
    interval and p-value on the logit scale (delta method: se / (θ̄(1 − θ̄))) and maps it
    back, because per-rater proportions near 1 are skewed, and (b) uses the
    Satterthwaite df :math:`2\hat V^2 / \widehat{\operatorname{Var}}(\hat V)` with
    :math:`\widehat{\operatorname{Var}}(\hat V) = 2(MS(R)/J)^2/(J-1) +
    \widehat{\operatorname{Var}}(\mathrm{Cov}_2)`, the last from the spread of the
    per-image terms of :math:`\mathrm{Cov}_2` within each kind; ddf_H is the special case
    that treats :math:`\mathrm{Cov}_2` as known, which is optimistic with few images. In
    simulated studies (``benchmarks/coverage.py``) the default covers 93–96%.

    Parameters
    ----------
    says_synthetic, is_synthetic : (n,) arrays of bool or 0/1
        The answer of each judgment and the truth of its image.
    rater, image : (n,) arrays of int
        Ids of the rater and of the image of each judgment (any integers).
    confidence : float
        Coverage of the two-sided t intervals.
    method : {"logit", "hillis"}
        Interval scale and df (see above); the variance is the same.

    Returns
    -------
    ReaderStudyAccuracy
        Balanced accuracy (p-value against 0.5) with ``sensitivity`` and ``specificity``.

    Notes
    -----
    Repeated judgments of one image by one rater are averaged first. Raters who judged
    fewer than 2 images of either kind have no jackknife and are left out (``n_raters``
    says how many remain). Each rater may see a different subset of images: the
    covariance then only involves the images two raters share. The interval assumes the
    raters and images are random samples from their populations; Hillis (2007) found it
    close to nominal from 3 readers up. ``ValueError`` for one kind of image only, an
    image marked both kinds, or fewer than 2 usable raters.

    References
    ----------
    Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for
    multiple readers and multiple tests: an ANOVA approach with dependent observations.
    Commun Stat Simul Comput 24:285–308. DOI:10.1080/03610919508813243.
    Hillis SL (2007). A comparison of denominator degrees of freedom methods for
    multiple observer ROC analysis. Stat Med 26:596–619. DOI:10.1002/sim.2532.
    Hillis SL, Berbaum KS, Metz CE (2008). Recent developments in the
    Dorfman-Berbaum-Metz procedure for multireader ROC study analysis. Acad Radiol
    15:647–661. DOI:10.1016/j.acra.2007.12.015.

    Examples
    --------
    >>> rater = np.repeat([1, 2, 3], 6)
    >>> image = np.tile([1, 2, 3, 4, 5, 6], 3)
    >>> is_syn = np.tile([1, 1, 1, 0, 0, 0], 3)
    >>> says = np.array([1, 1, 0, 0, 0, 1,  1, 1, 1, 0, 1, 0,  1, 0, 1, 0, 0, 0])
    >>> ba = reader_study_accuracy(says, is_syn, rater, image)
    >>> round(ba.estimate, 3), round(ba.sensitivity.estimate, 3), round(ba.specificity.estimate, 3)
    (0.778, 0.778, 0.778)
    >>> round(ba.se, 3), round(ba.df, 2), round(ba.p_value, 3)
    (0.056, 2.0, 0.06)
    """
    confidence, method = _confidence(confidence), _method(method)
    says = _binary("says_synthetic", np.asarray(says_synthetic)).astype(np.float64)
    cells = _reader_cells("says_synthetic", says, is_synthetic, rater, image)
    syn = cells.synthetic
    se_j, m_j = _per_kind_means(cells, syn)
    says_real_j, n_j = _per_kind_means(cells, ~syn)
    sp_j = 1.0 - says_real_j
    # Leaving out synthetic image k moves Se_j by (Se_j − x_jk)/(m_j − 1); real image l
    # moves Sp_j by (Sp_j − (1 − x_jl))/(n_j − 1), i.e. −(says_real_j − x_jl)/(n_j − 1).
    r = cells.rater
    d_se = np.where(syn, (se_j[r] - cells.value) / (m_j[r] - 1), 0.0)
    d_sp = np.where(~syn, -(says_real_j[r] - cells.value) / (n_j[r] - 1), 0.0)
    sens = _or_hillis(se_j, d_se[syn], cells, syn, confidence, method)
    spec = _or_hillis(sp_j, d_sp[~syn], cells, ~syn, confidence, method)
    ba = _or_hillis((se_j + sp_j) / 2, (d_se + d_sp) / 2, cells, None, confidence, method)
    return ReaderStudyAccuracy(**vars(ba), sensitivity=sens, specificity=spec)


def _reader_cells(
    name: str, values: np.ndarray, is_synthetic: np.ndarray, rater: np.ndarray, image: np.ndarray
) -> _Cells:
    """Checked, cell-averaged judgments of the raters who saw >= 2 images of each kind."""
    arrs = _aligned(**{name: values}, is_synthetic=is_synthetic, rater=rater, image=image)
    truth = _binary("is_synthetic", arrs["is_synthetic"])
    if truth.all():
        raise ValueError("is_synthetic marks every image synthetic: the real images are missing")
    if not truth.any():
        raise ValueError("is_synthetic marks every image real: the synthetic images are missing")
    return _keep_raters_with_both_kinds(_cells(arrs[name], truth, arrs["rater"], arrs["image"]))


def _midranks(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """1-based midrank of each value within its group (ties share the mean rank)."""
    order = np.lexsort((values, groups))
    v, g = values[order], groups[order]
    n = v.size
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_run = new_group | np.r_[True, v[1:] != v[:-1]]
    run_start = np.flatnonzero(new_run)
    run_end = np.r_[run_start[1:], n]
    run_id = np.cumsum(new_run) - 1
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    mid = (run_start[run_id] + run_end[run_id] - 1) / 2 - group_start + 1
    out = np.empty(n)
    out[order] = mid
    return out


def reader_study_auc(
    score: np.ndarray,
    is_synthetic: np.ndarray,
    rater: np.ndarray,
    image: np.ndarray,
    confidence: float = 0.95,
    method: Method = "logit",
) -> CrossedEstimate:
    r"""Reader-averaged ROC AUC of confidence ratings, Obuchowski–Rockette–Hillis interval.

    For rater j the trapezoidal (Wilcoxon) AUC over the images j rated,

    .. math::

        A_j = \frac{1}{m_j n_j}\sum_{k\,\mathrm{synthetic}}\sum_{l\,\mathrm{real}}
            \big[\,\mathbb 1(s_{jk} > s_{jl}) + \tfrac12\mathbb 1(s_{jk} = s_{jl})\big],

    higher scores meaning "more surely synthetic"; the estimate is the mean of the
    :math:`A_j` and its variance and df are those of :func:`reader_study_accuracy`
    (Obuchowski & Rockette 1995 with Hillis 2007 ddf for one modality):
    :math:`MS(R)/J + \max(\mathrm{Cov}_2, 0)`. The covariances come from jackknifing
    images; leaving out one image changes :math:`A_j` by a DeLong structural component,
    so the whole jackknife costs one sort. With every rater reading every image this is
    exactly the "single-treatment" analysis of OR-DBM MRMC and RJafroc with jackknife
    covariances (``method="hillis"``); the default ``method="logit"`` adjusts the interval
    and df as described in :func:`reader_study_accuracy`. Chance is 0.5; the p-value is
    two-sided against it.

    Parameters
    ----------
    score : (n,) array of float
        Confidence-signed rating of each judgment (e.g. −3 … +3 or 1 … 6).
    is_synthetic : (n,) array of bool or 0/1
        Truth of each judgment's image.
    rater, image : (n,) arrays of int
        Ids of the rater and of the image of each judgment (any integers).
    confidence : float
        Coverage of the two-sided t interval.
    method : {"logit", "hillis"}
        Interval scale and df, as in :func:`reader_study_accuracy`.

    Returns
    -------
    CrossedEstimate

    Notes
    -----
    Repeated ratings of one image by one rater are averaged first; raters with fewer than
    2 images of either kind are left out. ``ValueError`` for one kind of image only or
    fewer than 2 usable raters.

    References
    ----------
    Obuchowski NA, Rockette HE (1995). Commun Stat Simul Comput 24:285–308.
    DOI:10.1080/03610919508813243.
    Hillis SL (2007). Stat Med 26:596–619. DOI:10.1002/sim.2532.
    DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
    correlated receiver operating characteristic curves: a nonparametric approach.
    Biometrics 44:837–845. DOI:10.2307/2531595.

    Examples
    --------
    >>> rater = np.repeat([1, 2, 3], 6)
    >>> image = np.tile([1, 2, 3, 4, 5, 6], 3)
    >>> is_syn = np.tile([1, 1, 1, 0, 0, 0], 3)
    >>> score = np.array([5, 4, 2, 1, 3, 2,  6, 5, 4, 3, 4, 1,  4, 2, 5, 3, 1, 2])
    >>> auc = reader_study_auc(score, is_syn, rater, image)
    >>> round(auc.estimate, 3), round(auc.se, 3), round(auc.df, 2)
    (0.87, 0.037, 2.0)
    """
    confidence, method = _confidence(confidence), _method(method)
    cells = _reader_cells("score", _finite("score", np.asarray(score)), is_synthetic, rater, image)
    syn = cells.synthetic
    r = cells.rater
    m_j = np.bincount(r, weights=syn, minlength=cells.n_raters)
    n_j = np.bincount(r, minlength=cells.n_raters) - m_j
    # (# other-kind images below + half the ties) = midrank among all − midrank in own kind.
    below_other = _midranks(cells.value, r) - _midranks(cells.value, 2 * r + syn)
    component = np.where(syn, below_other / n_j[r], (m_j[r] - below_other) / m_j[r])
    auc_j = np.bincount(r, weights=component * syn, minlength=cells.n_raters) / m_j
    size = np.where(syn, m_j[r], n_j[r])
    delta = (auc_j[r] - component) / (size - 1)
    return _or_hillis(auc_j, delta, cells, None, confidence, method)
