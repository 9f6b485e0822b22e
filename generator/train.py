"""Train DermGAN: ``python -m generator.train --manifest data.csv --out run/``.

pix2pix training (Isola et al. 2017, doi:10.1109/CVPR.2017.632) on semantic maps as in
DermGAN (Ghorbani et al. 2019, arXiv:1911.08716): each step updates the PatchGAN
discriminator on (map, real photo) vs (map, generated photo), then the U-Net generator
with the adversarial loss plus L1 and the lesion-only L1 (``generator.losses``). Adam with
lr 2e-4 and betas (0.5, 0.999) for both, as in pix2pix.

A run folder holds::

    generator.pt       the latest generator checkpoint (what the platform renders with)
    train_state.pt     discriminator, optimisers, step and RNG state, for --resume
    metrics.jsonl      one JSON object per logged step (losses, throughput)
    samples/step-NNNNNNN.png   map | real | generated for fixed examples, per checkpoint

Runs are reproducible: the same command on the same device gives the same weights; data
order, augmentation and dropout derive from ``--seed`` and the step, and ``--resume``
continues exactly where an uninterrupted run would be (on CPU; cuDNN may differ on GPU).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generator import checkpoint as ckpt_io
from generator.config import GeneratorConfig
from generator.data import TAXONOMY_CONDITIONS, ManifestDataset, ProceduralDataset, read_manifest
from generator.losses import LossWeights, adversarial_loss, l1_loss, lesion_l1_loss
from generator.networks import PatchDiscriminator, build_generator

STATE_FORMAT = "dermgan-train-state"


@dataclass
class TrainOptions:
    out: Path
    manifest: Path | None = None
    procedural: int | None = None  # number of procedural demo pairs instead of a manifest
    conditions: tuple[str, ...] | None = None  # default: the platform taxonomy
    image_size: int = 256
    ngf: int = 64
    ndf: int = 64
    num_downs: int | None = None  # default: log2(image_size), down to 1x1 like pix2pix
    upsample: str = "resize"
    dropout: bool = True
    steps: int = 10_000
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: LossWeights = field(default_factory=LossWeights)
    augment: bool = True
    checkpoint_every: int = 500
    log_every: int = 10
    n_samples: int = 8
    bn_recalibrate: int = 200  # images used to recompute BatchNorm statistics for each checkpoint
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None  # default: on for CUDA
    workers: int = 0
    threads: int | None = None
    resume: bool = False
    progress: bool = True
    command: str = ""

    def validate(self) -> None:
        if (self.manifest is None) == (self.procedural is None):
            raise ValueError("give exactly one of --manifest and --procedural")
        if self.procedural is not None and self.procedural < 1:
            raise ValueError(f"--procedural must be >= 1, got {self.procedural}")
        if not 64 <= self.image_size <= 512 or self.image_size & (self.image_size - 1):
            raise ValueError(f"--image-size must be a power of two within 64..512, got {self.image_size}")
        if self.num_downs is not None and (self.num_downs < 2 or self.image_size % 2**self.num_downs):
            raise ValueError(f"--num-downs {self.num_downs} does not divide --image-size {self.image_size}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "ngf", "ndf"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


@dataclass
class TrainResult:
    checkpoint: Path
    sha256: str
    step: int
    history: list[dict[str, float]]  # the metrics.jsonl records of this call


# ---------------------------------------------------------------------------
# The two halves of a training step
# ---------------------------------------------------------------------------


def discriminator_step(
    D: torch.nn.Module,
    opt_d: torch.optim.Optimizer,
    semantic: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    loss: LossWeights,
    scaler: torch.amp.GradScaler,
    autocast: Any,
) -> dict[str, float]:
    """Update D to tell (map, real) from (map, fake); fake is detached so G is untouched."""
    opt_d.zero_grad(set_to_none=True)
    with autocast():
        logits_fake = D(torch.cat([semantic, fake.detach()], dim=1))  # (B, 1, h, w)
        logits_real = D(torch.cat([semantic, real], dim=1))  # (B, 1, h, w)
        loss_fake = adversarial_loss(logits_fake, False, loss.gan_mode)
        loss_real = adversarial_loss(logits_real, True, loss.gan_mode)
        loss_d = 0.5 * (loss_fake + loss_real)  # pix2pix halves D's loss to slow it relative to G
    scaler.scale(loss_d).backward()
    scaler.step(opt_d)
    scaler.update()
    return {"loss_d": loss_d.item(), "loss_d_real": loss_real.item(), "loss_d_fake": loss_fake.item()}


def generator_step(
    D: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    semantic: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss: LossWeights,
    scaler: torch.amp.GradScaler,
    autocast: Any,
) -> dict[str, float]:
    """Update G to fool D while staying close to the real photo, above all inside the lesion."""
    opt_g.zero_grad(set_to_none=True)
    for p in D.parameters():  # D gets no gradients from G's loss
        p.requires_grad_(False)
    with autocast():
        logits = D(torch.cat([semantic, fake], dim=1))
        adv = adversarial_loss(logits, True, loss.gan_mode)
    fake32, real32 = fake.float(), real.float()
    l1 = l1_loss(fake32, real32)
    lesion = lesion_l1_loss(fake32, real32, mask)
    total = loss.adversarial * adv.float() + loss.l1 * l1 + loss.lesion_l1 * lesion
    scaler.scale(total).backward()
    scaler.step(opt_g)
    scaler.update()
    for p in D.parameters():
        p.requires_grad_(True)
    return {
        "loss_g": total.item(),
        "loss_g_adv": adv.item(),
        "loss_g_l1": l1.item(),
        "loss_g_lesion_l1": lesion.item(),
    }


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    return device


def _conditions(opts: TrainOptions) -> tuple[str, ...]:
    if opts.conditions:
        return tuple(opts.conditions)
    if opts.manifest is not None:
        # the platform taxonomy when the manifest fits in it, else the manifest's own codes
        codes = {r.condition for r in read_manifest(opts.manifest, None)}
        if codes <= set(TAXONOMY_CONDITIONS):
            return TAXONOMY_CONDITIONS
        return tuple(sorted(codes))
    return TAXONOMY_CONDITIONS


def _config(opts: TrainOptions, conditions: tuple[str, ...]) -> GeneratorConfig:
    num_downs = opts.num_downs or int(math.log2(opts.image_size))
    return GeneratorConfig(
        conditions=conditions,
        image_size=opts.image_size,
        ngf=opts.ngf,
        num_downs=num_downs,
        upsample=opts.upsample,
        dropout=opts.dropout,
    )


def _dataset(opts: TrainOptions, conditions: tuple[str, ...]) -> torch.utils.data.Dataset:
    if opts.manifest is not None:
        return ManifestDataset(
            opts.manifest, size=opts.image_size, conditions=conditions, seed=opts.seed, augment=opts.augment
        )
    return ProceduralDataset(
        opts.procedural, size=opts.image_size, conditions=conditions, seed=opts.seed, augment=opts.augment
    )


def _fixed_examples(dataset: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n examples without augmentation: what every sample grid shows."""
    was, dataset.augment = dataset.augment, False
    try:
        items = [dataset[i] for i in range(min(n, len(dataset)))]
    finally:
        dataset.augment = was
    return torch.stack([s for s, _, _ in items]), torch.stack([im for _, im, _ in items])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def map_preview(semantic: torch.Tensor) -> np.ndarray:
    """A human-readable picture of maps (B, C, H, W): skin colour, lesions tinted by condition."""
    skin = semantic[:, 0:3]
    mask = semantic[:, 3:4]
    n_cond = semantic.shape[1] - 4
    hues = torch.linspace(0, 1, n_cond + 1)[:-1]
    palette = torch.stack(
        [0.5 + 0.5 * torch.cos(2 * math.pi * (hues + o)) for o in (0.0, 1 / 3, 2 / 3)], dim=1
    )  # (n_cond, 3) in [0, 1]
    colour = torch.einsum("bkhw,kc->bchw", semantic[:, 4:].float().cpu(), palette) * 2 - 1
    return _to_uint8(skin.cpu() * (1 - mask.cpu()) + colour * mask.cpu())


