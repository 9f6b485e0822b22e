"""InceptionV3 "FID variant" feature extractor in plain torch (torchvision does not import here).

The standard FID feature space is the 2048-d pool3 layer of the TensorFlow
Inception graph ``inception-2015-12-05`` (Szegedy et al. 2016,
arXiv:1512.00567), as used by Heusel et al. 2017 (arXiv:1706.08500). Nothing can
be downloaded on this platform, so the weights must be supplied by the user:

* the file is **pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``** (a
  PyTorch state dict ported from the TensorFlow graph, ~91 MB), published at
  https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  (the ``6726825d`` in the name is the start of its sha256);
* pass it with ``--inception-weights PATH`` / ``--extractor inception:PATH`` or
  set ``DERMGAN_INCEPTION_WEIGHTS=PATH``.

The module names mirror torchvision's ``Inception3`` with pytorch-fid's FID
blocks (``FIDInceptionA/C/E_1/E_2``: average pooling without padded zeros, and a
max-pool branch in the last block), so that state dict loads strictly. Inputs
are resized to 299×299 (bilinear) and scaled to [-1, 1], as pytorch-fid does.
Numbers from this extractor are comparable with pytorch-fid's only up to resize
and library differences; they are never comparable with the classifier's.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "DERMGAN_INCEPTION_WEIGHTS"
EXTRACTOR_NAME = "inception-v3-fid-pool3"


class InceptionUnavailableError(ValueError):
    """No usable InceptionV3 weights file: the message says which file and how to supply it."""


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):  # pytorch-fid FIDInceptionA
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):  # pytorch-fid FIDInceptionC
    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """pytorch-fid FIDInceptionE_1 (``pool="avg"``) and FIDInceptionE_2 (``pool="max"``)."""

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 up to pool3 (2048-d), plus the 1008-way ``fc`` of the ported graph so
    the pytorch-fid state dict loads strictly (the logits are not used)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 2048) pool3 features."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1  # (B, 3, 299, 299) in [-1, 1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))  # (B, 2048)


def _unavailable(detail: str) -> InceptionUnavailableError:
    return InceptionUnavailableError(
        f"InceptionV3 feature extractor unavailable: {detail}. Supply pytorch-fid's weights file "
        f"{WEIGHTS_FILENAME} (from https://github.com/mseitzer/pytorch-fid/releases/tag/fid_weights) with "
        f"--inception-weights PATH, --extractor inception:PATH or {WEIGHTS_ENV}=PATH. Nothing is downloaded."
    )


def load_inception(
    path: str | Path | None = None, *, map_location: str | torch.device = "cpu"
) -> tuple[FIDInceptionV3, str]:
    """(network in eval mode, sha256 of the weights file). Raises InceptionUnavailableError."""
    raw = path or os.environ.get(WEIGHTS_ENV)
    if not raw:
        raise _unavailable(f"no weights path given and {WEIGHTS_ENV} is not set")
    p = Path(raw)
    if not p.is_file():
        raise _unavailable(f"weights file not found: {p}")
    data = p.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise _unavailable(f"{p} is not a readable PyTorch state dict ({exc})") from None
    if not isinstance(state, dict):
        raise _unavailable(f"{p} does not hold a state dict")
    # Older exports carry BatchNorm counters and (unused) auxiliary-classifier weights.
    state = {
        k: v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked") and not k.startswith("AuxLogits.")
    }
    model = FIDInceptionV3()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _unavailable(f"{p} is not the InceptionV3 FID state dict ({str(exc)[:300]})") from None
    return model.to(map_location).eval(), sha


class InceptionExtractor:
    """pool3 features of the FID InceptionV3 — ImageNet semantics, not dermatology."""

    name = EXTRACTOR_NAME
    feature_dim = 2048

    def __init__(self, model: FIDInceptionV3, sha256: str) -> None:
        self.model = model
        self.sha256 = sha256

    @classmethod
    def from_path(cls, path: str | Path | None = None, device: str = "auto") -> InceptionExtractor:
        dev = torch.device(
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        model, sha = load_inception(path, map_location=dev)
        return cls(model, sha)

    @torch.no_grad()
    def extract(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        dev = next(self.model.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            arrs = [
                np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
                for im in images[start : start + batch_size]
            ]
            sizes = {a.shape for a in arrs}
            if len(sizes) > 1:  # mixed sizes: resize each to 299 first
                arrs = [
                    np.asarray(im.convert("RGB").resize((299, 299), Image.BILINEAR), dtype=np.float32) / 255.0
                    for im in images[start : start + batch_size]
                ]
            x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(dev)  # (B, 3, H, W)
            out.append(self.model(x).cpu())
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, 2048))
