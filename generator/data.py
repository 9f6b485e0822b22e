"""Training data: manifest datasets of real photos, and procedural demo "photos".

``procedural_sample`` draws clearly synthetic stand-ins for clinical photos so the demo
and the tests run with no patient data: skin of Fitzpatrick types I-VI with multi-octave
texture, pores, optional hair, uneven lighting and vignetting, and one lesion whose
shape and appearance depend on its condition (irregular multi-coloured melanoma, regular
nevus, pearly basal cell carcinoma with telangiectasia, stuck-on seborrhoeic keratosis,
scaly actinic keratosis and psoriasis, lobulated vascular lesion). It returns the exact
lesion mask. Nothing here is clinically accurate; it only needs to be varied and
structured enough to train and demo the pipeline.

``ManifestDataset`` reads a CSV (image path, mask path, condition, optional skin type)
and ``ProceduralDataset`` wraps ``procedural_sample``; both yield
``(semantic map, image, mask)`` tensors built by ``map_from_annotation``, so the network
sees procedural and real data through the same code path.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from generator.sampling import image_seed
from generator.semantic_map import (
    FITZPATRICK_RGB,
    LesionSpec,
    MapSpec,
    encode,
    estimate_skin_colour,
    lab_to_rgb,
    map_from_annotation,
    rgb_to_lab,
)

DEMO_CONDITIONS: tuple[str, ...] = ("MEL", "NEV", "BCC", "SEK", "AK", "PSO", "VASC")
# The platform's condition taxonomy in semantic-map channel order (``map_index`` in
# fixtures/conditions.json; a test keeps the two in step). A generator trained with all of
# them accepts every code the platform may ask for, even ones absent from its training data.
TAXONOMY_CONDITIONS: tuple[str, ...] = (
    "MEL", "BCC", "SCC", "AK", "SEK", "NEV", "ECZ", "PSO", "ACN", "TIN", "URT", "VIT", "DF", "VASC", "OTH",
)  # fmt: skip


@dataclass(frozen=True)
class ProceduralSample:
    image: Image.Image  # RGB, size x size
    mask: np.ndarray  # bool (size, size), the lesion
    spec: MapSpec  # the lesion mask and the estimated skin colour, as a spec
    condition: str
    fitzpatrick: int


# ---------------------------------------------------------------------------
# Procedural building blocks (all arrays are float32, (H, W) or (H, W, 3) in 0..1)
# ---------------------------------------------------------------------------


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize((size, size), Image.BICUBIC))


def _fractal_noise(
    rng: np.random.Generator, size: int, base: int, octaves: int, persistence: float = 0.5
) -> np.ndarray:
    """Sum of value-noise octaves, roughly zero mean and unit scale."""
    total = np.zeros((size, size), np.float32)
    amplitude, norm = 1.0, 0.0
    for o in range(octaves):
        cells = min(size, base * 2**o)
        total += amplitude * _upsample(rng.standard_normal((cells + 1, cells + 1)).astype(np.float32), size)
        norm += amplitude
        amplitude *= persistence
    return total / norm


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    return ndimage.gaussian_filter(a.astype(np.float32), radius, mode="nearest", truncate=3.0)


def _lab_colour(lab: Sequence[float]) -> np.ndarray:
    return (lab_to_rgb(np.asarray(lab, dtype=np.float64)) / 255.0).astype(np.float32)


# How each condition looks: border irregularity (harmonic amplitude), edge softness
# (fraction of the radius), size range (fraction of the image area), aspect range.
_SHAPE = {
    "MEL": dict(irregular=0.22, soft=0.06, area=(0.04, 0.14), aspect=(1.0, 1.6)),
    "NEV": dict(irregular=0.03, soft=0.08, area=(0.01, 0.05), aspect=(1.0, 1.3)),
    "BCC": dict(irregular=0.08, soft=0.10, area=(0.02, 0.08), aspect=(1.0, 1.4)),
    "SEK": dict(irregular=0.07, soft=0.03, area=(0.03, 0.10), aspect=(1.1, 1.8)),
    "AK": dict(irregular=0.15, soft=0.30, area=(0.03, 0.10), aspect=(1.0, 1.7)),
    "PSO": dict(irregular=0.12, soft=0.05, area=(0.08, 0.22), aspect=(1.1, 1.8)),
    "VASC": dict(irregular=0.05, soft=0.04, area=(0.005, 0.03), aspect=(1.0, 1.3)),
}


def _lesion_field(
    rng: np.random.Generator, size: int, condition: str, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised distance d (1 on the border), polar angle, and a height map of the lesion."""
    shape = _SHAPE[condition]
    area = float(np.exp(rng.uniform(*np.log(shape["area"]))))
    aspect = float(rng.uniform(*shape["aspect"]))
    r_long = math.sqrt(area * aspect / math.pi) * size
    r_short = r_long / aspect
    margin = r_long * 1.25
    cx = rng.uniform(max(margin, 0.3 * size), min(size - margin, 0.7 * size))
    cy = rng.uniform(max(margin, 0.3 * size), min(size - margin, 0.7 * size))
    t = rng.uniform(0, math.pi)
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(t) + dy * math.sin(t)) / r_long
    v = (-dx * math.sin(t) + dy * math.cos(t)) / r_short
    theta = np.arctan2(v, u)
    radial = np.ones_like(theta)
    for k in range(2, 9):  # a noisy ellipse: random low harmonics of the border radius
        radial += (
            shape["irregular"]
            / k**0.7
            * rng.standard_normal()
            * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        )
    if condition == "VASC":  # lobulated: a few bulges
        radial += 0.12 * np.maximum(0, np.cos(3 * theta + rng.uniform(0, 2 * np.pi)))
    d = np.sqrt(u * u + v * v) / np.maximum(radial, 0.3)
    height = np.clip(1 - d * d, 0, 1)
    return d.astype(np.float32), theta.astype(np.float32), height.astype(np.float32)


