"""Where features come from: extractors (classifier, InceptionV3), image folders, pixels.

The feature space decides what every metric means, so each extractor carries a name
and the sha256 of its weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from generator.classifier import ClassifierExtractor
from generator.inception import InceptionExtractor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FeatureExtractor(Protocol):
    """What the metrics need from a feature space: identity and a batch function."""

    name: str  # e.g. "classifier" or "inception-v3-fid"
    sha256: str  # sha256 of the weights file: two results compare only if these match
    feature_dim: int

    def extract(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """(N, feature_dim) float64 features of RGB images."""
        ...


def load_extractor(spec: str, device: str = "auto") -> FeatureExtractor:
    """Build an extractor from ``classifier:PATH`` or ``inception:PATH`` (``inception`` alone
    reads the path from ``DERMGAN_INCEPTION_WEIGHTS``)."""
    kind, _, path = spec.partition(":")
    if kind == "classifier":
        if not path:
            raise ValueError("--extractor classifier:PATH needs the classifier checkpoint's path")
        return ClassifierExtractor.from_path(path, device=device)
    if kind == "inception":
        return InceptionExtractor.from_path(path or None, device=device)
    raise ValueError(f"unknown extractor {spec!r}: use classifier:PATH or inception[:PATH]")


def images_to_tensor(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """(N, 3, size, size) float tensor in [0, 1], bilinear-resized (for MS-SSIM)."""
    arrs = [
        np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) for im in images
    ]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 255.0


def load_image_folder(directory: str | Path) -> tuple[list[Image.Image], list[str | None], list[Path]]:
    """Images under ``directory``; an image in a sub-folder is labelled with the sub-folder's
    name (``DIR/MEL/x.png`` → ``MEL``), one directly in ``directory`` has no label."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"not a directory: {root}")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    images, labels = [], []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"cannot read image {p}: {exc}") from None
        rel = p.relative_to(root)
        labels.append(rel.parts[0] if len(rel.parts) > 1 else None)
    return images, labels, paths
