"""Objective fidelity metrics between a set of real and a set of synthetic images.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) judged its images three ways: a
Turing test with dermatologists, distribution metrics, and a downstream
augmentation experiment. This package is the second: plain numpy/torch functions
on feature arrays, plus pluggable feature extractors and a small CLI::

    python -m generator.metrics --real DIR --fake DIR [--extractor classifier:PATH | inception:PATH]

Metrics (all computed on features, so *the feature space decides what they mean*):

* :func:`frechet_distance` — FID-style distance between the Gaussians fitted to
  the two feature sets (Heusel et al. 2017, arXiv:1706.08500).
* :func:`kernel_distance` — KID-style unbiased MMD² with the cubic polynomial
  kernel, mean and standard deviation over random subsets, or over bootstrap
  resamples when a set is no larger than a subset (Bińkowski et al. 2018,
  arXiv:1801.01401); :func:`kernel_distance_estimate` also says which.
* :func:`precision_recall` — k-NN manifold precision and recall (Kynkäänniemi
  et al. 2019, arXiv:1904.06991).
* :func:`mean_pairwise_distance` and :func:`ms_ssim` — diversity inside one set;
  a generator that repeats itself can fool raters one image at a time.

A :class:`FidelityResult` records which extractor (name + sha256 of its weights)
produced it and refuses to be compared with a result from another extractor:
FID in a 128-d classifier space and FID in Inception's 2048-d space are different
quantities with different scales. It also carries a real-vs-real :class:`Baseline` — the
same metrics between two disjoint halves of the real set (by patient when known), or
against a held-out real set — since a number like FID means nothing without it.

Modules, one topic each (every public name is re-exported here):
``fid`` · ``kid`` · ``baseline`` (real-vs-real split) · ``manifold`` (precision/recall) · ``diversity`` (pairwise distance,
MS-SSIM) · ``features`` (extractors, image folders) · ``results`` (SetMetrics,
FidelityResult, compute/evaluate, tables) · ``cli`` (``python -m generator.metrics``).
"""

from __future__ import annotations

from generator.metrics.baseline import split_halves
from generator.metrics.cli import main
from generator.metrics.diversity import mean_pairwise_distance, mean_pairwise_ms_ssim, ms_ssim
from generator.metrics.features import (
    IMAGE_SUFFIXES,
    FeatureExtractor,
    file_sha256,
    images_to_tensor,
    load_extractor,
    load_image_folder,
)
from generator.metrics.fid import feature_statistics, frechet_distance
from generator.metrics.kid import (
    KernelDistance,
    _polynomial_kernel,
    kernel_distance,
    kernel_distance_estimate,
    mmd2_unbiased,
)
from generator.metrics.manifold import precision_recall
from generator.metrics.results import (
    Baseline,
    FidelityResult,
    IncomparableResultsError,
    SetMetrics,
    compute_fidelity,
    evaluate_images,
    format_table,
    real_baseline,
    set_metrics,
    write_per_condition_csv,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "Baseline",
    "KernelDistance",
    "FeatureExtractor",
    "FidelityResult",
    "IncomparableResultsError",
    "SetMetrics",
    "_polynomial_kernel",
    "compute_fidelity",
    "evaluate_images",
    "feature_statistics",
    "file_sha256",
    "format_table",
    "frechet_distance",
    "images_to_tensor",
    "kernel_distance",
    "kernel_distance_estimate",
    "load_extractor",
    "load_image_folder",
    "main",
    "mean_pairwise_distance",
    "mean_pairwise_ms_ssim",
    "mmd2_unbiased",
    "ms_ssim",
    "precision_recall",
    "real_baseline",
    "set_metrics",
    "split_halves",
    "write_per_condition_csv",
]
