"""Kernel (KID-style) distance: unbiased MMD² with the cubic polynomial kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.metrics._arrays import as_2d


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x·y / d + 1)^3, the KID kernel."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² (U-statistic) between samples ``x`` (m, D) and ``y`` (n, D), m, n ≥ 2.

    .. math:: \\frac{1}{m(m-1)}\\sum_{i\\ne j}k(x_i,x_j) + \\frac{1}{n(n-1)}\\sum_{i\\ne j}k(y_i,y_j)
              - \\frac{2}{mn}\\sum_{i,j}k(x_i,y_j)

    Dropping the diagonal terms k(x_i, x_i) is what makes it unbiased (expectation 0
    when both samples come from one distribution); it can therefore be negative.
    """
    m, n = x.shape[0], y.shape[0]
    kxx = _polynomial_kernel(x, x)
    kyy = _polynomial_kernel(y, y)
    kxy = _polynomial_kernel(x, y)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


@dataclass(frozen=True)
class KernelDistance:
    """KID's estimate and how its uncertainty was computed.

    ``std_method`` is ``"subsets"`` (SD over random subsets of ``subset_size`` rows of each
    set, the reference method; both sets are larger than ``subset_size``, so subsets differ)
    or ``"bootstrap"`` (a set has at most ``subset_size`` rows, so subsets would all be the
    whole set and their SD a meaningless 0: SD over bootstrap resamples of both sets instead).
    """

    mean: float
    std: float
    std_method: str
    n_draws: int
    subset_size: int  # rows per set in one draw (the smaller of subset_size and the set size)

    def describe(self) -> str:
        if self.std_method == "subsets":
            return f"SD over {self.n_draws} random subsets of {self.subset_size} rows per set"
        return (
            f"SD over {self.n_draws} bootstrap resamples of both sets (with replacement, "
            "pairs of one image with its own copy left out)"
        )


def _mmd2_without_ties(a: np.ndarray, ia: np.ndarray, b: np.ndarray, ib: np.ndarray) -> float:
    """Unbiased MMD² of the rows ``a[ia]`` and ``b[ib]`` drawn with replacement.

    A row drawn twice would pair with its own copy, and k(x, x) is not a sample of k(x, x')
    for independent x, x' — it biases the within-set terms upwards. Leaving out the pairs
    of one original row (not just the diagonal) keeps every draw an unbiased estimate.
    """
    xa, xb = a[ia], b[ib]
    same_a = ia[:, None] == ia[None, :]
    same_b = ib[:, None] == ib[None, :]
    if same_a.all() or same_b.all():  # one row drawn every time: no pair to average
        return float("nan")
    term_x = _polynomial_kernel(xa, xa)[~same_a].mean()
    term_y = _polynomial_kernel(xb, xb)[~same_b].mean()
    return float(term_x + term_y - 2.0 * _polynomial_kernel(xa, xb).mean())


def kernel_distance_estimate(
    features_a: Any, features_b: Any, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> KernelDistance:
    """:func:`kernel_distance` with the method of its std: see :class:`KernelDistance`.

    When both sets have more than ``subset_size`` rows: the reference method — each of
    ``n_subsets`` draws takes ``subset_size`` rows without replacement from each set; the
    mean and the (``ddof=0``) SD are over draws. Otherwise the mean is the unbiased MMD² of
    the sets (capped at ``subset_size`` rows each: the first draw's rows when a set is
    larger) and the SD is over ``n_subsets`` bootstrap draws, each resampling ``m`` rows of
    each set with replacement (``m`` = the smaller of its size and ``subset_size``) — the
    sampling SD of the estimate at that size.
    """
    a = as_2d(features_a, "features_a")
    b = as_2d(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be ≥ 1, got {n_subsets}")
    if min(subset_size, a.shape[0], b.shape[0]) < 2:
        raise ValueError(
            f"kernel distance needs at least 2 samples in each set, got {a.shape[0]} and {b.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    if min(a.shape[0], b.shape[0]) > subset_size:
        for i in range(n_subsets):
            xa = a[rng.choice(a.shape[0], subset_size, replace=False)]
            xb = b[rng.choice(b.shape[0], subset_size, replace=False)]
            values[i] = mmd2_unbiased(xa, xb)
        return KernelDistance(float(values.mean()), float(values.std()), "subsets", n_subsets, subset_size)
    ma, mb = min(subset_size, a.shape[0]), min(subset_size, b.shape[0])
    # a set larger than subset_size contributes one fixed subset to the mean
    a_fixed = a[rng.choice(a.shape[0], ma, replace=False)] if ma < a.shape[0] else a
    b_fixed = b[rng.choice(b.shape[0], mb, replace=False)] if mb < b.shape[0] else b
    mean = mmd2_unbiased(a_fixed, b_fixed)
    for i in range(n_subsets):
        values[i] = _mmd2_without_ties(a, rng.integers(0, a.shape[0], ma), b, rng.integers(0, b.shape[0], mb))
    values = values[np.isfinite(values)]  # draws of tiny sets may repeat one row only
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return KernelDistance(float(mean), std, "bootstrap", int(values.size), min(ma, mb))


def kernel_distance(
    features_a: Any, features_b: Any, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel (Inception-style) distance: unbiased MMD² with its standard deviation.

    Unbiased MMD² (:func:`mmd2_unbiased`) with the cubic polynomial kernel
    k(x, y) = (xᵀy/D + 1)³. Unlike FID the estimator is unbiased, so it can be compared
    across sample sizes and is ≈ 0 (possibly negative) for two samples of one distribution.

    Returns ``(mean, std)``. How the std is computed depends on the set sizes (see
    :func:`kernel_distance_estimate`, which also returns the method): with both sets larger
    than ``subset_size``, mean and std (``ddof=0``, as the reference code reports it: the
    spread of one subset's estimate, not the standard error) over ``n_subsets`` random
    subsets of ``subset_size`` rows; with a smaller set, subsets would all be the whole set
    (std 0), so the std comes from bootstrap resamples of both sets instead.

    Reference: Bińkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs",
    arXiv:1801.01401.
    """
    estimate = kernel_distance_estimate(features_a, features_b, n_subsets, subset_size, seed)
    return estimate.mean, estimate.std
