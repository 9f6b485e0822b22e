"""Objective fidelity metrics between a set of real and a set of synthetic images.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) judged its images three ways: a
Turing test with dermatologists, distribution metrics, and a downstream
augmentation experiment. This module is the second: plain numpy/torch functions
on feature arrays, plus pluggable feature extractors and a small CLI::

    python -m generator.metrics --real DIR --fake DIR [--extractor classifier:PATH | inception:PATH]

Metrics (all computed on features, so *the feature space decides what they mean*):

* :func:`frechet_distance` — FID-style distance between the Gaussians fitted to
  the two feature sets (Heusel et al. 2017, arXiv:1706.08500).
* :func:`kernel_distance` — KID-style unbiased MMD² with the cubic polynomial
  kernel, mean and standard deviation over random subsets (Bińkowski et al.
  2018, arXiv:1801.01401).
* :func:`precision_recall` — k-NN manifold precision and recall (Kynkäänniemi
  et al. 2019, arXiv:1904.06991).
* :func:`mean_pairwise_distance` and :func:`ms_ssim` — diversity inside one set;
  a generator that repeats itself can fool raters one image at a time.

A :class:`FidelityResult` records which extractor (name + sha256 of its weights)
produced it and refuses to be compared with a result from another extractor:
FID in a 128-d classifier space and FID in Inception's 2048-d space are different
quantities with different scales.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


# --------------------------------------------------------------------------- maths


def _as_2d(features: Any, name: str) -> np.ndarray:
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ``ddof=1``) covariance of ``features`` of shape (N, D), N ≥ 2."""
    arr = _as_2d(features, "features")
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
    a = _as_2d(features_a, "features_a")
    b = _as_2d(features_b, "features_b")
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


