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
import contextlib
import dataclasses
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generator import checkpoint as ckpt_io
from generator.batchnorm import recalibrated_copy
from generator.config import GeneratorConfig
from generator.data import TAXONOMY_CONDITIONS, ManifestDataset, ProceduralDataset, read_manifest
from generator.losses import LossWeights, adversarial_loss, l1_loss, lesion_l1_loss
from generator.networks import PatchDiscriminator, build_generator
from generator.previews import save_sample_grid

GENERATOR_FILE = "generator.pt"  # the latest checkpoint: what the platform renders with
STATE_FILE = "train_state.pt"  # what --resume needs besides it (generator.checkpoint.TrainingState)


@dataclass
class TrainOptions:
    """How to train: the network to build (``network``) plus data, optimiser and run settings.

    ``network.conditions`` may be empty: the run then takes the platform taxonomy, or a
    manifest's own codes when they fall outside it (see :func:`_conditions`).
    """

    out: Path
    network: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(conditions=()))
    manifest: Path | None = None
    procedural: int | None = None  # number of procedural demo pairs instead of a manifest
    ndf: int = 64  # discriminator width (the discriminator is not part of the checkpoint)
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
        size, num_downs = self.network.image_size, self.network.num_downs
        if (self.manifest is None) == (self.procedural is None):
            raise ValueError("give exactly one of --manifest and --procedural")
        if self.procedural is not None and self.procedural < 1:
            raise ValueError(f"--procedural must be >= 1, got {self.procedural}")
        if not 64 <= size <= 512 or size & (size - 1):
            raise ValueError(f"--image-size must be a power of two within 64..512, got {size}")
        if num_downs < 2 or size % 2**num_downs:
            raise ValueError(f"--num-downs {num_downs} does not divide --image-size {size}")
        counts = {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "checkpoint_every": self.checkpoint_every,
            "log_every": self.log_every,
            "ngf": self.network.ngf,
            "ndf": self.ndf,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


@dataclass
class TrainResult:
    checkpoint: Path
    sha256: str
    step: int
    history: list[dict[str, float]]  # the metrics.jsonl records of this call


@dataclass
class TrainLimits:
    """Bounds and callbacks for one call of :func:`train`, for callers that run a long training
    as a chain of short pieces, each resuming the last (the platform's training jobs). Any stop
    ends with a checkpoint, so the run folder always holds the exact state to resume from."""

    max_steps: int | None = None  # stop after this many steps in this call
    max_seconds: float | None = None  # or once this much wall time has passed (checked each step)
    on_log: Callable[[dict[str, float]], bool] | None = None  # each metrics record; True = stop now
    on_checkpoint: Callable[[int], None] | None = None  # after each checkpoint is on disk (its step)


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
    if opts.network.conditions:
        return tuple(opts.network.conditions)
    if opts.manifest is not None:
        # the platform taxonomy when the manifest fits in it, else the manifest's own codes
        codes = {r.condition for r in read_manifest(opts.manifest, None)}
        if codes <= set(TAXONOMY_CONDITIONS):
            return TAXONOMY_CONDITIONS
        return tuple(sorted(codes))
    return TAXONOMY_CONDITIONS


def _config(opts: TrainOptions) -> GeneratorConfig:
    """The network the run trains: the options' config with its conditions resolved."""
    return dataclasses.replace(opts.network, conditions=_conditions(opts))


def _dataset(opts: TrainOptions, config: GeneratorConfig) -> torch.utils.data.Dataset:
    common = dict(size=config.image_size, conditions=config.conditions, seed=opts.seed, augment=opts.augment)
    if opts.manifest is not None:
        return ManifestDataset(opts.manifest, **common)
    return ProceduralDataset(opts.procedural, **common)


def _fixed_examples(dataset: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n examples without augmentation: what every sample grid shows."""
    was, dataset.augment = dataset.augment, False
    try:
        items = [dataset[i] for i in range(min(n, len(dataset)))]
    finally:
        dataset.augment = was
    return torch.stack([s for s, _, _ in items]), torch.stack([im for _, im, _ in items])


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


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


@dataclass
class _Run:
    """One run's moving parts: what the loop updates and what each checkpoint writes."""

    opts: TrainOptions
    config: GeneratorConfig  # the network being trained (conditions resolved)
    device: torch.device
    G: torch.nn.Module
    state: ckpt_io.TrainingState  # discriminator, optimisers, scalers, counters
    running: dict[str, float] = field(default_factory=dict)  # smoothed losses for the metadata
    data: dict[str, Any] = field(default_factory=dict)  # what it learns from (see _data_record)

    @property
    def out(self) -> Path:
        return Path(self.opts.out)


def train(opts: TrainOptions, limits: TrainLimits | None = None) -> TrainResult:
    """Run (or resume) a training run, all of it or what ``limits`` allow; return its latest checkpoint."""
    opts.validate()
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = _resolve_device(opts.device)
    use_amp = (device.type == "cuda") if opts.amp is None else (opts.amp and device.type == "cuda")
    opts = dataclasses.replace(opts, amp=use_amp)  # the metadata records what was really used
    config = _config(opts)
    dataset = _dataset(opts, config)
    run = _start(opts, config, device)
    run.data = _data_record(opts)
    if opts.resume:
        _resume(run)
    if run.state.step >= opts.steps:
        raise ValueError(
            f"the run in {run.out} is already at step {run.state.step}; ask for more --steps to continue"
        )
    return _loop(run, dataset, limits or TrainLimits())


def _data_record(opts: TrainOptions) -> dict[str, Any]:
    """The data provenance each checkpoint carries: the manifest and the sha256 of every photo
    in it (in manifest order), or the procedural set."""
    if opts.manifest is None:
        return {"procedural": opts.procedural, "seed": opts.seed}
    rows = read_manifest(opts.manifest, None)
    digests = []
    for row in rows:
        with open(row.image, "rb") as fh:
            digests.append(hashlib.file_digest(fh, "sha256").hexdigest())
    return {"manifest": str(opts.manifest), "n_images": len(rows), "image_sha256": digests}


def _start(opts: TrainOptions, config: GeneratorConfig, device: torch.device) -> _Run:
    """Fresh networks, optimisers and scalers, seeded from ``opts.seed``."""
    torch.manual_seed(opts.seed)
    G = build_generator(config).to(device)
    D = PatchDiscriminator(config.in_channels + config.out_channels, ndf=opts.ndf).to(device)
    betas = (opts.beta1, opts.beta2)
    state = ckpt_io.TrainingState(
        discriminator=D,
        opt_g=torch.optim.Adam(G.parameters(), lr=opts.lr, betas=betas),
        opt_d=torch.optim.Adam(D.parameters(), lr=opts.lr, betas=betas),
        scaler_g=torch.amp.GradScaler(device.type, enabled=bool(opts.amp)),
        scaler_d=torch.amp.GradScaler(device.type, enabled=bool(opts.amp)),
    )
    return _Run(opts=opts, config=config, device=device, G=G, state=state)


def _resume(run: _Run) -> None:
    """Load the run folder's generator.pt and train_state.pt into ``run``."""
    ckpt_path, state_path = run.out / GENERATOR_FILE, run.out / STATE_FILE
    if not (ckpt_path.exists() and state_path.exists()):
        raise ValueError(f"--resume: {run.out} has no {GENERATOR_FILE} and {STATE_FILE} to resume from")
    saved = ckpt_io.load(ckpt_path, map_location=run.device)
    if saved.config != run.config:
        raise ValueError(
            f"--resume: the run in {run.out} was trained with {saved.config.to_dict()}, "
            f"these options give {run.config.to_dict()}"
        )
    run.G.load_state_dict(saved.state_dict)
    try:
        ckpt_io.training_state_load(state_path, run.state, device=run.device)
    except ckpt_io.CheckpointError as exc:
        raise ValueError(f"--resume: {exc}") from None


def _loop(run: _Run, dataset: Any, limits: TrainLimits) -> TrainResult:
    opts, state = run.opts, run.state
    stop_step = opts.steps if limits.max_steps is None else min(opts.steps, state.step + limits.max_steps)
    deadline = None if limits.max_seconds is None else time.monotonic() + limits.max_seconds
    fixed = _fixed_examples(dataset, opts.n_samples)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if opts.amp else contextlib.nullcontext
    run.G.train()
    state.discriminator.train()
    history: list[dict[str, float]] = []
    sha = ""
    with (run.out / "metrics.jsonl").open("a", encoding="utf-8") as metrics_file:
        bar = _progress(opts, state.step)
        t_last, images_last = time.perf_counter(), 0
        try:
            for epoch, batch in _batches(dataset, opts, state.step):
                losses = _train_step(run, batch, autocast)
                images_last += len(batch[0])
                if bar is not None:
                    bar.update(1)
                    shown = ("loss_d", "loss_g_adv", "loss_g_l1")
                    bar.set_postfix({k.removeprefix("loss_"): f"{run.running[k]:.3f}" for k in shown})
                stop = state.step >= stop_step or (deadline is not None and time.monotonic() >= deadline)
                if state.step % opts.log_every == 0 or stop:
                    now = time.perf_counter()
                    state.elapsed += now - t_last
                    record = {
                        "step": state.step,
                        "epoch": epoch,
                        **losses,
                        "images_per_s": images_last / max(now - t_last, 1e-9),
                    }
                    t_last, images_last = now, 0
                    history.append(record)
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    stop = bool(limits.on_log and limits.on_log(record)) or stop
                if state.step % opts.checkpoint_every == 0 or stop:
                    sha = _release(run, dataset, fixed, autocast)
                    if limits.on_checkpoint is not None:
                        limits.on_checkpoint(state.step)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
    return TrainResult(checkpoint=run.out / GENERATOR_FILE, sha256=sha, step=state.step, history=history)


def _train_step(run: _Run, batch: Sequence[torch.Tensor], autocast: Any) -> dict[str, float]:
    """One optimisation step on one batch: D first, then G against the updated D (pix2pix)."""
    state, common = run.state, {"loss": run.opts.loss, "autocast": autocast}
    semantic, real, mask = (t.to(run.device, non_blocking=True) for t in batch)
    with autocast():
        fake = run.G(semantic)  # (B, 3, H, W)
    D = state.discriminator
    losses = discriminator_step(D, state.opt_d, semantic, real, fake, scaler=state.scaler_d, **common)
    losses |= generator_step(D, state.opt_g, semantic, real, fake, mask, scaler=state.scaler_g, **common)
    state.step += 1
    state.images_seen += len(semantic)
    run.running = {
        k: v if k not in run.running else 0.9 * run.running[k] + 0.1 * v for k, v in losses.items()
    }
    return losses


def _release(run: _Run, dataset: Any, fixed: tuple[torch.Tensor, torch.Tensor], autocast: Any) -> str:
    """Checkpoint a BatchNorm-recalibrated copy of G and draw its sample grid; return the sha256."""
    opts = run.opts
    released = recalibrated_copy(
        run.G, dataset, n_images=opts.bn_recalibrate, batch_size=opts.batch_size, seed=opts.seed,
        device=run.device, autocast=autocast,
    )  # fmt: skip
    sha = _checkpoint(run, released)
    grid = run.out / "samples" / f"step-{run.state.step:07d}.png"
    save_sample_grid(grid, released, *fixed, seed=run.opts.seed, device=run.device)
    return sha


def _progress(opts: TrainOptions, step: int) -> tqdm | None:
    if not opts.progress:
        return None
    return tqdm(total=opts.steps, initial=step, unit="step", dynamic_ncols=True)


def _checkpoint(run: _Run, released: torch.nn.Module) -> str:
    """Write train_state.pt first, then generator.pt: a crash between the two leaves a state
    one checkpoint ahead, which --resume refuses rather than silently mixing."""
    ckpt_io.training_state_save(run.out / STATE_FILE, run.state, device=run.device)
    opts, state = run.opts, run.state
    metadata = {
        "training": {
            "command": opts.command,
            "step": state.step,
            "images_seen": state.images_seen,
            "seconds": round(state.elapsed, 1),
            "device": str(run.device),
            "data": run.data,
            "options": _options_record(opts, run.config),
            "running_losses": {k: round(v, 5) for k, v in run.running.items()},
        }
    }
    return ckpt_io.save(run.out / GENERATOR_FILE, model=released, config=run.config, metadata=metadata)


def _options_record(opts: TrainOptions, config: GeneratorConfig) -> dict[str, Any]:
    """The options as one flat JSON object (network fields beside the others, as readers expect)."""
    options = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(opts).items()
        if k not in ("out", "command", "network")
    }
    network = {k: v for k, v in config.to_dict().items() if k not in ("out_channels", "extra")}
    return options | network  # the flags' view; the whole network config is metadata["config"]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = TrainOptions(out=Path("."))  # the defaults, declared once on the dataclasses
    net, loss = d.network, d.loss
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
    p.add_argument(
        "--image-size",
        type=int,
        default=net.image_size,
        help=f"64..512, a power of two (default {net.image_size})",
    )
    p.add_argument("--ngf", type=int, default=net.ngf, help=f"generator width (default {net.ngf})")
    p.add_argument("--ndf", type=int, default=d.ndf, help=f"discriminator width (default {d.ndf})")
    p.add_argument("--num-downs", type=int, default=None, help="U-Net depth (default log2(image size))")
    p.add_argument("--upsample", choices=("resize", "transpose"), default=net.upsample)
    p.add_argument("--no-dropout", action="store_true", help="no dropout (no sampling noise)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"total optimisation steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--beta1", type=float, default=d.beta1)
    p.add_argument(
        "--lambda-l1", type=float, default=loss.l1, help=f"weight of the whole-image L1 (default {loss.l1:g})"
    )
    p.add_argument(
        "--lambda-lesion",
        type=float,
        default=loss.lesion_l1,
        help=f"weight of the lesion-only L1 (default {loss.lesion_l1:g})",
    )
    p.add_argument(
        "--lambda-adv",
        type=float,
        default=loss.adversarial,
        help=f"weight of the adversarial loss (default {loss.adversarial:g})",
    )
    p.add_argument("--gan-mode", choices=("bce", "lsgan"), default=loss.gan_mode)
    p.add_argument("--no-augment", action="store_true", help="no flips or crops")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--samples", type=int, default=d.n_samples, help="examples in each sample grid")
    p.add_argument(
        "--bn-recalibrate",
        type=int,
        default=d.bn_recalibrate,
        help="images to recompute BatchNorm statistics per checkpoint",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-amp", action="store_true", help="full fp32 on CUDA")
    p.add_argument("--workers", type=int, default=d.workers, help="data-loading processes (real photos: 4-8)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def options_from_args(argv: Sequence[str]) -> TrainOptions:
    a = build_parser().parse_args(argv)
    network = GeneratorConfig(
        conditions=tuple(c.strip() for c in a.conditions.split(",") if c.strip()) if a.conditions else (),
        image_size=a.image_size,
        ngf=a.ngf,
        # pix2pix goes down to 1x1: log2(image size) levels (bit_length, so a bad size reaches validate())
        num_downs=a.num_downs or max(a.image_size, 1).bit_length() - 1,
        upsample=a.upsample,
        dropout=not a.no_dropout,
    )
    return TrainOptions(
        out=a.out,
        network=network,
        manifest=a.manifest,
        procedural=a.procedural,
        ndf=a.ndf,
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
