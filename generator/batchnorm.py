"""Precise BatchNorm: recompute a generator's running statistics before it is released.

During training BatchNorm uses batch statistics; its running averages (what eval mode,
and so the renderer, uses) trail weights that change quickly and give washed-out
renders early in training. Recomputing them as a plain average over fixed training
images with the final weights ("precise BN"; Wu & Johnson 2021, arXiv:2105.07576)
fixes that. ``generator.train`` calls it for every checkpoint it writes.
"""

from __future__ import annotations

import copy
from typing import Any

import torch


def recalibrated_copy(
    G: torch.nn.Module,
    dataset: Any,
    *,
    n_images: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    autocast: Any,
) -> torch.nn.Module:
    """A copy of G (eval mode) whose BatchNorm running statistics are recomputed for its
    current weights on the first ``n_images`` of ``dataset``, without augmentation.

    It runs on a copy with a forked RNG, so training itself is untouched and runs stay
    reproducible (and a resumed run matches an uninterrupted one).
    """
    model = copy.deepcopy(G)
    n = min(len(dataset), n_images)
    if n == 0:
        return model.eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the recalibration batches
    model.train()
    was, dataset.augment = dataset.augment, False
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, n, batch_size):
                batch = [dataset[i][0] for i in range(start, min(start + batch_size, n))]
                with autocast():
                    model(torch.stack(batch).to(device))
    finally:
        dataset.augment = was
    for m in norms:
        m.momentum = 0.1
    return model.eval()
