"""Automatic lesion masks for clinical and dermoscopic photos, with no learned weights.

``segment_lesion(image)`` returns a boolean (H, W) mask of the one lesion a photo is framed
on, so real datasets without masks (PAD-UFES-20) can train DermGAN and seed the mask editor.

Method (at 256 px on the long side; the mask is smoothed and upsampled back):

1. CIELAB; thin structures are found and filled in from their surroundings: dark hair
   (black-hat on L*), white hair and glints (top-hat), surgical-marker ink (bluer than its
   surroundings in b*, or far bluer than any lesion), each kept only when long and thin
   (largest inner distance small against its length) so small round lesions survive.
2. Healthy skin as a smooth quadratic surface per LAB channel, fitted by iteratively
   reweighted least squares starting from the frame border (absorbs lighting gradients and
   mild vignetting), with a robust per-channel spread (MAD).
3. Evidence = distance from that surface in robust SDs (L* down-weighted: shading), blurred,
   tilted by a centre prior (photos are framed on the lesion).
4. A core: Otsu threshold (floor 3 SDs), opening, and the component scoring highest on
   evidence x centre prior, penalised when it runs along the frame edge. The edge: where a
   broader-blurred evidence falls to 40% of the core's own contrast, the component holding
   the core; holes filled, outline rounded.
5. Never empty or whole-frame: a region that is tiny, covers > 90%, or hugs the frame edge
   off-centre is replaced by the most unlike-skin blob near the centre (else a centre disc).

Good at: one lesion clearly darker or redder than skin (naevi, melanomas, SEK, crusted and
ulcerated BCC/SCC), hair, pen circles around the lesion, lighting gradients, black
dermoscopy corners. Bad at: faint lesions on mottled or sun-damaged skin (ACK, flat BCC;
the outline wanders or shrinks to the most contrasting part), pale lesions lighter than
the skin, lesions that fill the frame, shading of ears, nose and skin folds, heavy pen
marks touching the lesion, photos with several lesions (it picks the most central strong one).

Measured (see NOTES-segment.md; procedural photos of ``generator.data.procedural_sample``,
seeds 0-199, 256 px): Dice median 0.960, mean 0.953, 10th percentile 0.925, minimum 0.76;
about 0.1 s per photo on one CPU core at 256-512 px (and for 1600x1200 photos, which are
downscaled first). The procedural lesions are easier than real ones: these figures bound
it from above, they do not predict Dice on clinical photos.

Deterministic: no randomness anywhere. Command line::

    python -m generator.segmentation IN.png OUT_mask.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from generator.semantic_map import rgb_to_lab

WORK_SIZE = 256  # long side the photo is analysed at; the mask is upsampled back
# All lengths below are in pixels at WORK_SIZE and scale with smaller photos. The values
# were chosen by eye on the PAD-UFES-20 sample and checked on the procedural photos
# (never against any third-party mask of a real photo).
EVIDENCE_BLUR = 2.0  # smoothing of the per-pixel skin distance: skin texture is not lesion
DARKER_WEIGHT = 0.8  # L* counts less than colour: shading and curvature change L* most
BRIGHTER_WEIGHT = 0.5  # brighter-than-skin counts even less (glare, highlights on folds)
PRIOR_SIGMA = 0.28  # centre prior, as a fraction of the frame: photos are framed on the lesion
CENTRE_TILT = 0.4  # how much the centre prior lowers the evidence near the frame edge
MIN_THRESHOLD = 3.0  # core threshold floor (robust skin SDs): Otsu on clear skin finds noise
OPEN_RADIUS = 3  # morphological opening/closing radius
PEAK_QUANTILE = 0.75  # the lesion's own contrast, robust to a few very dark/bright spots
EDGE_FRACTION = 0.4  # edge where the contrast falls to this fraction of the lesion's own
LOW_FRACTION = 0.7  # ...but never below this fraction of the core threshold
EDGE_BLUR = 3.0  # extra smoothing for the edge map: outlines like an expert's, not pixel-exact
ROUNDING = 3.0  # final Gaussian rounding of the outline
UPSAMPLE_BLUR = 2.0  # soft mask blur before bilinear upsampling (smooth edges at full size)


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------


def _as_rgb_array(image: object) -> np.ndarray:
    """uint8 (H, W, 3) from a PIL image or a uint8 (H, W, 3|4) array; ValueError otherwise."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"image must be a uint8 array, got dtype {image.dtype}")
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"image must have shape (H, W, 3) or (H, W, 4), got {image.shape}")
        array = image[..., :3]
    else:
        raise ValueError(f"image must be a PIL image or a uint8 numpy array, got {type(image).__name__}")
    if min(array.shape[:2]) < 8:
        raise ValueError(f"image must be at least 8x8 pixels, got {array.shape[1]}x{array.shape[0]}")
    return np.ascontiguousarray(array)


