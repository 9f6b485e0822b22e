"""The DermGAN generator (a pix2pix U-Net) and its 70x70 PatchGAN discriminator.

DermGAN (Ghorbani et al. 2019, "DermGAN: Synthetic Generation of Clinical Skin Images with
Pathology", arXiv:1911.08716) is pix2pix (Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", doi:10.1109/CVPR.2017.632) conditioned on a semantic map (skin
colour + lesion mask + condition channels), with one change to the generator: the decoder upsamples
with a nearest-neighbour resize followed by a 3x3 convolution instead of a transposed convolution,
which avoids checkerboard artefacts. ``upsample="transpose"`` keeps the original pix2pix decoder so the
network can be checked against the reference ``unet_256`` (54,413,955 parameters).

The network is written out level by level rather than as pix2pix's recursive skip block, so that the
renderer can fold BatchNorm into each convolution and swap layers for faster equivalents.

Dropout is pix2pix's only noise source: it stays active at sampling time by default. So that one
image's pixels never depend on the other images in its batch, ``forward`` accepts ``noise``: one
pre-drawn mask per dropout layer, each drawn per image from that image's own ``torch.Generator``
(``UNetGenerator.draw_noise``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from generator.config import GeneratorConfig

UPSAMPLE_MODES = ("resize", "transpose")
DROPOUT_P = 0.5  # pix2pix's rate


class SampleDropout(nn.Module):
    """Dropout that can take a given mask and that can stay on in eval mode.

    Training uses ordinary ``F.dropout``. In eval mode it is the generator's noise source when
    ``sampling`` is true: with a given ``mask`` (values 0 or 1/(1-p), shape (B, C, H, W)) it multiplies
    by it, so per-image masks drawn from per-image generators make each image independent of its
    batch; without a mask it falls back to the global RNG. With ``sampling`` false it is the identity.
    """

    def __init__(self, p: float = DROPOUT_P) -> None:
        super().__init__()
        self.p = p
        self.sampling = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            return x * mask  # (B, C, H, W)
        if self.training or self.sampling:
            return F.dropout(x, self.p, training=True)
        return x

    def extra_repr(self) -> str:
        return f"p={self.p}, sampling={self.sampling}"


class DownBlock(nn.Module):
    """One encoder level: [LeakyReLU(0.2)] -> Conv 4x4 stride 2 -> [BatchNorm]."""

    def __init__(self, in_ch: int, out_ch: int, *, activation: bool, norm: bool) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(0.2) if activation else nn.Identity()
        # pix2pix uses bias=False on every down-convolution (use_bias is False with BatchNorm), even the
        # outermost and innermost ones that have no BatchNorm after them; parity needs the same.
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_ch) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))  # (B, out_ch, H/2, W/2)


class UpBlock(nn.Module):
    """One decoder level: ReLU -> upsample x2 -> [BatchNorm] -> [dropout] (or tanh when outermost)."""

    def __init__(self, in_ch: int, out_ch: int, *, upsample: str, outermost: bool, dropout: bool) -> None:
        super().__init__()
        self.outermost = outermost
        bias = outermost  # every other up-convolution is followed by BatchNorm
        if upsample == "transpose":
            self.up = nn.Identity()
            self.conv: nn.Module = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1, bias=bias)
        self.norm = nn.Identity() if outermost else nn.BatchNorm2d(out_ch)
        self.dropout = SampleDropout() if dropout else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(self.conv(self.up(F.relu(x))))  # (B, out_ch, 2H, 2W)
        if self.dropout is not None:
            h = self.dropout(h, mask)
        return torch.tanh(h) if self.outermost else h


def _encoder_channels(ngf: int, num_downs: int) -> list[int]:
    """Output channels of each encoder level: ngf, 2ngf, 4ngf, then 8ngf to the bottleneck."""
    return [ngf * min(2**i, 8) for i in range(num_downs)]


class UNetGenerator(nn.Module):
    """pix2pix U-Net generator with concatenated skips; DermGAN's resize decoder by default.

    Levels 0..num_downs-1 each halve the resolution (8 levels take 256 px to 1 px). As in pix2pix
    ``unet_256``: no BatchNorm on the outermost and innermost encoder convolutions, dropout (p=0.5) in
    the decoder levels 4..num_downs-2 (three of them for num_downs=8; none below num_downs=6), tanh
    output in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 8,
        upsample: str = "resize",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        if in_channels < 1 or out_channels < 1 or ngf < 1:
            raise ValueError("in_channels, out_channels and ngf must be positive")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ngf = ngf
        self.num_downs = num_downs
        self.upsample = upsample
        ch = _encoder_channels(ngf, num_downs)
        self.encoder = nn.ModuleList(
            DownBlock(
                in_channels if i == 0 else ch[i - 1],
                ch[i],
                activation=i > 0,
                norm=0 < i < num_downs - 1,
            )
            for i in range(num_downs)
        )
        self.dropout_levels = tuple(range(4, num_downs - 1)) if dropout else ()
        self.decoder = nn.ModuleList(
            UpBlock(
                ch[i] if i == num_downs - 1 else 2 * ch[i],
                out_channels if i == 0 else ch[i - 1],
                upsample=upsample,
                outermost=i == 0,
                dropout=i in self.dropout_levels,
            )
            for i in range(num_downs)
        )

    @property
    def sampling_dropout(self) -> bool:
        """Whether dropout stays on in eval mode (pix2pix's noise source at test time)."""
        return all(m.sampling for m in self.modules() if isinstance(m, SampleDropout))

    @sampling_dropout.setter
    def sampling_dropout(self, enabled: bool) -> None:
        for m in self.modules():
            if isinstance(m, SampleDropout):
                m.sampling = bool(enabled)

    def noise_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(C, H, W) of each dropout mask, in the order ``forward`` consumes them."""
        shapes = []
        for level in sorted(self.dropout_levels, reverse=True):  # decoder runs innermost first
            c = self.decoder[level].norm.num_features
            shapes.append((c, height >> level, width >> level))
        return shapes

    def draw_noise(
        self, seeds: Sequence[int], height: int, width: int, device: torch.device | str = "cpu"
    ) -> list[torch.Tensor]:
        """Dropout masks for a batch, image i drawn only from ``torch.Generator().manual_seed(seeds[i])``.

        Drawn on the CPU so the masks are the same on every device; returns one (B, C, h, w) tensor per
        dropout layer with values 0 or 1/(1-p). Empty when the network has no dropout.
        """
        shapes = self.noise_shapes(height, width)
        per_layer: list[list[torch.Tensor]] = [[] for _ in shapes]
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            for j, shape in enumerate(shapes):
                keep = torch.rand(shape, generator=g) >= DROPOUT_P  # (C, h, w)
                per_layer[j].append(keep.float() / (1.0 - DROPOUT_P))
        return [torch.stack(masks).to(device) for masks in per_layer]  # each (B, C, h, w)

    def forward(self, x: torch.Tensor, noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Semantic map (B, in_channels, H, W) -> image (B, out_channels, H, W) in [-1, 1].

        H and W must be divisible by 2**num_downs. ``noise`` (from ``draw_noise``) replaces the
        dropout's own random draws.
        """
        if noise is not None and len(noise) != len(self.dropout_levels):
            raise ValueError(f"expected {len(self.dropout_levels)} noise masks, got {len(noise)}")
        skips = []
        h = x  # (B, in_channels, H, W)
        for down in self.encoder:
            h = down(h)  # (B, ch[i], H/2^(i+1), W/2^(i+1))
            skips.append(h)
        masks = iter(noise) if noise is not None else None
        for level in reversed(range(self.num_downs)):
            if level < self.num_downs - 1:
                h = torch.cat([skips[level], h], dim=1)  # (B, 2*ch[level], H/2^(level+1), ...)
            mask = next(masks) if masks is not None and level in self.dropout_levels else None
            h = self.decoder[level](h, mask)  # (B, ch[level-1] or out_channels, H/2^level, W/2^level)
        return h  # (B, out_channels, H, W)


class PatchDiscriminator(nn.Module):
    """pix2pix's 70x70 PatchGAN: one real/fake logit per overlapping 70x70 patch.

    Input is the semantic map concatenated with a real or generated image (``in_channels`` = map +
    image channels). With ``in_channels=6`` it has the reference ``basic`` discriminator's 2,768,705
    parameters.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, 1, H/8 - 2, W/8 - 2) logits for n_layers=3


def build_generator(config: GeneratorConfig) -> UNetGenerator:
    """The generator a config describes (checkpoints store the config, so this rebuilds them)."""
    if config.image_size % (2**config.num_downs):
        raise ValueError(
            f"image_size {config.image_size} is not divisible by 2**num_downs = {2**config.num_downs}"
        )
    return UNetGenerator(
        config.in_channels,
        out_channels=config.out_channels,
        ngf=config.ngf,
        num_downs=config.num_downs,
        upsample=config.upsample,
        dropout=config.dropout,
    )
