"""DermGAN training losses: adversarial, L1 and lesion-weighted L1.

pix2pix (Isola et al. 2017, doi:10.1109/CVPR.2017.632) trains the generator with a
conditional GAN loss plus ``lambda_L1 = 100`` times the L1 distance to the real photo.
DermGAN (Ghorbani et al. 2019, arXiv:1911.08716) adds a reconstruction term restricted to
the lesion: the lesion is a small part of the image, so in a whole-image L1 it is
outweighed by the skin, and the pathology (the part that matters clinically) comes out
washed out. The lesion term is the mean absolute error over lesion pixels only, so its
weight does not depend on how large the lesion is.

Adversarial loss: sigmoid cross-entropy on the discriminator's logits (the original GAN
loss, numerically stable via ``binary_cross_entropy_with_logits``), or least squares
(LSGAN, Mao et al. 2017, doi:10.1109/ICCV.2017.304) as an option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

GAN_MODES = ("bce", "lsgan")


@dataclass(frozen=True)
class LossWeights:
    adversarial: float = 1.0
    l1: float = 100.0  # pix2pix's lambda_L1
    lesion_l1: float = 100.0  # extra weight on the lesion pixels (DermGAN)
    gan_mode: str = "bce"  # "bce" (sigmoid cross-entropy) or "lsgan"

    def __post_init__(self) -> None:
        if self.gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}")
        for name in ("adversarial", "l1", "lesion_l1"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} weight must be >= 0, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def adversarial_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "bce") -> torch.Tensor:
    """GAN loss of discriminator logits (B, 1, h, w) against an all-real or all-fake target."""
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise ValueError(f"mode must be one of {GAN_MODES}, got {mode!r}")


def l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all pixels and channels, (B, 3, H, W) each."""
    return (fake - real).abs().mean()


def lesion_l1_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the lesion pixels only.

    fake, real : (B, 3, H, W); mask : (B, 1, H, W) with 1 inside the lesion.
    Averaged over all lesion pixels of the batch (and channels); zero for a batch
    without any lesion pixel.
    """
    weight = mask.expand_as(fake)
    return ((fake - real).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def lesion_weighted_l1(
    fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, *, lesion_weight: float = 1.0
) -> torch.Tensor:
    """Whole-image L1 plus ``lesion_weight`` times the lesion-only L1 (both means)."""
    return l1_loss(fake, real) + lesion_weight * lesion_l1_loss(fake, real, mask)
