"""A compact skin-condition classifier: the augmentation experiment's model and the
default, domain-specific feature space of the fidelity metrics.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) showed that adding synthetic
images of rare conditions to a classifier's training set helps it on those
conditions. This is a small VGG-style CNN (conv-BN-ReLU ×2 then max-pool, per
stage; global average pooling; linear head) trained from scratch on 64–128 px
images — small enough for CPU at tiny sizes, no downloaded weights. The
penultimate layer (the pooled features, ``width · 2^(depth-1)`` values) is what
:class:`ClassifierExtractor` hands to ``generator.metrics``.

Checkpoints are one file holding the config, the weights and JSON metadata,
loaded with ``torch.load(weights_only=True)``::

    python -m generator.classifier train --data DIR --out clf.pt   # DIR/<CONDITION>/*.png
    python -m generator.classifier eval --data DIR --checkpoint clf.pt
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

FORMAT = "dermgan-classifier"
FORMAT_VERSION = 1


class ClassifierCheckpointError(ValueError):
    """The file is not a readable classifier checkpoint (message says why)."""


@dataclass(frozen=True)
class ClassifierConfig:
    conditions: tuple[str, ...]  # class order: output i is conditions[i]
    image_size: int = 64  # input H = W; images are resized to this
    width: int = 16  # channels of the first stage; doubles every stage
    depth: int = 4  # number of conv stages (each halves the resolution)
    dropout: float = 0.2  # before the linear head

    @property
    def feature_dim(self) -> int:
        return self.width * 2 ** (self.depth - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = list(self.conditions)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown classifier config fields: {sorted(unknown)}")
        return cls(**{**data, "conditions": tuple(data["conditions"])})

    def validate(self) -> None:
        if len(self.conditions) < 2:
            raise ValueError(
                f"conditions: a classifier needs at least 2 classes, got {list(self.conditions)}"
            )
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError("conditions: duplicate condition codes")
        if self.image_size < 2**self.depth:
            raise ValueError(f"image_size: {self.image_size} px is too small for depth {self.depth}")
        if self.width < 1 or self.depth < 1:
            raise ValueError("width and depth must be ≥ 1")


class SkinClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        stages: list[nn.Module] = []
        c_in = 3
        for i in range(config.depth):
            c_out = config.width * 2**i
            stages += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.body = nn.Sequential(*stages)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, len(config.conditions))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features: (B, 3, S, S) in [-1, 1] -> (B, feature_dim)."""
        return self.body(x).mean(dim=(2, 3))  # global average pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))  # (B, n_classes) logits


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _to_pil(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    with Image.open(image) as im:
        return im.convert("RGB")


def preprocess(images: Sequence[Image.Image | str | Path], size: int) -> torch.Tensor:
    """Images (PIL or paths) -> (N, 3, size, size) float tensor in [-1, 1] (bilinear resize)."""
    arrs = []
    for image in images:
        im = _to_pil(image).convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        arrs.append(np.asarray(im, dtype=np.uint8))
    if not arrs:
        return torch.empty(0, 3, size, size)
    t = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float()  # (N, 3, S, S)
    return t / 127.5 - 1.0


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips and 90° rotations of (B, C, H, W): lesions have no canonical orientation.

    The classifier's standard training augmentation; the augmentation experiment's "copies"
    null-check arm applies it once to duplicated images."""
    b = x.shape[0]
    flip_h = torch.rand(b, generator=gen) < 0.5
    flip_v = torch.rand(b, generator=gen) < 0.5
    rot = torch.randint(0, 4, (b,), generator=gen)
    x = x.clone()
    x[flip_h] = x[flip_h].flip(-1)
    x[flip_v] = x[flip_v].flip(-2)
    for r in range(1, 4):
        sel = rot == r
        if sel.any():
            x[sel] = torch.rot90(x[sel], r, dims=(-2, -1))
    return x


@dataclass
class TrainHistory:
    loss: list[float]  # mean training loss per epoch
    accuracy: list[float]  # training accuracy per epoch
    n_train: int
    seed: int
    epochs: int
    batch_size: int
    lr: float
    device: str


def train_classifier(
    images: Sequence[Image.Image | str | Path] | torch.Tensor,
    labels: Sequence[str],
    config: ClassifierConfig,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str = "auto",
    augment: bool = True,
    progress: bool = True,
    desc: str = "train classifier",
    class_weights: Sequence[float] | None = None,
) -> tuple[SkinClassifier, TrainHistory]:
    """Train a fresh :class:`SkinClassifier` with Adam and cross-entropy.

    Seeded end to end (initialisation, shuffling, augmentation and dropout draw from
    ``seed``), so two calls with the same inputs and seed on the same device give the
    same weights — which the augmentation experiment relies on to make its arms
    differ only in their training data. ``images`` may be a preprocessed tensor.
    ``class_weights`` (one per condition, in ``config.conditions`` order) weight the
    cross-entropy, e.g. inverse class frequencies for a class-reweighted loss.
    """
    config.validate()
    unknown = sorted(set(labels) - set(config.conditions))
    if unknown:
        raise ValueError(f"labels not in the classifier's conditions: {unknown}")
    x = images if isinstance(images, torch.Tensor) else preprocess(images, config.image_size)
    if x.shape[0] != len(labels):
        raise ValueError(f"{x.shape[0]} images but {len(labels)} labels")
    if x.shape[0] == 0:
        raise ValueError("no training images")
    index = {c: i for i, c in enumerate(config.conditions)}
    y = torch.tensor([index[lbl] for lbl in labels], dtype=torch.long)
    dev = resolve_device(device)
    weight = None
    if class_weights is not None:
        if len(class_weights) != len(config.conditions) or not all(w > 0 for w in class_weights):
            raise ValueError(f"class_weights must be {len(config.conditions)} positive numbers")
        weight = torch.tensor(list(class_weights), dtype=torch.float32, device=dev)
    torch.manual_seed(seed)
    model = SkinClassifier(config).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = TrainHistory([], [], int(x.shape[0]), seed, epochs, batch_size, lr, str(dev))
    n = x.shape[0]
    bar = tqdm(
        total=epochs * ((n + batch_size - 1) // batch_size), desc=desc, disable=not progress, leave=False
    )
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2 and n >= 2:  # BatchNorm needs ≥ 2 samples: fold a lone remainder in
                idx = order[start - 1 : start + 1]
            xb = x[idx]
            if augment:
                xb = augment_batch(xb, gen)
            xb, yb = xb.to(dev), y[idx].to(dev)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            bar.update(1)
        history.loss.append(total_loss / n)
        history.accuracy.append(correct / n)
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
    bar.close()
    model.eval()
    return model, history


@torch.no_grad()
def predict_proba(
    model: SkinClassifier, images: Sequence[Image.Image | str | Path] | torch.Tensor, batch_size: int = 128
) -> np.ndarray:
    """(N, n_classes) softmax probabilities, in ``model.config.conditions`` order."""
    model.eval()
    x = images if isinstance(images, torch.Tensor) else preprocess(images, model.config.image_size)
    dev = next(model.parameters()).device
    out = [
        F.softmax(model(x[i : i + batch_size].to(dev)), dim=1).cpu() for i in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, len(model.config.conditions)))


@torch.no_grad()
def extract_features(
    model: SkinClassifier, images: Sequence[Image.Image | str | Path] | torch.Tensor, batch_size: int = 128
) -> np.ndarray:
    """(N, feature_dim) penultimate-layer features (float64), eval mode."""
    model.eval()
    x = images if isinstance(images, torch.Tensor) else preprocess(images, model.config.image_size)
    dev = next(model.parameters()).device
    out = [model.features(x[i : i + batch_size].to(dev)).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, model.config.feature_dim))


def evaluate_classifier(model: SkinClassifier, images: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Top-1 and top-3 accuracy and per-condition sensitivity (recall) on labelled images."""
    probs = predict_proba(model, images)
    index = {c: i for i, c in enumerate(model.config.conditions)}
    y = np.array([index[lbl] for lbl in labels])
    ranked = np.argsort(-probs, axis=1)
    top1 = ranked[:, 0] == y
    top3 = np.any(ranked[:, :3] == y[:, None], axis=1)
    sens = {}
    for c, i in index.items():
        m = y == i
        sens[c] = float(top1[m].mean()) if m.any() else None
    return {"n": int(len(y)), "top1": float(top1.mean()), "top3": float(top3.mean()), "sensitivity": sens}


# --------------------------------------------------------------- checkpoints


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_classifier(
    path: str | Path, *, model: SkinClassifier, metadata: dict[str, Any] | None = None
) -> str:
    """Write config + weights + JSON metadata atomically; return the file's sha256."""
    meta = json.loads(json.dumps(metadata or {}))  # JSON-safe or fail loudly here
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    _atomic_write(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def load_classifier(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[SkinClassifier, dict[str, Any], str]:
    """(model in eval mode, metadata, sha256). Raises ClassifierCheckpointError on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierCheckpointError(f"classifier checkpoint not found: {path}")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        raise ClassifierCheckpointError(f"{path} is not a readable classifier checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ClassifierCheckpointError(f"{path} is not a {FORMAT} checkpoint")
    try:
        config = ClassifierConfig.from_dict(payload["config"])
        model = SkinClassifier(config)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ClassifierCheckpointError(f"{path}: architecture mismatch or corrupt config: {exc}") from None
    model.to(map_location).eval()
    return model, dict(payload.get("metadata", {})), sha


class ClassifierExtractor:
    """The classifier's penultimate layer as a metrics feature space.

    Domain-specific: it measures what the classifier learned to tell apart on the
    real images it was trained on (colour, texture, lesion shape), not ImageNet
    semantics, so its FID is not comparable with published Inception FIDs.
    """

    def __init__(self, model: SkinClassifier, sha256: str) -> None:
        self.model = model
        self.sha256 = sha256
        self.name = f"classifier-{model.config.image_size}px-w{model.config.width}d{model.config.depth}"
        self.feature_dim = model.config.feature_dim

    @classmethod
    def from_path(cls, path: str | Path, device: str = "auto") -> ClassifierExtractor:
        model, _meta, sha = load_classifier(path, map_location=resolve_device(device))
        return cls(model, sha)

    def extract(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        return extract_features(self.model, images, batch_size=batch_size)


# ----------------------------------------------------------------------- CLI


def _load_labelled_folder(directory: str) -> tuple[list[Path], list[str]]:
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"not a directory: {root}")
    paths, labels = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(sub.iterdir()):
            if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
                paths.append(p)
                labels.append(sub.name)
    if not paths:
        raise ValueError(f"no images in condition sub-folders of {root} (expected DIR/<CONDITION>/*.png)")
    return paths, labels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.classifier")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train on DIR/<CONDITION>/*.png")
    tr.add_argument("--data", required=True)
    tr.add_argument("--out", required=True)
    tr.add_argument("--image-size", type=int, default=64)
    tr.add_argument("--width", type=int, default=16)
    tr.add_argument("--depth", type=int, default=4)
    tr.add_argument("--epochs", type=int, default=10)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    ev = sub.add_parser("eval", help="top-1/top-3/sensitivity on DIR/<CONDITION>/*.png")
    ev.add_argument("--data", required=True)
    ev.add_argument("--checkpoint", required=True)
    args = parser.parse_args(argv)
    try:
        paths, labels = _load_labelled_folder(args.data)
        if args.command == "train":
            config = ClassifierConfig(tuple(sorted(set(labels))), args.image_size, args.width, args.depth)
            model, history = train_classifier(
                paths,
                labels,
                config,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                device=args.device,
            )
            sha = save_classifier(
                args.out, model=model, metadata={"history": asdict(history), "data": args.data}
            )
            print(json.dumps({"checkpoint": args.out, "sha256": sha, "final_loss": history.loss[-1]}))
        else:
            model, _meta, _sha = load_classifier(args.checkpoint)
            print(json.dumps(evaluate_classifier(model, paths, labels), indent=2))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
