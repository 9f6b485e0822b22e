"""k-NN manifold precision and recall (fidelity and coverage of the synthetic set)."""

from __future__ import annotations

from typing import Any

import numpy as np

from generator.metrics._arrays import as_2d, pairwise_distances


def _knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each sample to its k-th nearest neighbour in the same set (self excluded)."""
    d = pairwise_distances(features, features)
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
    real = as_2d(real_features, "real_features")
    fake = as_2d(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")

    def coverage(manifold: np.ndarray, probes: np.ndarray) -> float:
        radii = _knn_radii(manifold, k)  # (M,)
        d = pairwise_distances(probes, manifold)  # (P, M)
        return float(np.mean(np.any(d <= radii[None, :] * (1 + 1e-12), axis=1)))

    return coverage(real, fake), coverage(fake, real)
