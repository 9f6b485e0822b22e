"""Fréchet (FID-style) distance between Gaussians fitted to two feature sets."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.linalg

from generator.metrics._arrays import as_2d


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ``ddof=1``) covariance of ``features`` of shape (N, D), N ≥ 2."""
    arr = as_2d(features, "features")
    if arr.shape[0] < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {arr.shape[0]}")
    return arr.mean(axis=0), np.atleast_2d(np.cov(arr, rowvar=False))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    .. math:: d^2 = \\lVert \\mu_1-\\mu_2 \\rVert^2 + \\operatorname{Tr}(\\Sigma_1 + \\Sigma_2
              - 2(\\Sigma_1\\Sigma_2)^{1/2})

    Parameters
    ----------
    mu1, mu2 : array (D,)
    sigma1, sigma2 : array (D, D), symmetric positive semi-definite.
    eps : diagonal offset added to both covariances when the matrix square root of
        their product is not finite (near-singular covariances, e.g. fewer samples
        than feature dimensions) — the fallback used by the reference FID code.

    Returns
    -------
    float, the *squared* distance (what "FID" reports). Tiny imaginary parts that
    ``sqrtm`` produces from rounding are discarded; large ones raise ValueError.

    References: Dowson & Landau 1982, doi:10.1016/0047-259X(82)90077-X; Heusel et al.
    2017, arXiv:1706.08500.

    >>> round(frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]), 6)
    2.0
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different shapes: {mu1.shape} vs {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2

    with warnings.catch_warnings():
        # singular products are expected (n < D); non-finite results take the fallback below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(d) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag)) if d else 0.0
        scale = max(1.0, float(np.max(np.abs(np.diagonal(covmean).real))))
        if imag > 1e-3 * scale:
            raise ValueError(f"matrix square root has a large imaginary component ({imag:.3g})")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    if not math.isfinite(value):
        raise ValueError("Fréchet distance is not finite (degenerate covariances)")
    return value