def save_sample_grid(
    path: Path,
    G: torch.nn.Module,
    semantic: torch.Tensor,
    real: torch.Tensor,
    *,
    seed: int,
    device: torch.device,
) -> None:
    """Rows: map preview | real photo | generated (eval mode, per-image seeded dropout)."""
    was_training = G.training
    G.eval()
    with torch.inference_mode():
        h, w = semantic.shape[-2:]
        noise = G.draw_noise([seed + i for i in range(len(semantic))], h, w, device=device)
        fake = G(semantic.to(device), noise=noise or None)
    G.train(was_training)
    rows = [
        np.concatenate(list(block), axis=1)
        for block in (map_preview(semantic), _to_uint8(real), _to_uint8(fake))
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
    tmp.replace(path)


def _batches(dataset: Any, opts: TrainOptions, start_step: int):
    """Endless (epoch, batch) stream; the order of epoch e depends only on (seed, e), so a
    resumed run sees exactly the batches an uninterrupted one would."""
    n = len(dataset)
    per_epoch = max(1, n // opts.batch_size)
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        dataset.set_epoch(epoch)
        g = torch.Generator().manual_seed(opts.seed * 1_000_003 + epoch)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=opts.batch_size,
            sampler=torch.utils.data.RandomSampler(dataset, generator=g),
            generator=g,  # worker seeds from g too, never from the global RNG
            drop_last=n >= opts.batch_size,
            num_workers=opts.workers,
        )
        for i, batch in enumerate(loader):
            if i >= skip:
                yield epoch, batch
        skip = 0
        epoch += 1


def recalibrated_copy(
    G: torch.nn.Module, dataset: Any, opts: TrainOptions, device: torch.device, autocast: Any
) -> torch.nn.Module:
    """A copy of G whose BatchNorm running statistics are recomputed for its current weights.

    During training BatchNorm uses batch statistics; its running averages (what eval mode,
    and so the renderer, uses) trail weights that change quickly and give washed-out
    renders early in training. Recomputing them as a plain average over fixed training
    images with the final weights ("precise BN") fixes that. It runs on a copy with a
    forked RNG, so training itself is untouched and runs stay reproducible.
    """
    model = copy.deepcopy(G)
    n = min(len(dataset), opts.bn_recalibrate)
    if n == 0:
        return model.eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the recalibration batches
    model.train()
    was, dataset.augment = dataset.augment, False
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(opts.seed)
            for start in range(0, n, opts.batch_size):
                batch = [dataset[i][0] for i in range(start, min(start + opts.batch_size, n))]
                with autocast():
                    model(torch.stack(batch).to(device))
    finally:
        dataset.augment = was
    for m in norms:
        m.momentum = 0.1
    return model.eval()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


def train(opts: TrainOptions) -> TrainResult:
    """Run (or resume) a training run; return its latest checkpoint."""
    opts.validate()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = _resolve_device(opts.device)
    use_amp = (device.type == "cuda") if opts.amp is None else (opts.amp and device.type == "cuda")
    opts = dataclasses.replace(opts, amp=use_amp)  # the metadata records what was really used
    conditions = _conditions(opts)
    config = _config(opts, conditions)
    dataset = _dataset(opts, conditions)

    torch.manual_seed(opts.seed)
    G = build_generator(config).to(device)
    D = PatchDiscriminator(config.in_channels + config.out_channels, ndf=opts.ndf).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=opts.lr, betas=(opts.beta1, opts.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=opts.lr, betas=(opts.beta1, opts.beta2))
    scaler_g = torch.amp.GradScaler(device.type, enabled=use_amp)
    scaler_d = torch.amp.GradScaler(device.type, enabled=use_amp)

    step, elapsed, images_seen = 0, 0.0, 0
    ckpt_path, state_path = out / "generator.pt", out / "train_state.pt"
    if opts.resume:
        if not (ckpt_path.exists() and state_path.exists()):
            raise ValueError(f"--resume: {out} has no generator.pt and train_state.pt to resume from")
        saved = ckpt_io.load(ckpt_path, map_location=device)
        if saved.config != config:
            raise ValueError(
                f"--resume: the run in {out} was trained with {saved.config.to_dict()}, "
                f"these options give {config.to_dict()}"
            )
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"--resume: {state_path} is not a training state file")
        G.load_state_dict(saved.state_dict)
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        scaler_g.load_state_dict(state["scaler_g"])
        scaler_d.load_state_dict(state["scaler_d"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"].cpu())
        step, elapsed, images_seen = int(state["step"]), float(state["elapsed"]), int(state["images_seen"])
    if step >= opts.steps:
        raise ValueError(f"the run in {out} is already at step {step}; ask for more --steps to continue")

    fixed_maps, fixed_real = _fixed_examples(dataset, opts.n_samples)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else _no_autocast
    G.train()
    D.train()
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    sha = ""
    metrics_file = (out / "metrics.jsonl").open("a", encoding="utf-8")
    bar = _progress(opts, step)
    t_last, images_last = time.perf_counter(), 0
    try:
        for epoch, (semantic, real, mask) in _batches(dataset, opts, step):
            semantic, real, mask = (t.to(device, non_blocking=True) for t in (semantic, real, mask))
            with autocast():
                fake = G(semantic)  # (B, 3, H, W)
            losses = discriminator_step(
                D, opt_d, semantic, real, fake, loss=opts.loss, scaler=scaler_d, autocast=autocast
            )
            losses |= generator_step(
                D, opt_g, semantic, real, fake, mask, loss=opts.loss, scaler=scaler_g, autocast=autocast
            )
            step += 1
            images_seen += len(semantic)
            images_last += len(semantic)
            running = {k: v if k not in running else 0.9 * running[k] + 0.1 * v for k, v in losses.items()}
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    {
                        k.removeprefix("loss_"): f"{running[k]:.3f}"
                        for k in ("loss_d", "loss_g_adv", "loss_g_l1")
                    }
                )
            if step % opts.log_every == 0 or step == opts.steps:
                now = time.perf_counter()
                elapsed += now - t_last
                record = {
                    "step": step,
                    "epoch": epoch,
                    **losses,
                    "images_per_s": images_last / max(now - t_last, 1e-9),
                }
                t_last, images_last = now, 0
                history.append(record)
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if step % opts.checkpoint_every == 0 or step == opts.steps:
                released = recalibrated_copy(G, dataset, opts, device, autocast)
                sha = _checkpoint(
                    out,
                    opts,
                    config,
                    released,
                    D,
                    opt_g,
                    opt_d,
                    scaler_g,
                    scaler_d,
                    step,
                    elapsed,
                    images_seen,
                    running,
                    device,
                )
                save_sample_grid(
                    out / "samples" / f"step-{step:07d}.png",
                    released,
                    fixed_maps,
                    fixed_real,
                    seed=opts.seed,
                    device=device,
                )
            if step >= opts.steps:
                break
    finally:
        metrics_file.close()
        if bar is not None:
            bar.close()
    return TrainResult(checkpoint=ckpt_path, sha256=sha, step=step, history=history)


def _no_autocast():
    import contextlib

    return contextlib.nullcontext()


def _progress(opts: TrainOptions, step: int):
    if not opts.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=opts.steps, initial=step, unit="step", dynamic_ncols=True)


