"""The experiment's arms: what each one trains on, and training one arm with one seed.

A gain from synthetic images means something only against the cheap ways of giving a rare
class more weight, so every arm below differs from ``baseline`` in its training data or
loss alone, and the ones that add images add exactly as many as the synthetic arm does:

* ``baseline`` — the real training images;
* ``oversample`` — plus the chosen conditions' real training images repeated (cycling
  through a seeded permutation, so each repeats about equally often);
* ``reweight`` — the real images, cross-entropy weighted by N / (C · n_c) (inverse class
  frequency, sklearn's "balanced");
* ``synthetic`` — plus the DermGAN images of the chosen conditions;
* ``synthetic_oversample`` — the synthetic arm plus the oversampling arm's repeats;
* ``copies`` — the **null check**: the oversampling arm's repeats, each flipped/rotated
  once by the classifier's standard augmentation. They carry no information the real images
  lack, so a protocol that credits them with a significant gain over oversampling would
  credit noise; the report shows this comparison beside the headline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generator.augment.config import AugmentationConfig
from generator.augment.stats import derived_seed
from generator.classifier import ClassifierConfig, augment_batch, save_classifier, train_classifier

ARM_DESCRIPTIONS = {
    "baseline": "real training images only",
    "oversample": "baseline + the chosen conditions' real training images repeated, as many as the synthetic arm adds",
    "reweight": "real training images, class-weighted loss (weight N / (C·n) per condition)",
    "synthetic": "baseline + synthetic (DermGAN) images of the chosen conditions",
    "copies": "null check: the oversampling repeats, each flipped/rotated once (no new information)",
    "synthetic_oversample": "synthetic arm + the oversampling repeats",
}
SYNTHETIC_ARMS = ("synthetic", "synthetic_oversample")


@dataclass
class Arm:
    """One arm: its training set (or loss weights), and once trained one record per seed."""

    name: str
    x: torch.Tensor = field(repr=False)  # (N, 3, S, S) preprocessed training images
    labels: list[str]
    n_added: int = 0  # images beyond the real training set
    class_weights: list[float] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # per seed: seed, history, checkpoint

    @property
    def description(self) -> str:
        return ARM_DESCRIPTIONS[self.name]


def repeat_indexes(train_labels: Sequence[str], added: dict[str, int], seed: int) -> np.ndarray:
    """Positions (into the training set) of the real images the oversampling arms repeat:
    for each condition ``c``, ``added[c]`` positions cycling through a seeded permutation of
    its training images, so every image is repeated ⌊k/n⌋ or ⌈k/n⌉ times."""
    labels = np.asarray(train_labels, dtype=object)
    picks = []
    for c, k in sorted(added.items()):
        members = np.flatnonzero(labels == c)
        order = np.random.default_rng(derived_seed(seed, f"repeat:{c}")).permutation(members)
        picks.append(np.resize(order, k))
    return np.concatenate(picks).astype(int) if picks else np.zeros(0, dtype=int)


def build_arms(
    *,
    x_real: torch.Tensor,
    train_labels: list[str],
    x_syn: torch.Tensor,
    syn_labels: list[str],
    classes: Sequence[str],
    config: AugmentationConfig,
) -> list[Arm]:
    """The arms named in ``config.arms``, in that order, with their training tensors."""
    added = Counter(syn_labels)
    rep = repeat_indexes(train_labels, dict(added), config.seed)
    rep_labels = [train_labels[i] for i in rep]
    x_rep = x_real[torch.from_numpy(rep)]
    gen = torch.Generator().manual_seed(derived_seed(config.seed, "copies") % 2**63)
    x_copies = augment_batch(x_rep, gen) if len(rep) else x_rep
    counts = Counter(train_labels)
    n = len(train_labels)
    weights = [n / (len(classes) * counts[c]) for c in classes]
    build = {
        "baseline": lambda: Arm("baseline", x_real, list(train_labels)),
        "oversample": lambda: Arm(
            "oversample", torch.cat([x_real, x_rep]), train_labels + rep_labels, len(rep)
        ),
        "reweight": lambda: Arm("reweight", x_real, list(train_labels), class_weights=weights),
        "synthetic": lambda: Arm(
            "synthetic", torch.cat([x_real, x_syn]), train_labels + syn_labels, len(syn_labels)
        ),
        "copies": lambda: Arm("copies", torch.cat([x_real, x_copies]), train_labels + rep_labels, len(rep)),
        "synthetic_oversample": lambda: Arm(
            "synthetic_oversample",
            torch.cat([x_real, x_syn, x_rep]),
            train_labels + syn_labels + rep_labels,
            len(syn_labels) + len(rep),
        ),
    }
    return [build[name]() for name in config.arms]


def train_arm(
    arm: Arm,
    *,
    seed: int,
    save: bool,
    cls_config: ClassifierConfig,
    config: AugmentationConfig,
    device: torch.device,
    out: Path,
) -> torch.nn.Module:
    """Train ``arm``'s classifier with training seed ``seed``; record the run (and save the
    model under ``out/models/`` when ``save``)."""
    model, history = train_classifier(
        arm.x,
        arm.labels,
        cls_config,
        desc=f"train {arm.name} seed {seed}",
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        device=str(device),
        progress=config.progress,
        class_weights=arm.class_weights,
    )
    run: dict[str, Any] = {
        "seed": seed,
        "history": asdict(history),
        "checkpoint": None,
        "checkpoint_sha256": None,
    }
    if save:
        run["checkpoint"] = f"models/{arm.name}-seed{seed}.pt"
        (out / "models").mkdir(parents=True, exist_ok=True)
        run["checkpoint_sha256"] = save_classifier(
            out / run["checkpoint"],
            model=model,
            metadata={
                "experiment": "augmentation",
                "arm": arm.name,
                "seed": seed,
                "n_train": len(arm.labels),
                "history": run["history"],
            },
        )
    arm.runs.append(run)
    return model
