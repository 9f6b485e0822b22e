"""Helpers for the mask tests: tiny photos with a dark lesion, stored real images, box masks."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image as PILImage

from turingtest.library.models import Image
from turingtest.library.store import image_store

SIZE = 32


def lesion_photo(*, seed: int = 0, radius: int = 7, size: int = SIZE) -> PILImage.Image:
    """Light skin with a dark round lesion near the centre (distinct pixels per seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.integers(-2, 3), size / 2 + rng.integers(-2, 3)
    pixels = np.empty((size, size, 3), dtype=np.uint8)
    pixels[:] = (225, 185, 160)
    pixels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = (90, 50, 40)
    pixels = np.clip(pixels.astype(int) + rng.integers(-3, 4, pixels.shape), 0, 255).astype(np.uint8)
    return PILImage.fromarray(pixels, "RGB")


def real_image(seed: int = 0, *, mask: np.ndarray | None = None) -> Image:
    return image_store(
        pil_image=lesion_photo(seed=seed), kind="real", condition="MEL", provenance={"test": seed}, mask=mask
    )


def box(x0: int, y0: int, x1: int, y1: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def png_data_url(array: np.ndarray, mode: str = "L") -> str:
    buf = io.BytesIO()
    PILImage.fromarray(array, mode).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
