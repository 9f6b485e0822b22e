"""Rendering throughput: our ``Renderer`` vs a plain fp32 eager forward of the same network.

The network is the DermGAN default (``upsample="resize"``, ngf 64, num_downs 8, 256x256, 15
conditions -> 19 input channels) with random weights whose BatchNorm running statistics come from a
few training-mode forwards (so folding BatchNorm is really exercised). In one process, alternating
so that machine noise hits both alike:

- plain: ``UNetGenerator`` in eval mode, contiguous fp32, on pre-encoded maps (no map encoding, no
  8-bit conversion: the baseline gets the easier job);
- ours: ``Renderer.render(specs, seeds)`` end to end (map encoding, per-image noise, network,
  8-bit conversion, PIL images).

Both use the same per-image dropout masks, so the max 8-bit pixel difference is meaningful. Also
prints the achieved GFLOP/s against a 2048x2048 fp32 matmul timed in the same alternating rounds,
and a CUDA figure when a GPU is available. Last line: ``render: ratio=<ours/plain images/s at batch
16> target=>=1.5``.

    python benchmarks/render.py [--rounds 3] [--seconds 60] [--compile]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.checkpoint import Checkpoint  # noqa: E402
from generator.config import GeneratorConfig  # noqa: E402
from generator.networks import UNetGenerator, build_generator  # noqa: E402
from generator.render import Renderer, to_uint8  # noqa: E402
from generator.sampling import SpecDistribution, image_seed, spec_for_index  # noqa: E402
from generator.semantic_map import encode_batch  # noqa: E402

CONDITIONS = (
    "MEL",
    "BCC",
    "SCC",
    "AK",
    "SEK",
    "NEV",
    "ECZ",
    "PSO",
    "ACN",
    "TIN",
    "URT",
    "VIT",
    "DF",
    "VASC",
    "OTH",
)
SIZE = 256


def conv_flops(model: nn.Module, x: torch.Tensor, *args: object) -> float:
    """FLOPs (2 x multiply-adds) of the convolutions in one forward, counted with hooks.

    A transposed convolution does Cin x Cout x k x k multiply-adds per input pixel (not per output
    pixel, which would overcount stride 2 by 4x).
    """
    total = 0.0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):
            b, cin, h, w = inputs[0].shape
            total += 2.0 * b * h * w * cin * module.out_channels * kh * kw
        else:
            b, cout, h, w = output.shape
            total += 2.0 * b * h * w * cout * (module.in_channels // module.groups) * kh * kw

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.inference_mode():
            model(x, *args)
    finally:
        for h in handles:
            h.remove()
    return total


def matmul_gflops(seconds: float, n: int = 2048) -> float:
    return 2.0 * n**3 / seconds / 1e9


def make_network(seed: int = 0) -> tuple[UNetGenerator, GeneratorConfig]:
    torch.manual_seed(seed)
    config = GeneratorConfig(conditions=CONDITIONS, image_size=SIZE)  # resize, ngf 64, num_downs 8
    model = build_generator(config)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # running stats = average over the calibration batches
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.normal_(m.bias, 0.0, 0.2)
    specs = make_specs(4, batch_seed=999)
    model.train()
    with torch.no_grad():
        model(encode_batch(specs, CONDITIONS))  # (4, 19, 256, 256): BatchNorm running statistics
    return model.eval(), config


def make_specs(n: int, batch_seed: int) -> list:
    dist = SpecDistribution(condition_weights={c: 1.0 for c in CONDITIONS}, lesions_per_image=(1, 2))
    return [spec_for_index(dist, size=SIZE, batch_seed=batch_seed, index=i) for i in range(n)]


def best_time(
    fns: dict[str, Callable[[], object]], rounds: int, min_seconds: float = 0.0
) -> tuple[dict[str, float], dict[str, object]]:
    """Best wall time of each function over alternating rounds (after one warm-up each), and each
    function's last result.

    At least ``rounds`` rounds, more (up to 3x) until ``min_seconds`` have passed: on a shared
    machine the best of more samples is more likely to catch each variant in a quiet moment.
    """
    results = {k: fn() for k, fn in fns.items()}
    best = {k: float("inf") for k in fns}
    start = time.perf_counter()
    done = 0
    while done < rounds or (time.perf_counter() - start < min_seconds and done < 3 * rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            results[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
        done += 1
    return best, results


def cpu_benchmark(model: UNetGenerator, config: GeneratorConfig, args: argparse.Namespace) -> float:
    ckpt = Checkpoint(config=config, state_dict=model.state_dict(), metadata={}, sha256="0" * 64)
    print(f"cpu: {torch.get_num_threads()} threads; the fp32 2048^2 matmul peak is timed in the same rounds")
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    ratio16 = 0.0
    for batch in (1, 16):
        renderer = Renderer(ckpt, device="cpu", batch_size=batch, compile=args.compile)
        specs = make_specs(batch, batch_seed=batch)
        seeds = [image_seed(batch, i) for i in range(batch)]
        maps = encode_batch(specs, CONDITIONS)  # (B, 19, 256, 256)
        noise = model.draw_noise(seeds, SIZE, SIZE)

        def plain(maps: torch.Tensor = maps, noise: list[torch.Tensor] = noise) -> torch.Tensor:
            with torch.inference_mode():
                return model(maps, noise)

        def ours(renderer: Renderer = renderer, specs: list = specs, seeds: list = seeds) -> list:
            return renderer.render(specs, seeds)

        rounds = args.rounds if batch > 1 else args.rounds + 1
        times, out = best_time(
            {"plain": plain, "ours": ours, "matmul": lambda: a @ b},
            rounds=rounds,
            min_seconds=args.seconds if batch > 1 else 0.0,
        )
        peak = matmul_gflops(times["matmul"])
        plain_px = to_uint8(out["plain"]).astype(np.int16)  # (B, H, W, 3)
        ours_px = np.stack([np.asarray(im) for im in out["ours"]]).astype(np.int16)
        max_diff = int(np.abs(plain_px - ours_px).max())
        one_map = maps[:1]  # FLOPs per image do not depend on the batch: count on one
        plain_flops = conv_flops(model, one_map, [m[:1] for m in noise])
        ours_flops = conv_flops(renderer._net, one_map.contiguous(memory_format=torch.channels_last))
        ips_plain, ips_ours = batch / times["plain"], batch / times["ours"]
        ratio = ips_ours / ips_plain
        print(
            f"batch {batch:2d}: plain {ips_plain:5.2f} img/s ({1000 / ips_plain:6.1f} ms/img) | "
            f"ours {ips_ours:5.2f} img/s ({1000 / ips_ours:6.1f} ms/img) | ratio {ratio:.2f} | "
            f"max 8-bit diff {max_diff}"
        )
        print(
            f"          matmul peak {peak:.0f} GFLOP/s | plain {plain_flops / 1e9:.1f} GFLOP/img at {plain_flops * ips_plain / 1e9:.0f} GFLOP/s "
            f"({plain_flops * ips_plain / 1e9 / peak:.2f} of peak) | ours executes {ours_flops / 1e9:.1f} "
            f"GFLOP/img at {ours_flops * ips_ours / 1e9:.0f} GFLOP/s ({ours_flops * ips_ours / 1e9 / peak:.2f} "
            f"of peak; {plain_flops * ips_ours / 1e9:.0f} GFLOP/s counted as the plain network's work)"
        )
        if batch == 16:
            ratio16 = ratio
    return ratio16


def cuda_benchmark(model: UNetGenerator, config: GeneratorConfig, args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("cuda: skipped (torch.cuda.is_available() is False: no GPU or no CUDA build of torch here)")
        return
    dev = torch.device("cuda")
    ckpt = Checkpoint(config=config, state_dict=model.state_dict(), metadata={}, sha256="0" * 64)
    renderer = Renderer(ckpt, device=dev, batch_size=16, compile=args.compile)
    gpu_model = build_generator(config).to(dev)
    gpu_model.load_state_dict(model.state_dict())
    gpu_model.eval()
    specs = make_specs(16, batch_seed=16)
    seeds = [image_seed(16, i) for i in range(16)]
    maps = encode_batch(specs, CONDITIONS).to(dev)
    noise = gpu_model.draw_noise(seeds, SIZE, SIZE, dev)

    def plain() -> torch.Tensor:
        with torch.inference_mode():
            out = gpu_model(maps, noise)
        torch.cuda.synchronize()
        return out

    def ours() -> list:
        return renderer.render(specs, seeds)

    times, out = best_time({"plain": plain, "ours": ours}, rounds=5)
    ours_px = np.stack([np.asarray(im) for im in out["ours"]]).astype(np.int16)
    max_diff = int(np.abs(to_uint8(out["plain"]).astype(np.int16) - ours_px).max())
    print(
        f"cuda ({torch.cuda.get_device_name(dev)}), batch 16: plain fp32 {16 / times['plain']:.1f} img/s | "
        f"ours ({renderer.autocast_dtype or 'fp32'}) {16 / times['ours']:.1f} img/s | "
        f"ratio {times['plain'] / times['ours']:.2f} | max 8-bit diff {max_diff}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per variant at batch 16")
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="keep alternating batch-16 rounds this long (max 3x rounds)",
    )
    parser.add_argument("--compile", action="store_true", help="also torch.compile our network")
    args = parser.parse_args()
    start = time.perf_counter()
    model, config = make_network()
    ratio = cpu_benchmark(model, config, args)
    cuda_benchmark(model, config, args)
    print(f"total {time.perf_counter() - start:.0f}s")
    print(f"render: ratio={ratio:.2f} target=>=1.5")


if __name__ == "__main__":
    main()
