"""Shades-of-grey white balance, tried before the skin-colour (ITA°) estimate.

A photo's colour is skin × illuminant × camera. ITA° is read from L* and b*, and b*
(yellow-blue) moves with the illuminant's colour temperature, so a warm lamp makes pale
skin look tanned. Shades of grey (Finlayson & Trezzi 2004) estimates the illuminant as
the Minkowski p-norm mean of each channel, ``e_c = (mean(I_c ** p)) ** (1/p)``: p = 1 is
grey-world, p = ∞ is max-RGB, and p = 6 is what dermoscopy colour-constancy work found
best (Barata et al. 2015). Each channel is then divided by its ``e_c``, in linear RGB
(a von Kries correction is a per-channel gain on light, not on gamma-encoded values).

The gains are scaled so the illuminant estimate keeps its luminance (``Y``): white
balance should change hue, not brightness, because L* is the other half of ITA°.

References
----------
Finlayson GD, Trezzi E. Shades of gray and colour constancy. Proc. IS&T/SID Color
Imaging Conference 2004:37-41. doi:10.2352/CIC.2004.12.1.art00008
Barata C, Celebi ME, Marques JS. Improving dermoscopy image classification using color
constancy. IEEE J Biomed Health Inform 2015;19(3):1146-1152. doi:10.1109/JBHI.2014.2336473
"""

from __future__ import annotations

import numpy as np

_C = np.arange(256) / 255.0
_SRGB_TO_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4)
_LUMINANCE = np.array([0.2126729, 0.7151522, 0.0721750])  # Y row of sRGB -> XYZ (D65)


def _linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(c * 255.0), 0, 255).astype(np.uint8)


def illuminant_estimate(image: np.ndarray, p: float = 6.0) -> np.ndarray:
    """The shades-of-grey illuminant of a uint8 sRGB image (H, W, 3): linear RGB, shape (3,)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if not p >= 1:
        raise ValueError(f"p must be at least 1, got {p!r}")
    lin = _SRGB_TO_LINEAR[image].reshape(-1, 3)  # (N, 3)
    return np.mean(lin**p, axis=0) ** (1.0 / p)


def shades_of_grey(image: np.ndarray, p: float = 6.0) -> np.ndarray:
    """White-balance a uint8 sRGB image (H, W, 3) so its p-norm illuminant becomes neutral grey.

    Returns a uint8 sRGB image of the same shape. A black image (no light to estimate
    from) is returned unchanged.

    >>> warm = np.zeros((2, 2, 3), np.uint8) + np.array([200, 150, 100], np.uint8)
    >>> balanced = shades_of_grey(warm)
    >>> int(balanced[0, 0].max()) - int(balanced[0, 0].min()) <= 1
    True
    """
    e = illuminant_estimate(image, p)  # (3,)
    if not np.all(e > 0):
        return np.asarray(image).copy()
    gains = float(_LUMINANCE @ e) / e  # the illuminant maps to a grey of the same luminance
    return _linear_to_srgb8(_SRGB_TO_LINEAR[image] * gains)
