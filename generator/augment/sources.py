"""Where synthetic images come from: a pool in hand, or a DermGAN checkpoint rendering them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from generator.render import Renderer
from generator.sampling import SpecDistribution, image_seed, spec_for_index

ImageLike = Image.Image | str | Path


class SyntheticSource(Protocol):
    """Supplies ``n`` synthetic images of ``condition``, deterministically from ``seed``."""

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        """(images, one provenance dict per image). May return fewer than ``n`` if it runs out."""
        ...


class PoolSource:
    """Draws from images already in hand, e.g. a library generation batch, per condition.

    ``pool`` maps a condition code to a list of ``(image, provenance)`` pairs; the
    draw is a seeded permutation, so the same seed picks the same images.
    """

    def __init__(self, pool: Mapping[str, Sequence[tuple[ImageLike, dict[str, Any]]]]) -> None:
        self.pool = {c: list(items) for c, items in pool.items()}

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        items = self.pool.get(condition, [])
        order = np.random.default_rng(seed).permutation(len(items))[:n]
        images = [open_rgb(items[i][0]) for i in order]
        return images, [dict(items[i][1]) for i in order]


class RendererSource:
    """Renders synthetic images on the fly from a DermGAN checkpoint (``generator.render.Renderer``).

    Image i of a condition uses spec ``spec_for_index(dist, index=i)`` and render seed
    ``image_seed(seed, i)`` — the same rule as a generation batch — so each image's
    provenance is enough to re-render it.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        area_fraction_range: tuple[float, float] = (0.01, 0.08),
        batch_size: int = 16,
    ) -> None:
        self.renderer = Renderer(checkpoint, device=device, batch_size=batch_size)
        self.area_fraction_range = area_fraction_range

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        if condition not in self.renderer.config.conditions:
            raise ValueError(f"the checkpoint cannot render condition {condition!r}")
        dist = SpecDistribution({condition: 1.0}, area_fraction_range=self.area_fraction_range).validate()
        size = self.renderer.config.image_size
        specs = [spec_for_index(dist, size=size, batch_seed=seed, index=i) for i in range(n)]
        images = self.renderer.render(specs, seed) if n else []
        prov = [
            {
                "checkpoint_sha256": self.renderer.checkpoint_sha256,
                "batch_seed": seed,
                "index": i,
                "seed": image_seed(seed, i),
                "spec": spec.to_dict(),
            }
            for i, spec in enumerate(specs)
        ]
        return images, prov


def open_rgb(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as im:
        return im.convert("RGB")
