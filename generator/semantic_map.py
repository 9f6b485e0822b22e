"""Semantic maps: what the DermGAN generator is conditioned on.

DermGAN (Ghorbani et al., "DermGAN: Synthetic Generation of Clinical Skin Images with
Pathology", ML4H 2019, arXiv:1911.08716) conditions a pix2pix-style U-Net (Isola et al.,
CVPR 2017, arXiv:1611.07004) on a semantic map that says *where* the lesion is, *what*
it is, and the colour of the healthy skin around it. This module turns a readable
description (``MapSpec``) or a real annotated photo (image + lesion mask + condition)
into that map.

Encoding (channel layout fixed in ``generator/config.py``)::

    0..2   healthy-skin colour, constant over the image, sRGB scaled to [-1, 1]
    3      lesion mask: 1 inside any lesion, 0 elsewhere
    4..    one channel per condition code: 1 inside that condition's lesions

Why one-hot condition channels plus a mask channel instead of DermGAN's colour per
condition: a colour code squeezes all conditions into 3 channels, so with 30+ conditions
neighbouring codes end up a few RGB levels apart and the network must learn to decode
arbitrary colour boundaries (and resampling or anti-aliasing blends two codes into a
third). One-hot channels keep conditions orthogonal whatever their number, adding a
condition adds one input channel (a few hundred weights in the first convolution), and
the separate mask channel gives every condition a shared "this is lesion" signal, so
rare conditions still benefit from what the network learnt about lesions in general.

Skin colour: given as sRGB, as a Fitzpatrick type (mapped to ``FITZPATRICK_RGB``), or as
an individual typology angle (ITA°, Chardon et al. 1991), which is mapped onto the
piecewise-linear path through the Fitzpatrick colours in CIELAB.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from generator.config import N_BASE_CHANNELS
from generator.white_balance import shades_of_grey

# ---------------------------------------------------------------------------
# Skin colours
# ---------------------------------------------------------------------------

# Representative healthy-skin colours for Fitzpatrick types I-VI, sRGB (D65).
# Each was chosen in CIELAB near published mean skin colours (L*, a*, b*) so that its
# ITA° falls inside the matching ITA group below (a test checks this):
#   I   L*70 a*8  b*12  -> ITA  59°  (very light)      IV  L*56 a*11 b*18 -> ITA  18° (tan)
#   II  L*66 a*10 b*15  -> ITA  47°  (light)           V   L*45 a*12 b*18 -> ITA -16° (brown)
#   III L*61 a*11 b*16  -> ITA  35°  (intermediate)    VI  L*33 a*10 b*13 -> ITA -53° (dark)
FITZPATRICK_LAB: dict[int, tuple[float, float, float]] = {
    1: (70.0, 8.0, 12.0),
    2: (66.0, 10.0, 15.0),
    3: (61.0, 11.0, 16.0),
    4: (56.0, 11.0, 18.0),
    5: (45.0, 12.0, 18.0),
    6: (33.0, 10.0, 13.0),
}
FITZPATRICK_RGB: dict[int, tuple[int, int, int]] = {  # = round(lab_to_rgb(FITZPATRICK_LAB[k]))
    1: (194, 165, 150),
    2: (188, 153, 134),
    3: (176, 140, 120),
    4: (164, 127, 104),
    5: (135, 98, 77),
    6: (99, 71, 58),
}

# Lower ITA° bound of each skin-colour group, lightest first (Chardon et al. 1991;
# Del Bino & Bernerd 2013), with the Fitzpatrick type conventionally associated:
# very light > 55° (I), light 41-55° (II), intermediate 28-41° (III), tan 10-28° (IV),
# brown -30-10° (V), dark < -30° (VI).
ITA_GROUPS: tuple[tuple[float, int, str], ...] = (
    (55.0, 1, "very light"),
    (41.0, 2, "light"),
    (28.0, 3, "intermediate"),
    (10.0, 4, "tan"),
    (-30.0, 5, "brown"),
    (-math.inf, 6, "dark"),
)

_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)


_C = np.arange(256) / 255.0
_SRGB_TO_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 or 0..255 floats, shape (..., 3)) to CIELAB (D65), float64 (..., 3).

    CIELAB is used because distances and medians there follow perceived colour better than
    in sRGB, and ITA° is defined on L* and b*.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:  # photos: a 256-entry lookup table is ~10x faster than the power law
        lin = _SRGB_TO_LINEAR[rgb]
    else:
        c = rgb.astype(np.float64) / 255.0
        lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T / _WHITE_D65
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65, shape (..., 3)) to sRGB floats in 0..255 (clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE_D65
    lin = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(c * 255.0, 0.0, 255.0)


def ita_degrees(L: float, b: float) -> float:
    """Individual typology angle ITA° = atan((L* - 50) / b*) · 180 / π.

    Chardon A, Cretois I, Hourseau C. Skin colour typology and suntanning pathways.
    Int J Cosmet Sci 1991;13(4):191-208. doi:10.1111/j.1467-2494.1991.tb00561.x

    b* <= 0 does not occur on skin; it is clipped to a tiny positive value so the angle
    stays in (-90°, 90°) as the definition intends.
    """
    return math.degrees(math.atan((L - 50.0) / max(b, 1e-6)))


def fitzpatrick_from_ita(ita: float) -> int:
    """Fitzpatrick group implied by an ITA° value through the ITA skin-colour groups.

    Del Bino S, Bernerd F. Variations in skin colour and the biological consequences of
    ultraviolet radiation exposure. Br J Dermatol 2013;169 Suppl 3:33-40.
    doi:10.1111/bjd.12529. The ITA group is an objective colour measure; the Fitzpatrick
    type it implies is the conventional correspondence, not a phototype diagnosis.
    """
    for lower, fitz, _ in ITA_GROUPS:
        if ita > lower:
            return fitz
    return 6


def ita_group_name(ita: float) -> str:
    for lower, _, name in ITA_GROUPS:
        if ita > lower:
            return name
    return "dark"


def rgb_from_ita(ita: float) -> tuple[int, int, int]:
    """Skin colour for an ITA° value: linear interpolation in CIELAB between the
    Fitzpatrick anchor colours ordered by their ITA°, clamped at the ends."""
    anchors = sorted(
        (ita_degrees(lab[0], lab[2]), np.array(lab)) for lab in FITZPATRICK_LAB.values()
    )  # darkest (lowest ITA) first
    angles = [a for a, _ in anchors]
    if ita <= angles[0]:
        lab = anchors[0][1]
    elif ita >= angles[-1]:
        lab = anchors[-1][1]
    else:
        i = int(np.searchsorted(angles, ita)) - 1
        t = (ita - angles[i]) / (angles[i + 1] - angles[i])
        lab = anchors[i][1] * (1 - t) + anchors[i + 1][1] * t
    return tuple(int(round(v)) for v in lab_to_rgb(lab))  # type: ignore[return-value]


@dataclass(frozen=True)
class SkinEstimate:
    """Healthy-skin colour estimated from a photo, with its ITA° and implied skin group."""

    rgb: tuple[int, int, int]
    ita_degrees: float
    fitzpatrick: int

    @property
    def ita_group(self) -> str:
        return ita_group_name(self.ita_degrees)


_MAX_SKIN_PIXELS = 20_000  # a median over 20k pixels is as good as over millions


def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    if image.shape[0] < 4 or image.shape[1] < 4:
        raise ValueError(f"{name} is too small: {image.shape[:2]}")
    return image


def _check_mask(mask: np.ndarray, shape: tuple[int, int] | None, name: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), got values outside 0/1")
        mask = mask.astype(bool)
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"{name} shape {mask.shape} does not match the image {tuple(shape)}")
    if not mask.any():
        raise ValueError(f"{name} is empty: no lesion pixel is set")
    return mask


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation with a square structuring element (pure numpy, separable max)."""
    out = mask.copy()
    for axis in (0, 1):
        acc = out.copy()
        for shift in range(1, radius + 1):
            acc |= np.roll(out, shift, axis=axis) & _not_wrapped(out.shape, shift, axis)
            acc |= np.roll(out, -shift, axis=axis) & _not_wrapped(out.shape, -shift, axis)
        out = acc
    return out