def _shade(height: np.ndarray, strength: float) -> np.ndarray:
    """Lambert-like shading of a height map lit from the top left."""
    gy, gx = np.gradient(height)
    return 1.0 + strength * (-gx - gy) * height.shape[0] / 64


def _skin(rng: np.random.Generator, size: int, fitzpatrick: int) -> tuple[np.ndarray, np.ndarray]:
    """Healthy skin (H, W, 3) and its base colour (3,)."""
    lab = rgb_to_lab(np.array(FITZPATRICK_RGB[fitzpatrick], dtype=np.float64))
    lab = lab + rng.normal(0, [2.5, 1.5, 1.5])
    base = _lab_colour(lab)
    texture = _fractal_noise(rng, size, 4, 5, 0.55)  # mottling
    fine = _fractal_noise(rng, size, 48, 2, 0.5)  # skin grain
    redness = _fractal_noise(rng, size, 3, 3, 0.5)
    skin = base[None, None, :] * (1 + 0.035 * texture[..., None] + 0.02 * fine[..., None])
    skin = skin + 0.03 * np.maximum(redness, 0)[..., None] * np.array([1.0, -0.4, -0.3], np.float32)
    # pores: sparse, faint, slightly blurred dots
    pores = np.zeros((size, size), np.float32)
    n = int(size * size / rng.uniform(150, 400))
    pores[rng.integers(0, size, n), rng.integers(0, size, n)] = rng.uniform(0.3, 1.0, n)
    pores = _blur(pores, 0.7 * size / 256 + 0.3)
    skin = skin * (1 - 0.5 * np.clip(pores / max(pores.max(), 1e-6), 0, 1)[..., None] * 0.35)
    return skin, base


def _draw_lines(size: int, paths: list[list[tuple[float, float]]], width: int) -> np.ndarray:
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    for path in paths:
        draw.line(path, fill=255, width=width)
    return np.asarray(layer, np.float32) / 255.0


def _random_walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    steps: int,
    step: float,
    heading: float,
    wiggle: float,
) -> list[tuple[float, float]]:
    x, y = start
    path = [(x, y)]
    for _ in range(steps):
        heading += rng.normal(0, wiggle)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        path.append((x, y))
    return path


