"""HYPE∞ error rate and the two-way (raters × images) bootstrap, plain and stratified."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from turingtest.stats.arrays import _as_1d, _confidence, _factorize, factorize


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
