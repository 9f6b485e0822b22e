"""Diversity inside one set: mean pairwise feature distance and MS-SSIM.

A generator that repeats itself can fool raters one image at a time; these numbers
show it, relative to the same quantity on the real set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from generator.metrics._arrays import as_2d, pairwise_distances


def mean_pairwise_distance(features: Any) -> float:
    """Mean Euclidean distance between distinct samples of one set (a diversity measure).

    Only meaningful relative to the same quantity on real images in the same
    feature space: we report ``fake / real`` as ``diversity_ratio`` (≈ 1 is good,
    ≪ 1 means the generator repeats itself).
    """
    arr = as_2d(features, "features")
    n = arr.shape[0]
    if n < 2:
        raise ValueError("diversity needs at least 2 samples")
    d = pairwise_distances(arr, arr)
    return float(d.sum() / (n * (n - 1)))


# ------------------------------------------------------------------------ MS-SSIM

_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003, doi:10.1109/ACSSC.2003.1292216).

    ``x``, ``y``: (B, C, H, W) in [0, data_range]. Returns (B,) values in about [0, 1]
    (1 = identical). Uses the standard 11-tap Gaussian window (σ = 1.5) and the
    five published scale weights; images too small for five scales use as many
    scales as fit (each scale must be at least ``win_size`` pixels) with the weights
    renormalised, so values at 64 px are comparable only with other 64 px values.
    Negative contrast-structure terms are clamped at 0 (as common implementations
    do) so the fractional powers stay real.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ms_ssim needs two (B, C, H, W) tensors of one shape, got {x.shape} and {y.shape}")
    x = x.to(torch.float32)  # float64 depthwise convolutions are ~10× slower on CPU
    y = y.to(torch.float32)
    min_side = min(x.shape[-2:])
    n_scales = 1
    while n_scales < len(_MS_SSIM_WEIGHTS) and min_side // (2**n_scales) >= win_size:
        n_scales += 1
    if min_side < win_size:
        raise ValueError(f"images must be at least {win_size} px for SSIM, got {min_side}")
    weights = torch.tensor(_MS_SSIM_WEIGHTS[:n_scales], dtype=torch.float32)
    weights = weights / weights.sum()
    c = x.shape[1]
    g = _gaussian_window(win_size)
    win_h = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    win_v = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, win_h, groups=c), win_v, groups=c)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    values = []
    for scale in range(n_scales):
        mu_x, mu_y = blur(x), blur(y)
        sxx = blur(x * x) - mu_x**2
        syy = blur(y * y) - mu_y**2
        sxy = blur(x * y) - mu_x * mu_y
        cs = (2 * sxy + c2) / (sxx + syy + c2)  # (B, C, h, w)
        if scale == n_scales - 1:
            lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
            values.append((lum * cs).mean(dim=(1, 2, 3)))
        else:
            values.append(cs.mean(dim=(1, 2, 3)))
            x = F.avg_pool2d(x, 2)
            y = F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=1).clamp(min=0)  # (B, n_scales)
    return torch.prod(stacked ** weights[None, :], dim=1).double()


def mean_pairwise_ms_ssim(images: torch.Tensor, n_pairs: int = 200, seed: int = 0) -> float:
    """Mean MS-SSIM over random distinct pairs of ``images`` (N, C, H, W) in [0, 1].

    Higher means *less* diverse (1 = all images identical). Compare with the same
    quantity on the real set: a synthetic value well above the real one signals
    mode collapse.
    """
    n = images.shape[0]
    if n < 2:
        raise ValueError("MS-SSIM diversity needs at least 2 images")
    rng = np.random.default_rng(seed)
    all_pairs = n * (n - 1) // 2
    if all_pairs <= n_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        i = rng.integers(0, n, size=n_pairs)
        j = (i + rng.integers(1, n, size=n_pairs)) % n
    vals = []
    for start in range(0, len(i), 64):
        sl = slice(start, start + 64)
        vals.append(ms_ssim(images[i[sl]], images[j[sl]]))
    return float(torch.cat(vals).mean())