def _paint_lesion(
    rng: np.random.Generator,
    size: int,
    condition: str,
    skin: np.ndarray,
    base: np.ndarray,
    d: np.ndarray,
    theta: np.ndarray,
    height: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Lesion colour (H, W, 3) and its surface relief (H, W) for shading."""
    lightness = float(rgb_to_lab(base * 255)[0]) / 100  # 0.3 (dark) .. 0.7 (light)
    blotch = _fractal_noise(rng, size, 6, 4, 0.6)
    fine = _fractal_noise(rng, size, 40, 2, 0.5)
    relief = np.zeros((size, size), np.float32)
    erythema = (
        skin * np.array([1.02, 0.72, 0.74], np.float32) + np.array([0.06, 0.0, 0.0], np.float32) * lightness
    )
    if condition == "NEV":
        brown = base * np.array([0.55, 0.42, 0.36], np.float32) * rng.uniform(0.8, 1.1)
        colour = brown[None, None, :] * (1 + 0.05 * blotch[..., None] - 0.1 * (1 - d)[..., None])
        relief = 0.5 * height * rng.uniform(0.0, 1.0)
    elif condition == "MEL":
        tones = [
            base * np.array([0.55, 0.40, 0.33]),  # light brown
            base * np.array([0.30, 0.22, 0.19]),  # dark brown
            np.array([0.07, 0.06, 0.07]) + 0.05 * base,  # black
            base * np.array([0.55, 0.58, 0.68]),  # blue-grey (regression)
            base * np.array([0.80, 0.50, 0.48]),  # reddish-brown (inflammation)
        ]
        n_tones = int(rng.integers(3, 6))
        order = np.concatenate([[1], 2 + rng.permutation(len(tones) - 2)[: n_tones - 2], [0]])
        order = rng.permutation(order)  # dark brown and light brown always, then black/blue/red
        field = blotch + 0.6 * (1 - d) * rng.choice([-1.0, 1.0])  # asymmetric zones
        edges = np.quantile(field[d < 1], np.linspace(0, 1, n_tones + 1)[1:-1])  # zones inside the lesion
        zone = np.digitize(field, edges)
        colour = np.zeros_like(skin)
        for z, t in enumerate(order):
            colour[zone == z] = np.asarray(tones[t], np.float32)
        colour = np.stack([_blur(colour[..., c], 1.5) for c in range(3)], axis=-1)
        colour = colour * (1 + 0.06 * fine[..., None])
        relief = 0.2 * height
    elif condition == "BCC":
        pearly = skin * np.array([1.06, 0.9, 0.92], np.float32) + np.array([0.10, 0.08, 0.09], np.float32)
        rolled = _smoothstep(0.55, 0.85, d) * (1 - _smoothstep(0.9, 1.05, d))  # raised pearly rim
        colour = pearly * (1 + 0.12 * rolled[..., None] + 0.03 * blotch[..., None])
        if rng.random() < 0.5:  # central ulceration with crust
            crust = _smoothstep(0.35, 0.15, d + 0.1 * blotch)
            colour = colour * (1 - crust[..., None]) + crust[..., None] * np.array(
                [0.45, 0.16, 0.12], np.float32
            )
        relief = 0.6 * height + 0.4 * rolled
    elif condition == "SEK":
        tan = base * np.array([0.62, 0.50, 0.40], np.float32) * rng.uniform(0.6, 1.0)
        ridges = np.abs(_fractal_noise(rng, size, 16, 3, 0.6))  # cerebriform furrows
        colour = tan[None, None, :] * (1.15 - 0.5 * _smoothstep(0.0, 0.5, ridges)[..., None])
        colour = colour * (1 + 0.08 * blotch[..., None])
        relief = 0.5 * _smoothstep(0.0, 0.3, 1 - d) + 0.3 * ridges
    elif condition == "AK":
        colour = erythema * (1 + 0.05 * blotch[..., None])
        scale = _smoothstep(0.55, 1.1, fine + 0.4 * blotch) * _smoothstep(1.0, 0.6, d)
        colour = colour * (1 - 0.8 * scale[..., None]) + 0.8 * scale[..., None] * np.array(
            [0.86, 0.80, 0.68], np.float32
        )
        relief = 0.5 * scale
    elif condition == "PSO":
        plaque = (
            skin * np.array([1.05, 0.68, 0.68], np.float32)
            + np.array([0.08, 0.02, 0.02], np.float32) * lightness
        )
        flakes = _smoothstep(0.1, 0.7, _fractal_noise(rng, size, 10, 4, 0.6) + 0.4 * (1 - d))
        colour = plaque * (1 - 0.85 * flakes[..., None]) + 0.85 * flakes[..., None] * np.array(
            [0.88, 0.88, 0.90], np.float32
        )
        colour = colour * (1 + 0.06 * fine[..., None])
        relief = 0.4 * height + 0.4 * flakes
    elif condition == "VASC":
        red = np.array([0.62, 0.08, 0.15], np.float32) * (0.7 + 0.5 * lightness)
        purple = np.array([0.35, 0.06, 0.22], np.float32) * (0.7 + 0.5 * lightness)
        mix = _smoothstep(-0.5, 0.8, blotch)
        colour = red * (1 - mix[..., None]) + purple * mix[..., None]
        relief = 0.8 * height
    else:  # pragma: no cover - guarded by procedural_sample
        raise ValueError(f"condition {condition!r} has no procedural appearance")
    if condition == "BCC":  # telangiectasia: thin branching red vessels over the lesion
        paths = []
        for _ in range(int(rng.integers(3, 7))):
            start = (rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size)
            paths.append(_random_walk(rng, start, 25, size / 120, rng.uniform(0, 2 * np.pi), 0.35))
        vessels = _blur(_draw_lines(size, paths, 1), 0.5) * (d < 0.95)
        vessel_colour = np.array([0.65, 0.12, 0.14], np.float32) * (0.6 + 0.6 * lightness)
        colour = colour * (1 - 0.7 * vessels[..., None]) + 0.7 * vessels[..., None] * vessel_colour
    return np.clip(colour, 0, 1).astype(np.float32), relief.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # pixel centres
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def procedural_sample(
    *, seed: int, size: int = 256, fitzpatrick: int | None = None, condition: str | None = None
) -> ProceduralSample:
    """A clearly synthetic clinical-style photo with one lesion, and its exact mask.

    Deterministic from ``seed`` (and the other arguments): the same call always gives the
    same pixels. ``fitzpatrick`` and ``condition`` are drawn from the seed when not given.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 32 <= size <= 1024:
        raise ValueError(f"size must be within 32..1024 pixels, got {size}")
    rng = np.random.default_rng([int(seed), 0xDE71])
    k = int(rng.integers(1, 7))
    c = DEMO_CONDITIONS[int(rng.integers(len(DEMO_CONDITIONS)))]
    fitzpatrick = k if fitzpatrick is None else fitzpatrick
    condition = c if condition is None else condition
    if fitzpatrick not in FITZPATRICK_RGB:
        raise ValueError(f"fitzpatrick must be a skin type 1..6, got {fitzpatrick!r}")
    if condition not in DEMO_CONDITIONS:
        raise ValueError(
            f"condition {condition!r} is not drawn procedurally (choose from {', '.join(DEMO_CONDITIONS)})"
        )

    yy, xx = _pixel_grid(size)
    skin, base = _skin(rng, size, fitzpatrick)
    d, theta, height = _lesion_field(rng, size, condition, yy, xx)
    # the border is itself slightly noisy at the pixel scale, like a real lesion edge
    d = d + 0.03 * _fractal_noise(rng, size, 24, 2, 0.5)
    colour, relief = _paint_lesion(rng, size, condition, skin, base, d, theta, height)
    soft = _SHAPE[condition]["soft"]
    alpha = _smoothstep(1 + soft, 1 - soft, d)
    mask = alpha >= 0.5
    if not mask.any():  # extremely small lesions at tiny sizes: keep the centre pixel
        mask[np.unravel_index(np.argmin(d), d.shape)] = True
    image = skin * (1 - alpha[..., None]) + colour * alpha[..., None]
    image = image * _shade(_blur(relief * alpha, 1.0), 0.6)[..., None]
    if condition in ("BCC", "VASC", "SEK"):  # glossy/waxy highlight on raised lesions
        spot = np.exp(-(((d * np.cos(theta) + 0.35) ** 2 + (d * np.sin(theta) + 0.35) ** 2) / 0.05)) * alpha
        image = image + 0.12 * spot[..., None]

    # hair (more often visible on lighter skin), drawn over everything like in a real photo
    if rng.random() < 0.3:
        paths = []
        heading = rng.uniform(0, 2 * np.pi)  # hair on one patch of skin mostly runs one way
        for _ in range(int(rng.integers(2, 9))):
            start = (rng.uniform(0, size), rng.uniform(0, size))
            paths.append(_random_walk(rng, start, 20, size / 90, heading + rng.normal(0, 0.4), 0.06))
        hair = _blur(_draw_lines(size, paths, max(1, size // 256)), 0.6) * rng.uniform(0.4, 0.8)
        hair_colour = np.array([0.16, 0.11, 0.08], np.float32) * rng.uniform(0.6, 1.4)
        image = image * (1 - hair[..., None]) + hair[..., None] * hair_colour

    # lighting: a soft directional gradient, vignetting, and a slight colour cast
    angle = rng.uniform(0, 2 * np.pi)
    gradient = ((xx / size - 0.5) * math.cos(angle) + (yy / size - 0.5) * math.sin(angle)) * rng.uniform(
        0.05, 0.2
    )
    vignette = 1 - rng.uniform(0.1, 0.3) * (((xx / size - 0.5) ** 2 + (yy / size - 0.5) ** 2) * 2)
    cast = 1 + rng.normal(0, 0.012, 3).astype(np.float32) + np.array([0.01, 0.0, -0.01], np.float32)
    image = image * ((1 + gradient) * vignette)[..., None] * cast
    image = image + rng.normal(0, 0.008, image.shape).astype(np.float32)  # sensor noise
    pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)

    skin_estimate = estimate_skin_colour(pixels, mask)
    spec = MapSpec(size=size, lesions=(LesionSpec(condition, mask=mask),), skin_rgb=skin_estimate.rgb)
    return ProceduralSample(
        image=Image.fromarray(pixels, "RGB"),
        mask=mask,
        spec=spec,
        condition=condition,
        fitzpatrick=fitzpatrick,
    )


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------


def _to_tensors(
    image: np.ndarray, mask: np.ndarray, condition: str, conditions: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    semantic = map_from_annotation(image, mask, condition, conditions)  # (C, H, W)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1.0  # (3, H, W) in [-1, 1]
    lesion = torch.from_numpy(mask).float()[None]  # (1, H, W)
    return semantic, pixels, lesion


def augment(
    semantic: torch.Tensor,
    image: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    max_crop: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random horizontal/vertical flips and a small random crop resized back to full size.

    The same geometry is applied to map, image and mask; map and mask are resampled with
    nearest neighbour so they stay exactly one-hot/binary. Skin photos have no canonical
    orientation, so both flips are label-preserving; crops stay small so the lesion is kept.
    """
    size = image.shape[-1]
    if rng.random() < 0.5:
        semantic, image, mask = semantic.flip(-1), image.flip(-1), mask.flip(-1)
    if rng.random() < 0.5:
        semantic, image, mask = semantic.flip(-2), image.flip(-2), mask.flip(-2)
    crop = int(round(size * rng.uniform(0.0, max_crop)))
    if crop > 0:
        top, left = int(rng.integers(0, crop + 1)), int(rng.integers(0, crop + 1))
        window = (slice(None), slice(top, top + size - crop), slice(left, left + size - crop))
        cropped_mask = mask[window]
        if cropped_mask.any():  # never crop the lesion away entirely
            resize = torch.nn.functional.interpolate
            semantic = resize(semantic[window][None], size=(size, size), mode="nearest")[0]
            mask = resize(cropped_mask[None], size=(size, size), mode="nearest")[0]
            image = resize(image[window][None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return semantic.contiguous(), image.contiguous(), mask.contiguous()


class _AugmentingDataset(torch.utils.data.Dataset):
    """Shared epoch-seeded augmentation: item i in epoch e always gets the same transform,
    whatever the worker or the order, so training runs are reproducible."""

    def __init__(self, *, augment: bool, seed: int) -> None:
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _maybe_augment(
        self, index: int, tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.augment:
            return tensors
        return augment(*tensors, np.random.default_rng([self.seed, self.epoch, index, 0xA06]))


class ProceduralDataset(_AugmentingDataset):
    """``n`` procedural samples (seeded from ``seed``), as (map, image, mask) tensors.

    Samples are drawn once and kept in memory (uint8), so epochs cost only augmentation.
    """

    def __init__(
        self,
        n: int,
        *,
        size: int,
        conditions: Sequence[str],
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        super().__init__(augment=augment, seed=seed)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        missing = [c for c in DEMO_CONDITIONS if c not in conditions]
        if missing:
            raise ValueError(f"conditions lack procedural condition codes: {missing}")
        self.n, self.size, self.conditions = n, size, tuple(conditions)
        # compact cache (uint8 photo + spec with the mask), the float map is rebuilt per item:
        # a 15-condition float map is ~20x the photo's size
        self._cache: dict[int, tuple[np.ndarray, MapSpec]] = {}

    def __len__(self) -> int:
        return self.n

    def sample(self, index: int) -> ProceduralSample:
        return procedural_sample(seed=image_seed(self.seed, index), size=self.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        if index not in self._cache:
            s = self.sample(index)
            self._cache[index] = (np.asarray(s.image), s.spec)
        image, spec = self._cache[index]
        semantic = encode(spec, self.conditions)  # == map_from_annotation(image, mask, ...)
        pixels = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 127.5 - 1.0  # (3, H, W)
        return self._maybe_augment(index, (semantic, pixels, semantic[3:4].clone()))


MANIFEST_COLUMNS = ("image", "mask", "condition")


@dataclass(frozen=True)
class ManifestRow:
    image: Path
    mask: Path
    condition: str
    skin_type: int | None


def read_manifest(path: str | Path, conditions: Sequence[str] | None) -> list[ManifestRow]:
    """Parse and check a training manifest CSV.

    Columns: ``image``, ``mask`` (paths, relative to the CSV's folder or absolute),
    ``condition`` (a code in ``conditions``; any code when None) and optionally ``skin_type`` (Fitzpatrick
    1-6; ``2.0`` and blank accepted). Every problem is reported with its line number
    before any training starts.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    known = set(conditions) if conditions is not None else None
    rows: list[ManifestRow] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"manifest {path}: missing column(s) {missing} (have {header})")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"manifest {path} line {line}"
            if known is not None and row["condition"] not in known:
                raise ValueError(f"{where}: condition {row['condition']!r} is not one of {sorted(known)}")
            if not row["condition"]:
                raise ValueError(f"{where}: condition is empty")
            files = {}
            for col in ("image", "mask"):
                if not row[col]:
                    raise ValueError(f"{where}: {col} is empty")
                p = Path(row[col])
                p = p if p.is_absolute() else path.parent / p
                if not p.is_file():
                    raise ValueError(f"{where}: {col} file {p} does not exist")
                files[col] = p
            skin = row.get("skin_type") or row.get("fitzpatrick") or ""
            skin_type = None
            if skin:
                try:
                    skin_type = int(float(skin))
                except ValueError:
                    raise ValueError(f"{where}: skin_type {skin!r} is not a number 1-6") from None
                if skin_type not in FITZPATRICK_RGB:
                    raise ValueError(f"{where}: skin_type {skin!r} is not within 1-6")
            rows.append(ManifestRow(files["image"], files["mask"], row["condition"], skin_type))
    if not rows:
        raise ValueError(f"manifest {path} has no rows")
    return rows


def _square(img: Image.Image, size: int, resample: int) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), resample)


class ManifestDataset(_AugmentingDataset):
    """Real annotated photos from a manifest CSV, as (map, image, mask) tensors.

    Each photo is centre-cropped to a square and resized to ``size`` (mask: nearest
    neighbour, kept binary); the map's skin colour is estimated from the healthy skin
    around the lesion, exactly as for the procedural data.
    """

    def __init__(
        self,
        manifest: str | Path,
        *,
        size: int,
        conditions: Sequence[str],
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        super().__init__(augment=augment, seed=seed)
        self.rows = read_manifest(manifest, conditions)
        self.size, self.conditions = size, tuple(conditions)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        row = self.rows[index]
        with Image.open(row.image) as im:
            image = np.asarray(_square(im.convert("RGB"), self.size, Image.LANCZOS))
        with Image.open(row.mask) as im:
            mask = np.asarray(_square(im.convert("L"), self.size, Image.NEAREST)) > 127
        if not mask.any():
            raise ValueError(f"mask {row.mask} has no lesion pixel at {self.size} px")
        return self._maybe_augment(index, _to_tensors(image, mask, row.condition, self.conditions))