def _not_wrapped(shape: tuple[int, ...], shift: int, axis: int) -> np.ndarray:
    valid = np.ones(shape, dtype=bool)
    index = [slice(None)] * len(shape)
    index[axis] = slice(0, shift) if shift > 0 else slice(shape[axis] + shift, None)
    valid[tuple(index)] = False
    return valid


def estimate_skin_colour(
    image: np.ndarray, lesion_mask: np.ndarray | None = None, *, white_balance: bool = False
) -> SkinEstimate:
    """Estimate the healthy-skin colour of a clinical photo.

    The healthy skin is everything outside the lesion mask, kept a small margin away from
    the lesion (its border is often blurred or inflamed); without a mask, a border ring of
    the image (outer 12% on each side), where dermatology photos rarely put the lesion.
    The colour is the per-channel median in CIELAB: robust to hair, shadows, specular
    highlights and other lesions, and perceptually meaningful. ITA° is computed from the
    median L* and b*. ``white_balance=True`` first applies shades-of-grey (p = 6) white
    balance to the whole image (``generator.white_balance``); see the README for how
    either agrees with dermatologists' Fitzpatrick labels (barely).

    Parameters
    ----------
    image : uint8 array (H, W, 3), sRGB
    lesion_mask : bool array (H, W) or None

    Raises
    ------
    ValueError naming ``image`` or ``lesion_mask`` when the input is malformed, the mask
    is empty, or no healthy skin is left.
    """
    image = _check_image(image)
    if white_balance:
        image = shades_of_grey(image)
    h, w = image.shape[:2]
    if lesion_mask is None:
        ring = max(1, int(round(0.12 * min(h, w))))
        healthy = np.ones((h, w), dtype=bool)
        healthy[ring:-ring, ring:-ring] = False
    else:
        mask = _check_mask(lesion_mask, (h, w), "lesion_mask")
        margin = max(1, int(round(0.02 * min(h, w))))
        healthy = ~_dilate(mask, margin)
        if healthy.sum() < 16:
            healthy = ~mask
    pixels = image[healthy]
    if len(pixels) < 16:
        raise ValueError(
            "lesion_mask covers the whole image: no healthy skin left to estimate the colour from"
        )
    if len(pixels) > _MAX_SKIN_PIXELS:  # deterministic subsample keeps big photos fast
        pixels = pixels[:: len(pixels) // _MAX_SKIN_PIXELS + 1]
    L, a, b = np.median(rgb_to_lab(pixels), axis=0)
    rgb = tuple(int(round(v)) for v in lab_to_rgb(np.array([L, a, b])))
    ita = ita_degrees(float(L), float(b))
    return SkinEstimate(rgb=rgb, ita_degrees=ita, fitzpatrick=fitzpatrick_from_ita(ita))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------


def _mask_to_json(mask: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(mask.shape),
        "bits": base64.b64encode(np.packbits(mask.astype(bool), axis=None).tobytes()).decode("ascii"),
    }


def _mask_from_json(data: Any) -> np.ndarray:
    try:
        h, w = (int(v) for v in data["shape"])
        bits = np.frombuffer(base64.b64decode(data["bits"], validate=True), dtype=np.uint8)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"mask must be {{'shape': [h, w], 'bits': base64}}: {exc}") from None
    # Checked before unpacking: a huge claimed shape would otherwise allocate h*w zero bytes.
    if h < 1 or w < 1 or len(bits) != (h * w + 7) // 8:
        raise ValueError(f"mask shape {h}x{w} does not match its {len(bits)} bytes of bits")
    return np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)


