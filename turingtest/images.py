"""``normalize()``: the one door every rater-visible image passes through.

Real photographs, DermGAN renders and procedural demo images all leave here with
identical file properties, so nothing but the pixels can tell them apart:

* **Square, ``settings.IMAGE_SIZE`` pixels** (default 256). Non-square inputs are
  *centre-cropped* to their largest centred square, then resized with Lanczos.
  We crop rather than pad because padding draws bars that only non-square
  (real, dataset) photographs would get — a tell that a rater would learn at once.
  Dermatology datasets centre the lesion, so the crop keeps it.
* **PNG, 8-bit RGB, uncompressed, written here.** Lossless, so the file holds exactly
  the normalized pixels and re-encoding never drifts; JPEG's chroma subsampling and
  quantisation would add artefacts whose strength depends on encoder state and
  version. The deflate stream is *stored* (no compression) with filter type 0 on every
  row, in one IDAT chunk, so **the byte length depends only on the pixel size**: every
  ``IMAGE_SIZE`` image is exactly ``png_length(IMAGE_SIZE)`` bytes (196,947 at 256 px)
  and costs the same to read and send. A compressed PNG's size follows its content
  (real photos compress worse than smooth renders); the issue that prompted this found
  ``Content-Length`` separating real from synthetic with AUC 1.0. Padding compressed
  files to a fixed size would also hide the length, but needs a fixed upper bound and
  still leaves the decoder's work content-dependent; stored blocks need neither. The
  price is bandwidth: ~197 KB per 256-px image instead of ~40–100 KB (a 100-item study
  is ~20 MB per rater), and 2–5 × more library storage. The encoder is ours (IHDR, IDAT,
  IEND; ~20 lines with ``zlib.adler32``/``crc32``) rather than Pillow's so the bytes,
  and therefore ``sha256`` — the pixel hash that detects duplicates — are a pure
  function of the pixels, independent of Pillow's filter heuristics and zlib's block
  sizes in future versions.
* **sRGB.** An embedded ICC profile is applied (converted to sRGB with LittleCMS)
  before it is dropped; untagged images are taken as sRGB, as browsers do.
* **No metadata.** EXIF orientation is applied to the pixels first, then nothing is
  written but IHDR/IDAT/IEND: no EXIF, ICC, XMP, gamma, dpi, text or time chunks.
* **Any input mode.** 16-bit and float greyscale are scaled to 8 bit, palette and
  transparency are composited over white (transparency in a dermatology photo is
  an export artefact; white matches how viewers display it), CMYK/LAB/greyscale
  become RGB.

Masks (lesion segmentations) go through the same crop and a nearest-neighbour
resize, so lesion geometry (area fraction, bounding box) stays aligned. Masks are never
served to raters, so they keep Pillow's compressed PNG.

``NormalizedImage.native_size`` records the pixel size before cropping and resizing
(after EXIF orientation): a 128-px render upscaled to 256 looks softer than a photo
downscaled from 2000 px, and the study page warns about it (resolution parity).

Decompression bombs are refused before decoding (``IMAGE_MAX_PIXELS``), and a
truncated file is an error rather than a silently grey-padded image.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageCms, ImageFile, ImageOps, UnidentifiedImageError

# Truncated files must fail loudly (Pillow's default, stated so nobody flips it).
ImageFile.LOAD_TRUNCATED_IMAGES = False

MASK_PNG_COMPRESS_LEVEL = 6  # masks only; served images are stored uncompressed
_STORED_BLOCK = 65_535  # the largest deflate stored block
DEFAULT_MAX_PIXELS = 64_000_000  # a 8000 × 8000 photograph; dermoscopy images are far smaller

ImageSource = PILImage.Image | bytes | str | Path | BinaryIO


class ImageError(ValueError):
    """An input that cannot become a library image; the message says why, for a person."""


@dataclass(frozen=True)
class NormalizedImage:
    """The normalized pixels, their PNG bytes and, when given, the aligned lesion mask."""

    image: PILImage.Image  # RGB, size × size
    data: bytes  # the PNG file, deterministic for the pixels
    sha256: str  # of ``data``
    mask: np.ndarray | None = None  # bool (size, size)
    mask_data: bytes | None = None  # 1-bit-looking 8-bit PNG (0/255)
    native_size: tuple[int, int] | None = None  # (width, height) before crop and resize

    @property
    def size(self) -> int:
        return self.image.size[0]

    @property
    def pixels(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.uint8)  # (H, W, 3)

    def lesion_area_fraction(self) -> float | None:
        return None if self.mask is None else mask_area_fraction(self.mask)

    def lesion_bbox(self) -> list[float] | None:
        return None if self.mask is None else mask_bbox(self.mask)


def mask_area_fraction(mask: np.ndarray) -> float:
    """The lesion's share of the image: what ``Image.lesion_area_fraction`` stores."""
    return float(np.asarray(mask, dtype=bool).mean())


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """``[x0, y0, x1, y1]`` as fractions of the width and height; None for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    return [
        round(float(xs.min()) / width, 4),
        round(float(ys.min()) / height, 4),
        round(float(xs.max() + 1) / width, 4),
        round(float(ys.max() + 1) / height, 4),
    ]


def image_size() -> int:
    return int(getattr(settings, "IMAGE_SIZE", 256))


def max_pixels() -> int:
    return int(getattr(settings, "IMAGE_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def open_image(source: ImageSource, *, limit: int | None = None) -> PILImage.Image:
    """Open and fully decode an image, turning every failure into an ``ImageError``.

    The pixel cap is checked from the header before decoding, so a decompression
    bomb costs nothing; ``load()`` here makes truncation show up now, not later.
    """
    if isinstance(source, PILImage.Image):
        return source
    limit = max_pixels() if limit is None else limit
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise ImageError(f"missing file: {source}")
    try:
        im = PILImage.open(source)
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised file format)") from None
    except PILImage.DecompressionBombError as exc:
        raise ImageError(f"decompression bomb refused: {exc}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image: {exc}") from None
    width, height = im.size
    if width * height > limit:
        raise ImageError(f"decompression bomb refused: {width}×{height} pixels exceeds the cap of {limit}")
    try:
        im.load()
    except PILImage.DecompressionBombError as exc:
        raise ImageError(f"decompression bomb refused: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"truncated or corrupt image: {exc}") from None
    return im


def _to_srgb(im: PILImage.Image) -> PILImage.Image:
    """Apply an embedded ICC profile (to sRGB), then reduce any mode to 8-bit RGB."""
    icc = im.info.get("icc_profile")
    if icc and im.mode in {"RGB", "RGBA", "CMYK", "L", "LA"}:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            base = im.convert("RGB") if im.mode in {"RGBA", "LA"} else im
            alpha = im.getchannel("A") if im.mode in {"RGBA", "LA"} else None
            converted = ImageCms.profileToProfile(
                base, src, ImageCms.createProfile("sRGB"), outputMode="RGB", renderingIntent=0
            )
            if alpha is not None:
                converted.putalpha(alpha)
            im = converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            # A broken profile is treated like no profile: browsers fall back to sRGB too.
            pass
    if im.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        arr = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            arr = arr / 257.0
        elif im.mode == "I" and arr.max(initial=0) > 255:
            arr = arr / 257.0 if arr.max() <= 65535 else arr * (255.0 / arr.max())
        elif im.mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        im = PILImage.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in {"RGBA", "LA", "PA", "La", "RGBa"}:
        rgba = im.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = PILImage.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def _centre_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _stored_zlib(raw: bytes) -> bytes:
    """A zlib stream of stored (uncompressed) deflate blocks: its length depends on len(raw) only."""
    out = [b"\x78\x01"]  # deflate, 32K window, no dictionary, "fastest" level bits
    n = len(raw)
    for start in range(0, max(n, 1), _STORED_BLOCK):
        block = raw[start : start + _STORED_BLOCK]
        final = 1 if start + _STORED_BLOCK >= n else 0
        out.append(struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block)
    out.append(struct.pack(">I", zlib.adler32(raw)))
    return b"".join(out)


def encode_png(im: PILImage.Image) -> bytes:
    """Uncompressed 8-bit RGB PNG: IHDR, one IDAT of stored deflate (filter 0), IEND.

    ``info`` (EXIF, ICC, text) is never consulted, and the length is ``png_length`` of
    the pixel size whatever the content (see the module docstring for why).
    """
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    width, height = rgb.size
    pixels = np.asarray(rgb, dtype=np.uint8).reshape(height, width * 3)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), pixels]).tobytes()  # filter byte 0 per row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", _stored_zlib(raw))
        + _chunk(b"IEND", b"")
    )


def png_length(width: int, height: int | None = None) -> int:
    """Byte length of ``encode_png`` for a ``width`` × ``height`` image (``height`` defaults to square)."""
    height = width if height is None else height
    raw = height * (1 + 3 * width)
    n_blocks = max(1, -(-raw // _STORED_BLOCK))
    return 8 + (12 + 13) + (12 + 2 + 5 * n_blocks + raw + 4) + 12


def encode_mask_png(im: PILImage.Image) -> bytes:
    """Compressed PNG with fixed settings and no ancillary chunks, for masks (never rater-visible)."""
    clean = PILImage.frombytes(im.mode, im.size, im.tobytes())  # drops info/ICC/EXIF entirely
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=MASK_PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def _mask_array(mask: ImageSource | np.ndarray) -> tuple[np.ndarray, PILImage.Image | None]:
    if isinstance(mask, np.ndarray):
        arr = np.asarray(mask)
        if arr.ndim == 3:
            arr = arr.max(axis=2)
        if arr.ndim != 2:
            raise ImageError(f"mask must be 2-D, got shape {mask.shape}")
        return arr > 0 if arr.dtype != bool else arr, None
    im = open_image(mask)
    im = ImageOps.exif_transpose(im)
    if im.mode not in {"1", "L"}:
        im = im.convert("L")
    return np.asarray(im) > 0 if im.mode == "L" else np.asarray(im, dtype=bool), im


def normalize(
    source: ImageSource,
    *,
    size: int | None = None,
    mask: ImageSource | np.ndarray | None = None,
) -> NormalizedImage:
    """Turn any image (PIL image, bytes, path or file) into the library's one file format.

    ``mask``, when given, must have the image's pixel size (after EXIF orientation);
    a mismatch is an ``ImageError``. Returns the pixels, the PNG bytes, their sha256
    and the aligned boolean mask.
    """
    size = image_size() if size is None else int(size)
    if size < 8:
        raise ImageError(f"image size must be at least 8 pixels, got {size}")
    im = open_image(source)
    im = ImageOps.exif_transpose(im)  # orientation into the pixels before EXIF is dropped
    im = _to_srgb(im)
    box = _centre_square(im.size)
    square = im.crop(box)
    if square.size != (size, size):
        square = square.resize((size, size), PILImage.Resampling.LANCZOS, reducing_gap=None)
    data = encode_png(square)

    mask_arr = mask_data = None
    if mask is not None:
        arr, _ = _mask_array(mask)
        if arr.shape != (im.size[1], im.size[0]):
            raise ImageError(
                f"mask size mismatch: mask is {arr.shape[1]}×{arr.shape[0]}, image is {im.size[0]}×{im.size[1]}"
            )
        mask_im = PILImage.fromarray(arr.astype(np.uint8) * 255, "L").crop(box)
        if mask_im.size != (size, size):
            mask_im = mask_im.resize((size, size), PILImage.Resampling.NEAREST)
        mask_arr = np.asarray(mask_im) > 127
        mask_data = encode_mask_png(PILImage.fromarray(mask_arr.astype(np.uint8) * 255, "L"))

    # Re-open from the bytes so callers see exactly what is stored.
    stored = PILImage.open(io.BytesIO(data))
    stored.load()
    return NormalizedImage(
        image=stored,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        mask=mask_arr,
        mask_data=mask_data,
        native_size=(int(im.size[0]), int(im.size[1])),
    )
