"""Input checks and distance matrices shared by the metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_2d(features: Any, name: str) -> np.ndarray:
    """``features`` as a float64 (N, D) array of finite values; the error names the argument."""
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def pairwise_distances(x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distances (len(x), len(y)), computed in row chunks to bound memory."""
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    out = [torch.cdist(tx[i : i + chunk], ty) for i in range(0, tx.shape[0], chunk)]
    return torch.cat(out).numpy()
