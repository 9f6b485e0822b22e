"""Deterministic sampling of semantic-map specs for generation batches.

A generation batch is (checkpoint, distribution, batch seed, count). Every image ``i``
gets everything from ``(batch seed, i)`` alone: its spec (``spec_for_index``) and its
render seed (``image_seed``). So one image can be re-rendered from its provenance, a
batch can be split into chunks rendered by different workers in any order, and adding
images to a batch never changes the ones already made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generator.semantic_map import FITZPATRICK_RGB, LesionSpec, MapSpec

_SEED_BITS = 63  # fits a signed 64-bit database column and torch.Generator.manual_seed
_SPEC_STREAM = 0x5EC  # separates the spec stream from the render seed of the same image


def _check_seed_args(batch_seed: int, index: int) -> None:
    for name, value in (("batch_seed", batch_seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def image_seed(batch_seed: int, index: int) -> int:
    """Render seed of image ``index`` of a batch: 63-bit, well mixed.

    Uses NumPy's ``SeedSequence`` hashing, so neighbouring indices and neighbouring batch
    seeds give unrelated seeds (plain ``batch_seed + index`` would make batch 1 image 0
    the same as batch 0 image 1).
    """
    _check_seed_args(batch_seed, index)
    state = np.random.SeedSequence([int(batch_seed), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> (64 - _SEED_BITS)


@dataclass(frozen=True)
class SpecDistribution:
    """What a batch's specs are drawn from.

    condition_weights : relative frequency of each condition code (> 0 somewhere).
    area_fraction_range : (low, high) lesion area as a fraction of the image, drawn
        log-uniformly (small lesions are common, and a uniform draw would rarely give them).
    location : "anywhere" (whole lesion inside the image where possible), "centre"
        (centre within the middle 30%), or a box (x0, y0, x1, y1) of fractions for the centre.
    lesions_per_image : (min, max) inclusive.
    fitzpatrick_weights : relative frequency of skin types 1..6 (default: uniform).
    skin_rgbs : alternatively, a list of explicit skin colours to draw from uniformly.
    """

    condition_weights: dict[str, float]
    area_fraction_range: tuple[float, float] = (0.01, 0.08)
    location: str | tuple[float, float, float, float] = "anywhere"
    lesions_per_image: tuple[int, int] = (1, 1)
    fitzpatrick_weights: dict[int, float] | None = None
    skin_rgbs: list[tuple[int, int, int]] | None = field(default=None)

    def validate(self) -> SpecDistribution:
        """Raise ValueError naming the first bad field; return self for chaining."""
        if not isinstance(self.condition_weights, dict) or not self.condition_weights:
            raise ValueError("condition_weights must map at least one condition code to a weight")
        _check_weights("condition_weights", self.condition_weights)
        try:
            low, high = (float(v) for v in self.area_fraction_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"area_fraction_range must be (low, high), got {self.area_fraction_range!r}"
            ) from None
        if not (0.0 < low <= high <= 0.5):  # larger lesions would not fit the image at every aspect drawn
            raise ValueError(
                f"area_fraction_range must satisfy 0 < low <= high <= 0.5, got {self.area_fraction_range!r}"
            )
        if isinstance(self.location, str):
            if self.location not in ("anywhere", "centre"):
                raise ValueError(f"location must be 'anywhere', 'centre' or a box, got {self.location!r}")
        else:
            try:
                x0, y0, x1, y1 = (float(v) for v in self.location)
            except (TypeError, ValueError):
                raise ValueError(f"location box must be (x0, y0, x1, y1), got {self.location!r}") from None
            if not (0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0):
                raise ValueError(
                    f"location box {self.location!r} must lie within [0, 1] with x0 <= x1, y0 <= y1"
                )
        try:
            n_min, n_max = (int(v) for v in self.lesions_per_image)
        except (TypeError, ValueError):
            raise ValueError(
                f"lesions_per_image must be (min, max), got {self.lesions_per_image!r}"
            ) from None
        if not (1 <= n_min <= n_max <= 20):
            raise ValueError(
                f"lesions_per_image must satisfy 1 <= min <= max <= 20, got {self.lesions_per_image!r}"
            )
        if self.fitzpatrick_weights is not None and self.skin_rgbs is not None:
            raise ValueError("fitzpatrick_weights and skin_rgbs: give at most one skin source")
        if self.fitzpatrick_weights is not None:
            if not isinstance(self.fitzpatrick_weights, dict) or not self.fitzpatrick_weights:
                raise ValueError("fitzpatrick_weights must map skin types 1..6 to weights")
            bad = [k for k in self.fitzpatrick_weights if k not in FITZPATRICK_RGB]
            if bad:
                raise ValueError(f"fitzpatrick_weights has keys outside 1..6: {bad}")
            _check_weights("fitzpatrick_weights", self.fitzpatrick_weights)
        if self.skin_rgbs is not None:
            if not self.skin_rgbs:
                raise ValueError("skin_rgbs must not be empty")
            for rgb in self.skin_rgbs:
                if len(tuple(rgb)) != 3 or not all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255
                    for v in rgb
                ):
                    raise ValueError(f"skin_rgbs entries must be three integers in 0..255, got {rgb!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition_weights": dict(self.condition_weights),
            "area_fraction_range": list(self.area_fraction_range),
            "location": self.location if isinstance(self.location, str) else list(self.location),
            "lesions_per_image": list(self.lesions_per_image),
            "fitzpatrick_weights": (
                {str(k): v for k, v in self.fitzpatrick_weights.items()} if self.fitzpatrick_weights else None
            ),
            "skin_rgbs": [list(c) for c in self.skin_rgbs] if self.skin_rgbs is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpecDistribution:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown spec distribution fields: {sorted(unknown)}")
        d = dict(data)
        if "area_fraction_range" in d:
            d["area_fraction_range"] = tuple(d["area_fraction_range"])
        if "lesions_per_image" in d:
            d["lesions_per_image"] = tuple(d["lesions_per_image"])
        if isinstance(d.get("location"), list):
            d["location"] = tuple(d["location"])
        if d.get("fitzpatrick_weights") is not None:
            try:
                d["fitzpatrick_weights"] = {int(k): v for k, v in d["fitzpatrick_weights"].items()}
            except (AttributeError, ValueError):
                raise ValueError("fitzpatrick_weights must map skin types 1..6 to weights") from None
        if d.get("skin_rgbs") is not None:
            d["skin_rgbs"] = [tuple(c) for c in d["skin_rgbs"]]
        return cls(**d).validate()


def _check_weights(name: str, weights: dict[Any, float]) -> None:
    for key, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{name}[{key!r}] must be a finite weight >= 0, got {w!r}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{name} must have a positive total weight")


def _choice(rng: np.random.Generator, keys: Sequence[Any], weights: Sequence[float]) -> Any:
    p = np.asarray(weights, dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def spec_for_index(dist: SpecDistribution, *, size: int, batch_seed: int, index: int) -> MapSpec:
    """The spec of image ``index`` of a batch: a pure function of its arguments."""
    dist.validate()
    _check_seed_args(batch_seed, index)
    rng = np.random.default_rng([int(batch_seed), int(index), _SPEC_STREAM])
    codes = list(dist.condition_weights)
    n_min, n_max = dist.lesions_per_image
    n = int(rng.integers(n_min, n_max + 1))
    low, high = dist.area_fraction_range
    lesions = []
    for _ in range(n):
        condition = _choice(rng, codes, [dist.condition_weights[c] for c in codes])
        area = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        aspect = float(rng.uniform(1.0, 1.8))
        angle = float(rng.uniform(0.0, 180.0))
        if dist.location == "anywhere":
            margin = min(0.5, math.sqrt(area * aspect / math.pi))  # long radius, as a fraction
            x0, y0, x1, y1 = margin, margin, 1 - margin, 1 - margin
        elif dist.location == "centre":
            x0, y0, x1, y1 = 0.35, 0.35, 0.65, 0.65
        else:
            x0, y0, x1, y1 = (float(v) for v in dist.location)
        center = (float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)))
        lesions.append(
            LesionSpec(condition, center=center, area_fraction=area, aspect=aspect, angle_deg=angle)
        )
    if dist.skin_rgbs is not None:
        rgb = dist.skin_rgbs[int(rng.integers(len(dist.skin_rgbs)))]
        return MapSpec(size=size, lesions=tuple(lesions), skin_rgb=tuple(int(v) for v in rgb))
    weights = dist.fitzpatrick_weights or {k: 1.0 for k in FITZPATRICK_RGB}
    types = sorted(weights)
    fitzpatrick = int(_choice(rng, types, [weights[k] for k in types]))
    return MapSpec(size=size, lesions=tuple(lesions), fitzpatrick=fitzpatrick)
