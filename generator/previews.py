"""Pictures of training progress: semantic-map previews and map | real | generated grids.

``python -m generator.train`` writes one grid per checkpoint (``samples/step-NNNNNNN.png``),
always for the same fixed examples and seeds, so grids from different steps compare.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def map_preview(semantic: torch.Tensor) -> np.ndarray:
    """A human-readable picture of maps (B, C, H, W): skin colour, lesions tinted by condition."""
    skin = semantic[:, 0:3]
    mask = semantic[:, 3:4]
    n_cond = semantic.shape[1] - 4
    hues = torch.linspace(0, 1, n_cond + 1)[:-1]
    palette = torch.stack(
        [0.5 + 0.5 * torch.cos(2 * math.pi * (hues + o)) for o in (0.0, 1 / 3, 2 / 3)], dim=1
    )  # (n_cond, 3) in [0, 1]
    colour = torch.einsum("bkhw,kc->bchw", semantic[:, 4:].float().cpu(), palette) * 2 - 1
    return _to_uint8(skin.cpu() * (1 - mask.cpu()) + colour * mask.cpu())


def save_sample_grid(
    path: Path,
    G: torch.nn.Module,
    semantic: torch.Tensor,
    real: torch.Tensor,
    *,
    seed: int,
    device: torch.device,
) -> None:
    """Rows: map preview | real photo | generated (eval mode, per-image seeded dropout)."""
    was_training = G.training
    G.eval()
    with torch.inference_mode():
        h, w = semantic.shape[-2:]
        noise = G.draw_noise([seed + i for i in range(len(semantic))], h, w, device=device)
        fake = G(semantic.to(device), noise=noise or None)
    G.train(was_training)
    rows = [
        np.concatenate(list(block), axis=1)
        for block in (map_preview(semantic), _to_uint8(real), _to_uint8(fake))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
    tmp.replace(path)
