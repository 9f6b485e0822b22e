"""Fast, deterministic, batched rendering of DermGAN images from semantic-map specs.

Rendering is what the platform's workers spend their time on, so ``Renderer`` does not run the
training network as is. ``InferenceUNet`` is an exact re-expression of an eval-mode ``UNetGenerator``:

* BatchNorm is folded into the convolution before it by hand (``fuse_conv_bn_eval``; Inductor's own
  freezing mis-folds BatchNorm after a ConvTranspose2d with equal in/out channels in torch 2.13).
* DermGAN's decoder step "nearest-neighbour resize x2, then 3x3 convolution" is rewritten as one
  4x4 stride-2 transposed convolution with a derived kernel. Every output pixel of the resize+conv
  only sees 2x2 distinct input pixels, so this is the same function with 16 instead of 36
  multiply-adds per output pixel and channel pair (2.25x fewer in the decoder), and without the
  4x larger upsampled intermediate.
* The LeakyReLU/ReLU pair around each skip is applied in place (relu(leaky_relu(v)) == relu(v)).
* Weights and activations are channels-last (~1.3x on this CPU's oneDNN convolutions).

On CUDA it also runs under fp16/bf16 autocast, but only after an accuracy check at start-up against
the fp32 forward (fallback to fp32 otherwise). ``torch.compile`` is opt-in (``compile=True``): it
costs tens of seconds of cold start, which only pays in a long-lived worker.

Determinism: image i's dropout masks are drawn from its own ``torch.Generator`` seeded with its image
seed (``UNetGenerator.draw_noise``), so its pixels depend only on (checkpoint, spec, seed, device).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from generator import __version__
from generator import checkpoint as ckpt_lib
from generator.checkpoint import Checkpoint
from generator.config import GeneratorConfig
from generator.networks import UNetGenerator
from generator.sampling import SpecDistribution, image_seed, spec_for_index
from generator.semantic_map import MapSpec, encode_batch

logger = logging.getLogger(__name__)

# Largest tolerated difference between the reduced-precision and the fp32 forward, in [-1, 1] output
# units: one 8-bit level is 2/255, and the renderer promises at most 2 levels.
MAX_LEVELS = 2
_LEVEL = 2.0 / 255.0

# Per dimension, which 3x3 kernel taps (offsets -1, 0, +1) land on each of the 4 taps of the equivalent
# stride-2 transposed convolution (see resize_conv_as_transpose).
_RESIZE_TAPS = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float64)


def resize_conv_as_transpose(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """The ConvTranspose2d(4, stride 2, padding 1) equal to nearest-upsample x2 followed by ``conv``.

    ``conv`` must be a 3x3, stride-1, padding-1 convolution. Output row 2m sees upsampled rows
    2m-1, 2m, 2m+1 = input rows m-1, m, m, so its taps are w[-1] on row m-1 and w[0]+w[1] on row m;
    output row 2m+1 gets w[-1]+w[0] on row m and w[1] on row m+1. A transposed convolution with
    kernel 4, stride 2, padding 1 reads exactly those rows (taps 3, 1 and 2, 0), likewise for columns.
    """
    if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1:
        raise ValueError("resize_conv_as_transpose needs a 3x3 stride-1 padding-1 convolution")
    w3 = conv.weight.detach()  # (Cout, Cin, 3, 3)
    taps = _RESIZE_TAPS.to(device=w3.device)
    w4 = torch.einsum("kj,oijl,ml->iokm", taps, w3.double(), taps).to(w3.dtype)  # (Cin, Cout, 4, 4)
    out = nn.ConvTranspose2d(
        conv.in_channels, conv.out_channels, 4, stride=2, padding=1, bias=conv.bias is not None
    ).to(device=w3.device, dtype=w3.dtype)
    with torch.no_grad():
        out.weight.copy_(w4)
        if conv.bias is not None:
            out.bias.copy_(conv.bias.detach())
    return out


def _fold(conv: nn.Module, norm: nn.Module, *, transpose: bool) -> nn.Module:
    if isinstance(norm, nn.BatchNorm2d):
        return fuse_conv_bn_eval(conv, norm, transpose=transpose)
    return conv


class InferenceUNet(nn.Module):
    """Inference-only equivalent of an eval-mode ``UNetGenerator`` (see the module docstring).

    Same call as the original: ``forward(x, noise)`` with ``noise`` from ``UNetGenerator.draw_noise``
    (or None for no dropout). It has no BatchNorm and no train mode; build a new one after the source
    network's weights change.
    """

    def __init__(self, model: UNetGenerator) -> None:
        super().__init__()
        if model.training:
            raise ValueError("InferenceUNet needs an eval-mode network (BatchNorm running statistics)")
        self.num_downs = model.num_downs
        self.dropout_levels = tuple(model.dropout_levels)
        self.down = nn.ModuleList(
            _fold(block.conv, block.norm, transpose=False) for block in model.encoder
        )  # Conv2d 4x4 stride 2
        ups = []
        for block in model.decoder:
            if model.upsample == "transpose":
                ups.append(_fold(block.conv, block.norm, transpose=True))
            else:
                ups.append(resize_conv_as_transpose(_fold(block.conv, block.norm, transpose=False)))
        self.up = nn.ModuleList(ups)  # ConvTranspose2d 4x4 stride 2

    def forward(self, x: torch.Tensor, noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        feats = []
        h = x  # (B, in_channels, H, W)
        for i, conv in enumerate(self.down):
            if i > 0:
                # In place: feats[i-1] is also a skip, and the decoder only ever sees relu() of it,
                # which leaky_relu does not change.
                h = F.leaky_relu_(h, 0.2)
            h = conv(h)  # (B, ch[i], H/2^(i+1), W/2^(i+1))
            feats.append(h)
        masks = iter(noise) if noise else None
        h = F.relu(feats[-1])  # (B, ch[n-1], H/2^n, W/2^n)
        for level in reversed(range(self.num_downs)):
            if level < self.num_downs - 1:
                h = torch.cat([feats[level], h], dim=1).relu_()  # (B, 2*ch[level], ...)
            h = self.up[level](h)  # (B, ch[level-1] or out_channels, H/2^level, W/2^level)
            if masks is not None and level in self.dropout_levels:
                h = h.mul_(next(masks))
        return torch.tanh(h)  # (B, out_channels, H, W)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" is CUDA when available, else the CPU; anything else is passed to torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8, rounding to the nearest level."""
    out = ((images.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


class Renderer:
    """Renders specs to PIL images with a checkpoint's generator; keep one per worker process.

    ``checkpoint`` is a path or a loaded ``generator.checkpoint.Checkpoint``. ``batch_size`` bounds
    memory: any number of specs is processed in chunks of that size, and the network always runs on
    exactly that many images (see ``forward``), so keep it fixed where pixels must be reproducible.
    ``optimize=False`` runs the plain eval-mode network (the reference the optimized path is checked
    against). ``dropout=False`` turns the sampling noise off (then the seed has no effect). ``precision``: "auto" (fp16/bf16 autocast
    on CUDA when it passes the accuracy check, fp32 on CPU, where bf16 is slower), "fp32", "fp16",
    "bf16". ``compile=True`` adds ``torch.compile`` (slow first call; for long-lived workers).
    """

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint,
        device: str | torch.device = "auto",
        batch_size: int = 16,
        *,
        optimize: bool = True,
        dropout: bool = True,
        precision: str = "auto",
        compile: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
        if not isinstance(checkpoint, ckpt_lib.Checkpoint):
            # CheckpointError (a ValueError) says which: missing, truncated, not a checkpoint, mismatch.
            checkpoint = ckpt_lib.load(Path(checkpoint), map_location="cpu")
        model, ckpt = ckpt_lib.load_generator(checkpoint)
        self.config: GeneratorConfig = ckpt.config
        self.checkpoint_sha256: str = ckpt.sha256
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.dropout = dropout
        self.optimize = optimize
        self.model: UNetGenerator = model.eval().to(self.device)  # the plain reference network
        self.model.sampling_dropout = False  # its noise comes only from the per-image masks
        net: nn.Module = self.model
        if optimize:
            net = InferenceUNet(self.model).eval()
            net = net.to(device=self.device, memory_format=torch.channels_last)
            if compile:
                # Freezing lets Inductor prepack the (already BatchNorm-folded) weights for oneDNN.
                net = torch.compile(net, dynamic=False, options={"freezing": True})
        self._net = net
        self.autocast_dtype = self._choose_precision(precision)

    # -- public API ---------------------------------------------------------------------------------

    def render(self, specs: Sequence[MapSpec], seed: int | Sequence[int]) -> list[Image.Image]:
        """One RGB image of ``config.image_size`` per spec.

        ``seed`` is a batch seed (image i uses ``image_seed(seed, i)``) or one seed per spec.
        """
        return list(self.iter_render(specs, seed))

    def iter_render(self, specs: Sequence[MapSpec], seed: int | Sequence[int]) -> Iterator[Image.Image]:
        """Like ``render`` but yields images chunk by chunk, so memory stays bounded for any count.

        All specs and seeds are checked before the first image is rendered.
        """
        specs = list(specs)
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [image_seed(int(seed), i) for i in range(len(specs))]
        else:
            seeds = [int(s) for s in seed]  # type: ignore[union-attr]
            if len(seeds) != len(specs):
                raise ValueError(f"seed: got {len(seeds)} seeds for {len(specs)} specs")
        for i, spec in enumerate(specs):
            if spec.size != self.config.image_size:
                raise ValueError(
                    f"specs[{i}].size is {spec.size} but this checkpoint renders {self.config.image_size} px"
                )
        return self._iter_chunks(specs, seeds)

    def _iter_chunks(self, specs: list[MapSpec], seeds: list[int]) -> Iterator[Image.Image]:
        for start in range(0, len(specs), self.batch_size):
            stop = start + self.batch_size
            for pixels in self.render_array(specs[start:stop], seeds[start:stop]):
                yield Image.fromarray(pixels)

    def render_one(self, spec: MapSpec, image_seed: int) -> Image.Image:
        return self.render([spec], [image_seed])[0]

    def render_array(self, specs: Sequence[MapSpec], seeds: Sequence[int]) -> np.ndarray:
        """One chunk (at most ``batch_size`` specs, explicit per-image seeds) as (B, H, W, 3) uint8."""
        if not 0 < len(specs) <= self.batch_size:
            raise ValueError(f"render_array takes 1..batch_size={self.batch_size} specs, got {len(specs)}")
        if len(seeds) != len(specs):
            raise ValueError(f"seed: got {len(seeds)} seeds for {len(specs)} specs")
        maps = encode_batch(specs, self.config.conditions)  # (B, C, H, W)
        return to_uint8(self.forward(maps, seeds))

    @torch.inference_mode()
    def forward(self, maps: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """Semantic maps (B, C, H, W), B <= batch_size -> images (B, 3, H, W) in [-1, 1], float32.

        The network always runs on exactly ``batch_size`` images (a short chunk is padded with
        zero maps whose outputs are dropped): convolution kernels pick different blockings, and so
        different float rounding, for different batch shapes, but within one shape each image is
        computed on its own. So an image's pixels are bit-identical whether it is rendered alone or
        with others.
        """
        n, _, height, width = maps.shape
        if not 0 < n <= self.batch_size:
            raise ValueError(f"forward takes 1..batch_size={self.batch_size} maps, got {n}")
        noise = self.model.draw_noise(seeds, height, width) if self.dropout else []  # each (n, C, h, w)
        pad = self.batch_size - n
        if pad:
            maps = torch.cat([maps, maps.new_zeros((pad, *maps.shape[1:]))])  # (batch_size, C, H, W)
            noise = [torch.cat([m, m.new_zeros((pad, *m.shape[1:]))]) for m in noise]
        return self._run(self._net, maps, noise, self.autocast_dtype)[:n]

    @torch.inference_mode()
    def reference_forward(self, maps: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """The plain fp32 eager forward of the same network with the same noise (for checks)."""
        _, _, height, width = maps.shape
        noise = self.model.draw_noise(seeds, height, width) if self.dropout else []
        return self._run(self.model, maps, noise, None)

    # -- internals ----------------------------------------------------------------------------------

    def _run(
        self, net: nn.Module, maps: torch.Tensor, noise: list[torch.Tensor], dtype: torch.dtype | None
    ) -> torch.Tensor:
        fmt = torch.contiguous_format if net is self.model else torch.channels_last
        x = maps.to(self.device).contiguous(memory_format=fmt)  # (B, C, H, W)
        noise = [m.to(self.device).contiguous(memory_format=fmt) for m in noise]
        # cuDNN: no autotuning and deterministic algorithms, so a seed renders the same pixels every
        # time; fp32 means fp32 (no TF32), so it can serve as the reference for reduced precision.
        with torch.backends.cudnn.flags(
            enabled=True, benchmark=False, deterministic=True, allow_tf32=dtype is not None
        ):
            if dtype is None:
                return net(x, noise or None).float()
            with torch.autocast(self.device.type, dtype=dtype):
                return net(x, noise or None).float()

    def _choose_precision(self, precision: str) -> torch.dtype | None:
        """fp32 on CPU; on CUDA the fastest reduced precision that stays within MAX_LEVELS."""
        if precision == "fp32" or not self.optimize:
            return None
        if self.device.type != "cuda":
            if precision != "auto":
                raise ValueError(
                    f"precision {precision!r} is only supported on CUDA here (bf16 is slower on CPU)"
                )
            return None
        candidates = {
            "auto": [torch.float16, torch.bfloat16],
            "fp16": [torch.float16],
            "bf16": [torch.bfloat16],
        }
        size = self.config.image_size
        gen = torch.Generator().manual_seed(0)
        # The probe has the production batch shape, so a compiled network is compiled only once.
        probe = torch.rand(self.batch_size, self.config.in_channels, size, size, generator=gen) * 2 - 1
        seeds = list(range(1, self.batch_size + 1))
        with torch.inference_mode():
            noise = self.model.draw_noise(seeds, size, size, self.device) if self.dropout else []
            ref = self._run(self.model, probe, noise, None)
            for dtype in candidates[precision]:
                start = time.perf_counter()
                err = (self._run(self._net, probe, noise, dtype) - ref).abs().max().item()
                logger.info(
                    "render precision %s: max error %.2e (%.3fs)", dtype, err, time.perf_counter() - start
                )
                if err <= MAX_LEVELS * _LEVEL / 2:  # rounding can then move a pixel by at most 1-2 levels
                    return dtype
        if precision != "auto":
            raise ValueError(f"precision {precision!r} is not accurate enough for this checkpoint")
        return None


# -- command line -----------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m generator.render",
        description="Render DermGAN images from a checkpoint: PNGs plus a manifest.jsonl of provenance.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint file (python -m generator.train writes them)"
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("-n", "--n", type=int, default=16, help="number of images (ignored with --specs)")
    p.add_argument("--seed", type=int, default=0, help="batch seed: specs and noise derive from it")
    p.add_argument("--specs", type=Path, help="JSON list of MapSpec dicts to render instead of random specs")
    p.add_argument("--condition", action="append", help="condition code to draw (repeatable; default all)")
    p.add_argument(
        "--fitzpatrick", type=int, action="append", help="skin type 1..6 (repeatable; default all)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--no-dropout", action="store_true", help="switch the dropout noise off")
    p.add_argument("--compile", action="store_true", help="torch.compile (slow start; pays for many images)")
    p.add_argument("--plain", action="store_true", help="run the unoptimized network (for comparison)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        return _render_to_folder(args)
    except (ValueError, OSError) as exc:  # bad checkpoint, spec file or option: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _render_to_folder(args: argparse.Namespace) -> int:
    renderer = Renderer(
        args.checkpoint,
        device=args.device,
        batch_size=args.batch_size,
        optimize=not args.plain,
        dropout=not args.no_dropout,
        precision=args.precision,
        compile=args.compile,
    )
    size = renderer.config.image_size
    if args.specs is not None:
        specs = [MapSpec.from_dict(d) for d in json.loads(args.specs.read_text())]
    else:
        if args.n < 1:
            raise ValueError(f"n must be >= 1, got {args.n}")
        dist = SpecDistribution(
            condition_weights={c: 1.0 for c in (args.condition or renderer.config.conditions)},
            fitzpatrick_weights={k: 1.0 for k in args.fitzpatrick} if args.fitzpatrick else None,
        ).validate()
        specs = [spec_for_index(dist, size=size, batch_seed=args.seed, index=i) for i in range(args.n)]
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(args.out / "manifest.jsonl", "w") as fh:
        for i, (spec, image) in enumerate(zip(specs, renderer.iter_render(specs, args.seed))):
            name = f"{i:05d}.png"
            image.save(args.out / name)
            record = {
                "file": name,
                "batch_seed": args.seed,
                "index": i,
                "seed": image_seed(args.seed, i),
                "spec": spec.to_dict(),
                "checkpoint_sha256": renderer.checkpoint_sha256,
                "generator_version": __version__,
                "dropout": not args.no_dropout,
                "batch_size": args.batch_size,
                "device": str(renderer.device),
            }
            fh.write(json.dumps(record) + "\n")
    elapsed = time.perf_counter() - start
    print(
        f"rendered {len(specs)} images of {size}x{size} px to {args.out} on {renderer.device} "
        f"in {elapsed:.2f}s ({len(specs) / elapsed:.2f} images/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