def _downscale(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX))


# ---------------------------------------------------------------------------
# Small image-processing helpers (no skimage/opencv on purpose: numpy/scipy only)
# ---------------------------------------------------------------------------


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius * radius + radius


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def _thinness(
    mask: np.ndarray, min_length: float, max_half_width: float, elongation: float = 5.0
) -> np.ndarray:
    """The components of ``mask`` that are long and thin (hair, pen strokes, skin folds).

    Thickness is the largest distance from a component pixel to the component's edge: half
    the stroke width for a line or a ring, the radius for a blob, so small round lesions are
    kept out; length is the bounding-box diagonal.
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros_like(mask)
    index = np.arange(1, n + 1)
    half_width = ndimage.maximum(ndimage.distance_transform_edt(mask), labels, index)
    slices = ndimage.find_objects(labels)
    diag = np.array([np.hypot(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in slices])
    half_width = np.asarray(half_width)
    thin = (diag >= min_length) & (half_width <= max_half_width) & (diag >= elongation * half_width)
    return np.concatenate([[False], thin])[labels]


def _inpaint(channels: np.ndarray, holes: np.ndarray, sigma: float) -> np.ndarray:
    """Fill ``holes`` in (H, W, C) by normalised Gaussian convolution of the rest."""
    if not holes.any():
        return channels
    keep = (~holes).astype(np.float64)
    weight = ndimage.gaussian_filter(keep, sigma, mode="nearest")
    out = channels.copy()
    for c in range(channels.shape[2]):
        filled = ndimage.gaussian_filter(channels[..., c] * keep, sigma, mode="nearest") / np.maximum(
            weight, 1e-6
        )
        out[..., c] = np.where(holes, filled, channels[..., c])
    return out


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------


def _artefacts(lab: np.ndarray, scale: float) -> np.ndarray:
    """Hair, pen marks and thin specular streaks: thin structures unlike their surroundings."""
    L, b = lab[..., 0], lab[..., 2]
    hair = max(5, int(round(11 * scale))) | 1
    pen = max(7, int(round(17 * scale))) | 1
    dark = ndimage.grey_closing(L, size=(hair, hair)) - L > 8  # black-hat: dark hair
    bright = L - ndimage.grey_opening(L, size=(hair, hair)) > 10  # top-hat: white hair, glints
    # surgical-marker ink (blue/purple): strokes much bluer (lower b*) than around them,
    # drawn thicker than hair at this size
    ink = (ndimage.grey_closing(b, size=(pen, pen)) - b > 5) & (b < np.median(b) - 6)
    thin = _thinness(dark, min_length=14 * scale, max_half_width=3.0 * scale)
    thin |= _thinness(ink, min_length=20 * scale, max_half_width=8.0 * scale, elongation=6.0)
    thin |= _thinness(bright, min_length=14 * scale, max_half_width=2.0 * scale)
    # a heavy marker blob of any shape: bluer than any lesion in the sample (blue-black
    # melanomas and blue naevi stay above b* = -20 there)
    thin |= (b < -22) & (b < np.median(b) - 25)
    return ndimage.binary_dilation(thin, iterations=max(1, int(round(1.5 * scale))))


def _design(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (x + 0.5) / w * 2 - 1
    y = (y + 0.5) / h * 2 - 1
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)


def _skin_model(lab: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth healthy-skin field (H, W, 3) and robust per-channel spread (3,).

    Healthy skin is fitted as a quadratic surface per LAB channel (catches lighting
    gradients and mild vignetting), by iteratively reweighted least squares that start
    from the image border (where photographers rarely put the lesion) and then drop the
    pixels that do not look like skin.
    """
    h, w = lab.shape[:2]
    X = _design(h, w)
    values = lab.reshape(-1, 3)
    y, x = np.mgrid[0:h, 0:w]
    r = np.maximum(np.abs((x + 0.5) / w * 2 - 1), np.abs((y + 0.5) / h * 2 - 1))
    weight = ((r > 0.6) & usable).reshape(-1).astype(np.float64)
    if weight.sum() < 50:
        weight = usable.reshape(-1).astype(np.float64)
    step = max(1, X.shape[0] // 20000)  # subsample: the surface is smooth
    floor = np.array([2.5, 1.5, 1.5])
    for _ in range(4):
        sel = slice(None, None, step)
        Xw = X[sel] * weight[sel, None]
        coef, *_ = np.linalg.lstsq(Xw.T @ X[sel], Xw.T @ values[sel], rcond=None)
        field = X @ coef
        resid = values - field
        good = weight > 0.5
        spread = np.maximum(1.4826 * np.median(np.abs(resid[good]), axis=0), floor)
        z = np.sqrt(((resid / spread) ** 2).sum(axis=1))
        weight = ((z < 3.0) & usable.reshape(-1)).astype(np.float64)
        if weight.sum() < 50:
            break
    return field.reshape(h, w, 3), spread


def _evidence(lab: np.ndarray, field: np.ndarray, spread: np.ndarray, scale: float) -> np.ndarray:
    """How unlike healthy skin each pixel is, in robust standard deviations (H, W)."""
    resid = (lab - field) / spread
    # brighter than skin is weaker evidence than darker (glare, curvature highlights)
    resid[..., 0] *= np.where(resid[..., 0] > 0, BRIGHTER_WEIGHT, DARKER_WEIGHT)
    z = np.sqrt((resid**2).sum(axis=-1))
    return ndimage.gaussian_filter(z, scale, mode="nearest")


def _centre_prior(h: int, w: int, sigma: float = 0.35) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    dx = ((x + 0.5) / w - 0.5) / sigma
    dy = ((y + 0.5) / h - 0.5) / sigma
    return np.exp(-0.5 * (dx * dx + dy * dy))


def _select(candidate: np.ndarray, evidence: np.ndarray, threshold: float, prior: np.ndarray) -> np.ndarray:
    """The one component that is most lesion-like: strong, big, central, not the frame edge."""
    labels, n = ndimage.label(candidate)
    if n == 0:
        return np.zeros_like(candidate)
    index = np.arange(1, n + 1)
    strength = ndimage.sum_labels((evidence - threshold * 0.5) * prior, labels, index)
    border = np.zeros_like(candidate)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    touching = ndimage.sum_labels(border, labels, index) / (2 * sum(candidate.shape))
    score = strength * (1 - np.clip(2 * touching, 0, 0.9))
    return labels == index[int(np.argmax(score))]


def _plausible(mask: np.ndarray) -> bool:
    """Not empty, not the whole frame, and not a sliver hugging the frame edge off-centre.

    Clinical and dermoscopic photos are framed on the lesion, so a region that both touches
    the edge and has its centre far out is almost always background, clothing or vignetting.
    """
    area = mask.mean()
    if not 0.002 <= area <= 0.9:
        return False
    h, w = mask.shape
    y, x = np.nonzero(mask)
    off = max(abs((x.mean() + 0.5) / w - 0.5), abs((y.mean() + 0.5) / h - 0.5))
    edge = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    return not (edge and off > 0.3)


def _fallback(evidence: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """A central blob: the most unlike-skin pixels around the centre, or a centre disc."""
    h, w = evidence.shape
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot((x + 0.5) / w - 0.5, (y + 0.5) / h - 0.5)
    disc = r < 0.12
    score = evidence * prior
    inner = score > np.quantile(score[r < 0.3], 0.8)
    blob = _select(inner & (r < 0.3), score, 0.0, prior)
    area = blob.mean()
    return blob if 0.005 < area < 0.2 else disc


def _segment_small(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask (bool) and soft mask (float) at the working size."""
    h, w = rgb.shape[:2]
    scale = max(h, w) / WORK_SIZE
    lab = rgb_to_lab(rgb)
    artefacts = _artefacts(lab, scale)
    lab = _inpaint(lab, artefacts, 3 * scale)
    field, spread = _skin_model(lab, ~artefacts)
    evidence = _evidence(lab, field, spread, EVIDENCE_BLUR * scale)
    prior = _centre_prior(h, w, PRIOR_SIGMA)
    evidence = evidence * (1 - CENTRE_TILT + CENTRE_TILT * prior)

    threshold = float(np.clip(_otsu(evidence), MIN_THRESHOLD, 12.0))
    radius = max(1, int(round(OPEN_RADIUS * scale)))
    disk = _disk(radius)
    core = ndimage.binary_opening(evidence > threshold, structure=disk)
    core = ndimage.binary_closing(core, structure=_disk(2 * radius), border_value=0)
    core = _select(core, evidence, threshold, prior)
    if core.any():
        # the lesion's edge is where its contrast falls to a fraction of its own peak
        # (half-maximum style), so strong lesions are not grown into their halo
        peak = float(np.quantile(evidence[core], PEAK_QUANTILE))
        level = max(LOW_FRACTION * threshold, EDGE_FRACTION * peak)
        broad = ndimage.gaussian_filter(evidence, EDGE_BLUR * scale, mode="nearest")
        region = ndimage.binary_opening(broad > level, structure=disk)
        region = ndimage.binary_closing(region, structure=disk, border_value=0)
        labels, _ = ndimage.label(region)
        hit = np.bincount(labels[core], minlength=labels.max() + 1)
        hit[0] = 0
        mask = labels == int(np.argmax(hit)) if hit.any() else core
    else:
        mask = core
    mask = ndimage.binary_fill_holes(mask)
    # expert outlines are smooth: drop protrusions thinner than a few pixels
    mask = ndimage.gaussian_filter(mask.astype(np.float64), ROUNDING * scale) > 0.5
    mask = _select(mask, evidence, 0.0, prior) if mask.any() else mask
    mask = ndimage.binary_fill_holes(mask)
    if not _plausible(mask):
        mask = _fallback(evidence, prior)
    soft = ndimage.gaussian_filter(mask.astype(np.float64), max(0.8, UPSAMPLE_BLUR * scale), mode="nearest")
    return mask, soft


def segment_lesion(image: Image.Image | np.ndarray) -> np.ndarray:
    """Boolean lesion mask (H, W) of a clinical or dermoscopic photo.

    Parameters
    ----------
    image : PIL image (any mode, converted to RGB) or uint8 array (H, W, 3) or (H, W, 4)
        (alpha ignored), at least 8x8 pixels.

    Returns
    -------
    bool array (H, W), the same size as the photo: one connected region, never empty and
    never the whole frame (a central blob when nothing stands out from the skin).

    Raises
    ------
    ValueError naming the problem when ``image`` is not a PIL image or a uint8 array of
    that shape, or is smaller than 8x8.
    """
    rgb = _as_rgb_array(image)
    h, w = rgb.shape[:2]
    small = _downscale(rgb, WORK_SIZE)
    _, soft = _segment_small(small)
    if soft.shape != (h, w):
        soft = np.asarray(Image.fromarray(soft.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    mask = soft >= 0.5
    if not mask.any():  # a sliver lost to resampling: keep its strongest pixel
        mask[np.unravel_index(int(np.argmax(soft)), soft.shape)] = True
    return mask


def main(argv: list[str] | None = None) -> int:
    """``python -m generator.segmentation IN.png OUT_mask.png``: write a 0/255 mask PNG."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m generator.segmentation IN.png OUT_mask.png", file=sys.stderr)
        return 2
    source, target = Path(args[0]), Path(args[1])
    with Image.open(source) as im:
        mask = segment_lesion(im)
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(target)
    print(f"{target}: lesion covers {mask.mean():.1%} of {mask.shape[1]}x{mask.shape[0]} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