def _pairwise_distances(x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distances (len(x), len(y)), computed in row chunks to bound memory."""
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    out = [torch.cdist(tx[i : i + chunk], ty) for i in range(0, tx.shape[0], chunk)]
    return torch.cat(out).numpy()


def _knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each sample to its k-th nearest neighbour in the same set (self excluded)."""
    d = _pairwise_distances(features, features)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def precision_recall(real_features: Any, fake_features: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of the real and synthetic manifolds.

    Each set's manifold is the union of balls centred on its samples with radius
    the distance to the sample's k-th nearest neighbour in the same set.

    * precision = fraction of fake samples inside the *real* manifold (fidelity);
    * recall = fraction of real samples inside the *fake* manifold (coverage).

    A point exactly on a ball's boundary counts as inside (``<=``).

    Reference: Kynkäänniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved
    Precision and Recall Metric for Assessing Generative Models", arXiv:1904.06991.
    """
    real = _as_2d(real_features, "real_features")
    fake = _as_2d(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")

    def coverage(manifold: np.ndarray, probes: np.ndarray) -> float:
        radii = _knn_radii(manifold, k)  # (M,)
        d = _pairwise_distances(probes, manifold)  # (P, M)
        return float(np.mean(np.any(d <= radii[None, :] * (1 + 1e-12), axis=1)))

    return coverage(real, fake), coverage(fake, real)


def mean_pairwise_distance(features: Any) -> float:
    """Mean Euclidean distance between distinct samples of one set (a diversity measure).

    Only meaningful relative to the same quantity on real images in the same
    feature space: we report ``fake / real`` as ``diversity_ratio`` (≈ 1 is good,
    ≪ 1 means the generator repeats itself).
    """
    arr = _as_2d(features, "features")
    n = arr.shape[0]
    if n < 2:
        raise ValueError("diversity needs at least 2 samples")
    d = _pairwise_distances(arr, arr)
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


# ------------------------------------------------------------------ extractors


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FeatureExtractor(Protocol):
    """What the metrics need from a feature space: identity and a batch function."""

    name: str  # e.g. "classifier" or "inception-v3-fid"
    sha256: str  # sha256 of the weights file: two results compare only if these match
    feature_dim: int

    def extract(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """(N, feature_dim) float64 features of RGB images."""
        ...


def load_extractor(spec: str, device: str = "auto") -> FeatureExtractor:
    """Build an extractor from ``classifier:PATH`` or ``inception:PATH`` (``inception`` alone
    reads the path from ``DERMGAN_INCEPTION_WEIGHTS``)."""
    kind, _, path = spec.partition(":")
    if kind == "classifier":
        if not path:
            raise ValueError("--extractor classifier:PATH needs the classifier checkpoint's path")
        from generator.classifier import ClassifierExtractor

        return ClassifierExtractor.from_path(path, device=device)
    if kind == "inception":
        from generator.inception import InceptionExtractor

        return InceptionExtractor.from_path(path or None, device=device)
    raise ValueError(f"unknown extractor {spec!r}: use classifier:PATH or inception[:PATH]")


# ----------------------------------------------------------------------- results


class IncomparableResultsError(ValueError):
    """Raised when asked to compare numbers computed in different feature spaces."""


@dataclass(frozen=True)
class SetMetrics:
    """Metrics for one (real, fake) pair of feature sets; None where too few samples."""

    n_real: int
    n_fake: int
    fid: float | None = None
    kid_mean: float | None = None
    kid_std: float | None = None
    precision: float | None = None
    recall: float | None = None
    diversity_fake: float | None = None  # mean pairwise feature distance among fakes
    diversity_real: float | None = None
    diversity_ratio: float | None = None  # fake / real; ≪ 1 = the generator repeats itself
    ms_ssim_fake: float | None = None  # mean pairwise MS-SSIM among fakes (higher = less diverse)
    ms_ssim_real: float | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FidelityResult:
    """Overall and per-condition metrics plus the identity of the feature space used."""

    extractor_name: str
    extractor_sha256: str
    feature_dim: int
    overall: SetMetrics
    per_condition: dict[str, SetMetrics] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def check_comparable(self, other: FidelityResult) -> None:
        if (self.extractor_name, self.extractor_sha256) != (other.extractor_name, other.extractor_sha256):
            raise IncomparableResultsError(
                "results come from different feature extractors "
                f"({self.extractor_name} {self.extractor_sha256[:12]} vs "
                f"{other.extractor_name} {other.extractor_sha256[:12]}); their numbers are not comparable"
            )

    def difference(self, other: FidelityResult) -> dict[str, float | None]:
        """``self - other`` for the overall metrics; refuses different extractors."""
        self.check_comparable(other)
        out: dict[str, float | None] = {}
        for key in ("fid", "kid_mean", "precision", "recall", "diversity_ratio"):
            a, b = getattr(self.overall, key), getattr(other.overall, key)
            out[key] = None if a is None or b is None else a - b
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["overall"]["notes"] = list(self.overall.notes)
        for m in d["per_condition"].values():
            m["notes"] = list(m["notes"])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FidelityResult:
        def sm(d: dict[str, Any]) -> SetMetrics:
            return SetMetrics(**{**d, "notes": tuple(d.get("notes", ()))})

        return cls(
            extractor_name=data["extractor_name"],
            extractor_sha256=data["extractor_sha256"],
            feature_dim=data["feature_dim"],
            overall=sm(data["overall"]),
            per_condition={k: sm(v) for k, v in data.get("per_condition", {}).items()},
            settings=dict(data.get("settings", {})),
        )


def set_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    real_pixels: torch.Tensor | None = None,
    fake_pixels: torch.Tensor | None = None,
) -> SetMetrics:
    """Every metric that the sample sizes allow, with a note for each one skipped."""
    notes: list[str] = []
    values: dict[str, Any] = {}
    n_real, n_fake = real.shape[0], fake.shape[0]
    if n_real >= 2 and n_fake >= 2:
        mu1, s1 = feature_statistics(real)
        mu2, s2 = feature_statistics(fake)
        values["fid"] = frechet_distance(mu1, s1, mu2, s2)
        if min(n_real, n_fake) <= real.shape[1]:
            notes.append(
                f"FID from {min(n_real, n_fake)} samples in {real.shape[1]} dimensions: covariances are "
                "singular and FID is strongly biased upwards at small n; compare only at equal n"
            )
        values["kid_mean"], values["kid_std"] = kernel_distance(
            real, fake, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        values["diversity_fake"] = mean_pairwise_distance(fake)
        values["diversity_real"] = mean_pairwise_distance(real)
        if values["diversity_real"] > 0:
            values["diversity_ratio"] = values["diversity_fake"] / values["diversity_real"]
    else:
        notes.append("FID, KID and diversity need at least 2 real and 2 synthetic images")
    if n_real > k and n_fake > k:
        values["precision"], values["recall"] = precision_recall(real, fake, k=k)
    else:
        notes.append(f"precision/recall need more than k={k} images per set")
    if fake_pixels is not None and fake_pixels.shape[0] >= 2:
        values["ms_ssim_fake"] = mean_pairwise_ms_ssim(fake_pixels, seed=seed)
    if real_pixels is not None and real_pixels.shape[0] >= 2:
        values["ms_ssim_real"] = mean_pairwise_ms_ssim(real_pixels, seed=seed)
    return SetMetrics(n_real=n_real, n_fake=n_fake, notes=tuple(notes), **values)


def images_to_tensor(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """(N, 3, size, size) float tensor in [0, 1], bilinear-resized (for MS-SSIM)."""
    arrs = [
        np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) for im in images
    ]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 255.0


def compute_fidelity(
    *,
    real_features: np.ndarray,
    fake_features: np.ndarray,
    extractor_name: str,
    extractor_sha256: str,
    real_labels: Sequence[str | None] | None = None,
    fake_labels: Sequence[str | None] | None = None,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    real_pixels: torch.Tensor | None = None,
    fake_pixels: torch.Tensor | None = None,
) -> FidelityResult:
    """Overall metrics and, where labels are given, the same per condition.

    Per-condition metrics use only that condition's real and synthetic images, so
    they answer "does the synthetic melanoma look like real melanoma", which the
    overall numbers can hide when the condition mix differs between the sets.
    """
    real = _as_2d(real_features, "real_features")
    fake = _as_2d(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    common = dict(k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    overall = set_metrics(real, fake, real_pixels=real_pixels, fake_pixels=fake_pixels, **common)
    per_condition: dict[str, SetMetrics] = {}
    if real_labels is not None and fake_labels is not None:
        rl = np.asarray([lbl or "" for lbl in real_labels], dtype=object)
        fl = np.asarray([lbl or "" for lbl in fake_labels], dtype=object)
        if len(rl) != real.shape[0] or len(fl) != fake.shape[0]:
            raise ValueError("labels must have one entry per feature row")
        for cond in sorted((set(rl) | set(fl)) - {""}):
            rm, fm = rl == cond, fl == cond
            per_condition[cond] = set_metrics(
                real[rm],
                fake[fm],
                real_pixels=None if real_pixels is None else real_pixels[torch.from_numpy(rm.astype(bool))],
                fake_pixels=None if fake_pixels is None else fake_pixels[torch.from_numpy(fm.astype(bool))],
                **common,
            )
    return FidelityResult(
        extractor_name=extractor_name,
        extractor_sha256=extractor_sha256,
        feature_dim=int(real.shape[1]),
        overall=overall,
        per_condition=per_condition,
        settings={**common, "n_real": int(real.shape[0]), "n_fake": int(fake.shape[0])},
    )


def evaluate_images(
    real_images: Sequence[Image.Image],
    fake_images: Sequence[Image.Image],
    extractor: FeatureExtractor,
    *,
    real_labels: Sequence[str | None] | None = None,
    fake_labels: Sequence[str | None] | None = None,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    ms_ssim_size: int | None = 64,
) -> FidelityResult:
    """Extract features with ``extractor`` and compute :func:`compute_fidelity`."""
    if not real_images or not fake_images:
        raise ValueError("both the real and the synthetic set need at least one image")
    real_f = extractor.extract(real_images)
    fake_f = extractor.extract(fake_images)
    rp = fp = None
    if ms_ssim_size:
        rp, fp = images_to_tensor(real_images, ms_ssim_size), images_to_tensor(fake_images, ms_ssim_size)
    result = compute_fidelity(
        real_features=real_f,
        fake_features=fake_f,
        extractor_name=extractor.name,
        extractor_sha256=extractor.sha256,
        real_labels=real_labels,
        fake_labels=fake_labels,
        k=k,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        seed=seed,
        real_pixels=rp,
        fake_pixels=fp,
    )
    if ms_ssim_size:
        result.settings["ms_ssim_size"] = ms_ssim_size
    return result


# ---------------------------------------------------------------------- folders


def load_image_folder(directory: str | Path) -> tuple[list[Image.Image], list[str | None], list[Path]]:
    """Images under ``directory``; an image in a sub-folder is labelled with the sub-folder's
    name (``DIR/MEL/x.png`` → ``MEL``), one directly in ``directory`` has no label."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"not a directory: {root}")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    images, labels = [], []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"cannot read image {p}: {exc}") from None
        rel = p.relative_to(root)
        labels.append(rel.parts[0] if len(rel.parts) > 1 else None)
    return images, labels, paths


def format_table(result: FidelityResult) -> str:
    """A plain-text table: one row overall, one per condition."""
    cols = ["n_real", "n_fake", "fid", "kid_mean", "kid_std", "precision", "recall", "diversity_ratio"]
    rows = [("overall", result.overall)] + sorted(result.per_condition.items())

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [f"extractor: {result.extractor_name} sha256={result.extractor_sha256}"]
    lines.append("\t".join(["set", *cols]))
    for name, m in rows:
        lines.append("\t".join([name, *(fmt(getattr(m, c)) for c in cols)]))
    return "\n".join(lines)


def write_per_condition_csv(result: FidelityResult, path: str | Path) -> None:
    """Per-condition rows (plus ``overall``) to CSV, written atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fields = [f for f in SetMetrics.__dataclass_fields__ if f != "notes"]
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["condition", *fields, "extractor_name", "extractor_sha256"])
        for name, m in [("overall", result.overall), *sorted(result.per_condition.items())]:
            writer.writerow(
                [name, *(getattr(m, f) for f in fields), result.extractor_name, result.extractor_sha256]
            )
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.metrics",
        description="Fidelity metrics (FID, KID, precision/recall, diversity) between two image folders. "
        "Sub-folder names are condition labels (DIR/MEL/*.png).",
    )
    parser.add_argument("--real", required=True, help="folder of real images")
    parser.add_argument("--fake", required=True, help="folder of synthetic images")
    parser.add_argument(
        "--extractor",
        default=None,
        help="classifier:PATH (a generator.classifier checkpoint) or inception[:PATH] (pytorch-fid weights "
        "pt_inception-2015-12-05-6726825d.pth; default path from DERMGAN_INCEPTION_WEIGHTS). Default: train "
        "a classifier on --real (needs ≥ 2 condition sub-folders) and save it to --save-classifier.",
    )
    parser.add_argument(
        "--inception-weights", default=None, metavar="PATH", help="shorthand for --extractor inception:PATH"
    )
    parser.add_argument("--save-classifier", default="fidelity-classifier.pt")
    parser.add_argument("--k", type=int, default=3, help="neighbours for precision/recall")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--per-condition-csv", default=None, help="also write per-condition rows to this CSV")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        real_images, real_labels, _ = load_image_folder(args.real)
        fake_images, fake_labels, _ = load_image_folder(args.fake)
        if args.inception_weights:
            args.extractor = f"inception:{args.inception_weights}"
        if args.extractor:
            extractor = load_extractor(args.extractor, device=args.device)
        else:
            from generator.classifier import (
                ClassifierConfig,
                ClassifierExtractor,
                save_classifier,
                train_classifier,
            )

            if any(lbl is None for lbl in real_labels) or len(set(real_labels)) < 2:
                raise ValueError(
                    "training the default classifier needs real images in ≥ 2 condition sub-folders; "
                    "or pass --extractor"
                )
            conditions = tuple(sorted(set(real_labels)))  # type: ignore[arg-type]
            model, _history = train_classifier(
                real_images,
                real_labels,
                ClassifierConfig(conditions=conditions),
                seed=args.seed,
                device=args.device,
            )
            save_classifier(args.save_classifier, model=model, metadata={"trained_on": str(args.real)})
            print(
                f"trained the feature classifier on {len(real_images)} real images -> {args.save_classifier}",
                file=sys.stderr,
            )
            extractor = ClassifierExtractor.from_path(args.save_classifier, device=args.device)
        result = evaluate_images(
            real_images,
            fake_images,
            extractor,
            real_labels=real_labels,
            fake_labels=fake_labels,
            k=args.k,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            seed=args.seed,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.per_condition_csv:
        write_per_condition_csv(result, args.per_condition_csv)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