def _number(name: str, value: Any) -> float:
    """``float(value)``, or a ValueError naming the field (JSON can hold null, lists, 1e400)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True, eq=False)
class LesionSpec:
    """One lesion: its condition code and region.

    The region is either an ellipse (``center`` as (x, y) fractions of the image width and
    height, ``area_fraction`` of the image area, ``aspect`` = long/short radius ratio,
    ``angle_deg`` rotation of the long axis, counter-clockwise from +x) or a given binary
    ``mask`` covering the whole image (any resolution; resized to the map size with nearest
    neighbour), in which case the ellipse fields are ignored.
    """

    condition: str
    center: tuple[float, float] = (0.5, 0.5)
    area_fraction: float = 0.05
    aspect: float = 1.0
    angle_deg: float = 0.0
    mask: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.condition, str) or not self.condition.strip():
            raise ValueError(f"condition must be a non-empty condition code, got {self.condition!r}")
        if self.mask is not None:
            object.__setattr__(self, "mask", _check_mask(self.mask, None, "mask"))
            return
        try:
            x, y = (float(v) for v in self.center)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"center must be a pair (x, y) of fractions, got {self.center!r}") from None
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) or math.isnan(x + y):
            raise ValueError(f"center {self.center!r} is outside the image: x and y must be within [0, 1]")
        object.__setattr__(self, "center", (x, y))
        area = _number("area_fraction", self.area_fraction)
        if not area > 0.0:
            raise ValueError(f"area_fraction must be > 0, got {self.area_fraction!r}")
        if area > 1.0:
            raise ValueError(f"area_fraction {self.area_fraction!r} is larger than the image (must be <= 1)")
        aspect = _number("aspect", self.aspect)
        if not (1.0 <= aspect <= 20.0):
            raise ValueError(f"aspect must be within [1, 20] (long/short radius), got {self.aspect!r}")
        if not math.isfinite(_number("angle_deg", self.angle_deg)):
            raise ValueError(f"angle_deg must be finite, got {self.angle_deg!r}")
        long_diameter = 2 * math.sqrt(area * aspect / math.pi)  # in image widths
        if long_diameter > math.sqrt(2):
            raise ValueError(
                f"area_fraction {area} with aspect {aspect} gives an ellipse {long_diameter:.2f} image widths "
                "long: larger than the image (its diagonal is 1.41)"
            )
        object.__setattr__(self, "area_fraction", area)
        object.__setattr__(self, "aspect", aspect)
        object.__setattr__(self, "angle_deg", float(self.angle_deg))

    def region(self, size: int) -> np.ndarray:
        """Boolean (size, size) mask of this lesion at a given map size."""
        if self.mask is not None:
            return _resize_mask(self.mask, size)
        radius_long = math.sqrt(self.area_fraction * self.aspect / math.pi) * size
        radius_short = radius_long / self.aspect
        cx, cy = self.center[0] * size, self.center[1] * size
        coords = np.arange(size) + 0.5  # pixel centres
        dx = coords[None, :] - cx
        dy = coords[:, None] - cy
        t = math.radians(self.angle_deg)
        u = dx * math.cos(t) - dy * math.sin(t)  # image y points down: counter-clockwise on screen
        v = dx * math.sin(t) + dy * math.cos(t)
        region = (u / radius_long) ** 2 + (v / radius_short) ** 2 <= 1.0
        if not region.any():  # tiny lesion at a coarse size: keep at least its centre pixel
            region[min(int(cy), size - 1), min(int(cx), size - 1)] = True
        return region

    def to_dict(self) -> dict[str, Any]:
        if self.mask is not None:
            return {"condition": self.condition, "mask": _mask_to_json(self.mask)}
        return {
            "condition": self.condition,
            "center": list(self.center),
            "area_fraction": self.area_fraction,
            "aspect": self.aspect,
            "angle_deg": self.angle_deg,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LesionSpec:
        names = {"condition", "center", "area_fraction", "aspect", "angle_deg", "mask"}
        if not isinstance(data, dict) or "condition" not in data or not set(data) <= names:
            got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"a lesion is a mapping with condition and only {sorted(names)}, got {got}")
        data = dict(data)
        if data.get("mask") is not None:
            data["mask"] = _mask_from_json(data["mask"])
        if isinstance(data.get("center"), list):
            data["center"] = tuple(data["center"])
        return cls(**data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LesionSpec) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    h, w = mask.shape
    if (h, w) == (size, size):
        return mask.copy()
    rows = np.minimum((np.arange(size) + 0.5) * h / size, h - 1).astype(int)
    cols = np.minimum((np.arange(size) + 0.5) * w / size, w - 1).astype(int)
    out = mask[rows[:, None], cols[None, :]]
    if not out.any():  # a lesion smaller than one output pixel still shows up
        ys, xs = np.nonzero(mask)
        out[min(int(ys.mean() * size / h), size - 1), min(int(xs.mean() * size / w), size - 1)] = True
    return out


MAX_SIZE = 4096


@dataclass(frozen=True)
class MapSpec:
    """Everything the generator needs for one image: size, skin colour, lesions.

    Exactly one skin source: ``skin_rgb`` (0..255 ints), ``fitzpatrick`` (1..6, mapped to
    ``FITZPATRICK_RGB``) or ``ita_degrees`` (mapped by ``rgb_from_ita``).
    """

    size: int
    lesions: tuple[LesionSpec, ...]
    skin_rgb: tuple[int, int, int] | None = None
    fitzpatrick: int | None = None
    ita_degrees: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)):
            raise ValueError(f"size must be an integer number of pixels, got {self.size!r}")
        if not 0 < self.size <= MAX_SIZE:
            raise ValueError(f"size must be within 1..{MAX_SIZE} pixels, got {self.size}")
        object.__setattr__(self, "size", int(self.size))
        lesions = tuple(self.lesions)
        if not lesions:
            raise ValueError("lesions must contain at least one LesionSpec")
        for i, lesion in enumerate(lesions):
            if not isinstance(lesion, LesionSpec):
                raise ValueError(f"lesions[{i}] must be a LesionSpec, got {type(lesion).__name__}")
        object.__setattr__(self, "lesions", lesions)
        sources = [n for n in ("skin_rgb", "fitzpatrick", "ita_degrees") if getattr(self, n) is not None]
        if len(sources) != 1:
            raise ValueError(
                f"skin colour: give exactly one of skin_rgb, fitzpatrick, ita_degrees (got {sources or 'none'})"
            )
        if self.skin_rgb is not None:
            try:
                rgb = tuple(self.skin_rgb)
            except TypeError:
                rgb = ()
            if len(rgb) != 3 or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255 for v in rgb
            ):
                raise ValueError(f"skin_rgb must be three integers in 0..255, got {self.skin_rgb!r}")
            object.__setattr__(self, "skin_rgb", tuple(int(v) for v in rgb))
        try:
            known = self.fitzpatrick is None or self.fitzpatrick in FITZPATRICK_RGB
        except TypeError:  # unhashable, e.g. a list from JSON
            known = False
        if not known:
            raise ValueError(f"fitzpatrick must be a skin type 1..6, got {self.fitzpatrick!r}")
        if self.ita_degrees is not None:
            ita = _number("ita_degrees", self.ita_degrees)
            if not -90.0 < ita < 90.0:
                raise ValueError(f"ita_degrees must be within (-90, 90), got {self.ita_degrees!r}")
            object.__setattr__(self, "ita_degrees", ita)

    def resolved_skin_rgb(self) -> tuple[int, int, int]:
        if self.skin_rgb is not None:
            return self.skin_rgb
        if self.fitzpatrick is not None:
            return FITZPATRICK_RGB[self.fitzpatrick]
        return rgb_from_ita(float(self.ita_degrees))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "skin_rgb": list(self.skin_rgb) if self.skin_rgb is not None else None,
            "fitzpatrick": self.fitzpatrick,
            "ita_degrees": self.ita_degrees,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MapSpec:
        """The inverse of ``to_dict``; anything else is a ValueError naming the field."""
        if not isinstance(data, dict) or "size" not in data or not isinstance(data.get("lesions"), list):
            got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"a MapSpec is a mapping with size and a list of lesions, got {got}")
        rgb = data.get("skin_rgb")
        return cls(
            size=data["size"],
            lesions=tuple(LesionSpec.from_dict(d) for d in data["lesions"]),
            skin_rgb=tuple(rgb) if isinstance(rgb, list) else rgb,
            fitzpatrick=data.get("fitzpatrick"),
            ita_degrees=data.get("ita_degrees"),
        )


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def _condition_index(conditions: Sequence[str]) -> dict[str, int]:
    conditions = list(conditions)
    if not conditions:
        raise ValueError("conditions must list at least one condition code")
    if len(set(conditions)) != len(conditions):
        raise ValueError(f"conditions contain duplicates: {conditions}")
    return {code: i for i, code in enumerate(conditions)}


def _encode_regions(
    skin_rgb: tuple[int, int, int],
    regions: Sequence[tuple[int, np.ndarray]],
    n_conditions: int,
    shape: tuple[int, int],
) -> torch.Tensor:
    h, w = shape
    out = np.zeros((N_BASE_CHANNELS + n_conditions, h, w), dtype=np.float32)  # (C, H, W)
    out[0:3] = (np.asarray(skin_rgb, dtype=np.float32) / 127.5 - 1.0)[:, None, None]
    for index, region in regions:
        out[3][region] = 1.0
        out[N_BASE_CHANNELS + index][region] = 1.0
    return torch.from_numpy(out)


def encode(spec: MapSpec, conditions: Sequence[str]) -> torch.Tensor:
    """Semantic map of a spec: float32 tensor (4 + len(conditions), size, size).

    Raises ValueError naming ``condition`` when a lesion's code is not in ``conditions``
    (the checkpoint's condition list).
    """
    index = _condition_index(conditions)
    regions = []
    for i, lesion in enumerate(spec.lesions):
        if lesion.condition not in index:
            raise ValueError(
                f"lesions[{i}].condition {lesion.condition!r} is unknown to this generator "
                f"(known: {', '.join(index)})"
            )
        regions.append((index[lesion.condition], lesion.region(spec.size)))
    return _encode_regions(spec.resolved_skin_rgb(), regions, len(index), (spec.size, spec.size))


def encode_batch(specs: Sequence[MapSpec], conditions: Sequence[str]) -> torch.Tensor:
    """Stack of ``encode`` results, (B, C, H, W); all specs must share one size."""
    if not specs:
        raise ValueError("specs must not be empty")
    sizes = {s.size for s in specs}
    if len(sizes) != 1:
        raise ValueError(f"size differs between specs in one batch: {sorted(sizes)}")
    return torch.stack([encode(s, conditions) for s in specs])


def map_from_annotation(
    image: np.ndarray, mask: np.ndarray, condition: str, conditions: Sequence[str]
) -> torch.Tensor:
    """Training map from a real annotated photo: (C, H, W) for an (H, W, 3) image.

    The skin colour channels carry ``estimate_skin_colour(image, mask)``; the lesion
    channels the given mask under its condition.
    """
    image = _check_image(image)
    mask = _check_mask(mask, image.shape[:2], "mask")
    index = _condition_index(conditions)
    if condition not in index:
        raise ValueError(f"condition {condition!r} is unknown (known: {', '.join(index)})")
    skin = estimate_skin_colour(image, mask)
    return _encode_regions(skin.rgb, [(index[condition], mask)], len(index), image.shape[:2])