def _checkpoint(
    out: Path,
    opts: TrainOptions,
    config: GeneratorConfig,
    G: torch.nn.Module,
    D: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    scaler_g: torch.amp.GradScaler,
    scaler_d: torch.amp.GradScaler,
    step: int,
    elapsed: float,
    images_seen: int,
    running: dict[str, float],
    device: torch.device,
) -> str:
    """Write train_state.pt first, then generator.pt: a crash between the two leaves a state
    one checkpoint ahead, which --resume refuses rather than silently mixing."""
    state = {
        "format": STATE_FORMAT,
        "step": step,
        "elapsed": elapsed,
        "images_seen": images_seen,
        "discriminator": D.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "scaler_g": scaler_g.state_dict(),
        "scaler_d": scaler_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state()
    _atomic_torch_save(state, out / "train_state.pt")
    options = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(opts).items()
        if k not in ("out", "command")
    }
    options["conditions"] = list(config.conditions)
    metadata = {
        "training": {
            "command": opts.command,
            "step": step,
            "images_seen": images_seen,
            "seconds": round(elapsed, 1),
            "device": str(device),
            "data": (
                {"manifest": str(opts.manifest)}
                if opts.manifest is not None
                else {"procedural": opts.procedural, "seed": opts.seed}
            ),
            "options": options,
            "running_losses": {k: round(v, 5) for k, v in running.items()},
        }
    }
    return ckpt_io.save(out / "generator.pt", model=G, config=config, metadata=metadata)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m generator.train",
        description="Train the DermGAN generator on a manifest of annotated photos or on procedural demo data.",
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--manifest", type=Path, help="CSV with columns image, mask, condition[, skin_type]")
    data.add_argument("--procedural", type=int, metavar="N", help="train on N procedural demo pairs")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, samples, metrics)")
    p.add_argument(
        "--conditions", help="comma-separated condition codes in channel order (default: taxonomy)"
    )
    p.add_argument("--image-size", type=int, default=256, help="64..512, a power of two (default 256)")
    p.add_argument("--ngf", type=int, default=64, help="generator width (default 64)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator width (default 64)")
    p.add_argument("--num-downs", type=int, default=None, help="U-Net depth (default log2(image size))")
    p.add_argument("--upsample", choices=("resize", "transpose"), default="resize")
    p.add_argument("--no-dropout", action="store_true", help="no dropout (no sampling noise)")
    p.add_argument("--steps", type=int, default=10_000, help="total optimisation steps (default 10000)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument(
        "--lambda-l1", type=float, default=100.0, help="weight of the whole-image L1 (default 100)"
    )
    p.add_argument(
        "--lambda-lesion", type=float, default=100.0, help="weight of the lesion-only L1 (default 100)"
    )
    p.add_argument("--lambda-adv", type=float, default=1.0, help="weight of the adversarial loss (default 1)")
    p.add_argument("--gan-mode", choices=("bce", "lsgan"), default="bce")
    p.add_argument("--no-augment", action="store_true", help="no flips or crops")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--samples", type=int, default=8, help="examples in each sample grid")
    p.add_argument(
        "--bn-recalibrate",
        type=int,
        default=200,
        help="images to recompute BatchNorm statistics per checkpoint",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-amp", action="store_true", help="full fp32 on CUDA")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes (real photos: 4-8)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def options_from_args(argv: Sequence[str]) -> TrainOptions:
    a = build_parser().parse_args(argv)
    return TrainOptions(
        out=a.out,
        manifest=a.manifest,
        procedural=a.procedural,
        conditions=tuple(c.strip() for c in a.conditions.split(",") if c.strip()) if a.conditions else None,
        image_size=a.image_size,
        ngf=a.ngf,
        ndf=a.ndf,
        num_downs=a.num_downs,
        upsample=a.upsample,
        dropout=not a.no_dropout,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        beta1=a.beta1,
        loss=LossWeights(
            adversarial=a.lambda_adv, l1=a.lambda_l1, lesion_l1=a.lambda_lesion, gan_mode=a.gan_mode
        ),
        augment=not a.no_augment,
        checkpoint_every=a.checkpoint_every,
        log_every=a.log_every,
        n_samples=a.samples,
        bn_recalibrate=a.bn_recalibrate,
        seed=a.seed,
        device=a.device,
        amp=False if a.no_amp else None,
        workers=a.workers,
        threads=a.threads,
        resume=a.resume,
        progress=not a.no_progress,
        command="python -m generator.train " + shlex.join(argv),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        opts = options_from_args(argv)
        result = train(opts)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"checkpoint {result.checkpoint} step {result.step} sha256 {result.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
