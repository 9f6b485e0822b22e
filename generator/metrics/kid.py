"""Kernel (KID-style) distance: unbiased MMD² with the cubic polynomial kernel."""

from __future__ import annotations

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


def kernel_distance(
    features_a: Any, features_b: Any, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel (Inception-style) distance: mean and std of unbiased MMD² over random subsets.

    Each of ``n_subsets`` draws takes ``subset_size`` rows (without replacement,
    capped at the smaller set) from each set and computes :func:`mmd2_unbiased` with
    the cubic polynomial kernel k(x, y) = (xᵀy/D + 1)³. Unlike FID the estimator is
    unbiased, so it can be compared across sample sizes and is ≈ 0 (possibly
    negative) for two samples of one distribution.

    Returns ``(mean, std)`` (std with ``ddof=0`` over subsets, as the reference code
    reports it: the spread of one subset's estimate, not the standard error).

    Reference: Bińkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs",
    arXiv:1801.01401.
    """
    a = as_2d(features_a, "features_a")
    b = as_2d(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be ≥ 1, got {n_subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(
            f"kernel distance needs at least 2 samples in each set, got {a.shape[0]} and {b.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for i in range(n_subsets):
        xa = a[rng.choice(a.shape[0], m, replace=False)]
        xb = b[rng.choice(b.shape[0], m, replace=False)]
        values[i] = mmd2_unbiased(xa, xb)
    return float(values.mean()), float(values.std())
