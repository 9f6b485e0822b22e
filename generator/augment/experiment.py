"""The experiment itself, in four steps: data, train an arm, evaluate, compare.

:func:`run_augmentation_experiment` runs them in order; each step is a plain function of
what the steps before it produced, so each can be read (and tested) on its own.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generator.augment.config import AugmentationConfig
from generator.augment.report import write_report
from generator.augment.sources import ImageLike, SyntheticSource
from generator.augment.stats import derived_seed, evaluate_arms, grouped_split, mcnemar_exact, outcomes_of
from generator.classifier import (
    ClassifierConfig,
    predict_proba,
    preprocess,
    resolve_device,
    save_classifier,
    train_classifier,
)

REPORT_VERSION = 1
Progress = Callable[[float, str], None]
Outcomes = tuple[np.ndarray, np.ndarray]  # per test image: top-1 correct, top-3 correct


@dataclass(frozen=True)
class ExperimentData:
    """Step 1's result: the patient-grouped split, the chosen conditions, the synthetic images."""

    ids: list[str]  # one per real image
    groups: list[str]  # patient per real image; an image without one is its own group
    classes: list[str]  # sorted condition codes of the real images
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_labels: list[str]
    counts: Counter  # real training images per condition
    chosen: list[str]  # conditions that get synthetic images
    rare: list[str]  # conditions highlighted as rare
    syn_images: list[Image.Image]
    syn_labels: list[str]
    syn_report: dict[str, Any]  # per chosen condition: counts and provenance


@dataclass
class Arm:
    """One of the two classifiers: its training labels, and once trained its history and file."""

    name: str
    labels: list[str]
    history: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    checkpoint_sha256: str = ""


@dataclass(frozen=True)
class Evaluation:
    """Step 3's result: both arms on the same real test images, and their paired comparison."""

    results: dict[str, Any]  # per arm: top-1, top-3 and per-condition sensitivity with CIs
    difference: dict[str, Any]  # augmented minus real only, with CIs
    mcnemar: dict[str, Any]  # exact test on the paired top-1 outcomes


def run_augmentation_experiment(
    *,
    images: Sequence[ImageLike],
    labels: Sequence[str],
    groups: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
    synthetic: SyntheticSource,
    config: AugmentationConfig,
    out_dir: str | Path,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the two-arm experiment on labelled real images and return the report dict.

    ``groups`` are patient ids (``None``/empty entries: the image is its own group);
    ``ids`` name the images in the report (default: their index). Writes
    ``report.json``, ``report.html``, ``plots/*.png``, ``model_real_only.pt`` and
    ``model_augmented.pt`` into ``out_dir``. ``on_progress(fraction, message)`` is
    called between stages (the platform stores it on the run's row).
    """
    config.validate()
    progress = on_progress or (lambda fraction, message: None)
    data = experiment_data(
        images=images,
        labels=labels,
        groups=groups,
        ids=ids,
        synthetic=synthetic,
        config=config,
        progress=progress,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)

    # step 2: both arms with identical seeds and settings, tested on the same real images
    cls_config = ClassifierConfig(tuple(data.classes), config.image_size, config.width, config.depth)
    x_real = preprocess([images[i] for i in data.train_idx], config.image_size)
    x_syn = preprocess(data.syn_images, config.image_size)
    x_test = preprocess([images[i] for i in data.test_idx], config.image_size)
    y_test = np.array([data.classes.index(labels[i]) for i in data.test_idx])
    arms = [Arm("real_only", data.train_labels), Arm("augmented", data.train_labels + data.syn_labels)]
    outcomes: dict[str, Outcomes] = {}
    for k, (arm, x) in enumerate(zip(arms, [x_real, torch.cat([x_real, x_syn])])):
        model = train_arm(arm, x, cls_config=cls_config, config=config, device=device, out=out)
        outcomes[arm.name] = outcomes_of(predict_proba(model, x_test), y_test)
        progress(0.15 + 0.35 * (k + 1), f"trained {arm.name}")

    evaluation = evaluate(outcomes, y_test, data=data, config=config)
    report = compare(
        data, arms, evaluation, y_test=y_test, config=config, cls_config=cls_config, device=device
    )
    progress(0.9, "writing report")
    report["files"] = write_report(report, out)
    progress(1.0, "done")
    return report


def experiment_data(
    *,
    images: Sequence[ImageLike],
    labels: Sequence[str],
    groups: Sequence[str | None] | None,
    ids: Sequence[str] | None,
    synthetic: SyntheticSource,
    config: AugmentationConfig,
    progress: Progress,
) -> ExperimentData:
    """Step 1 — data: check the inputs, split by patient, choose the conditions to augment
    (default: the rarest in training) and draw their synthetic images."""
    n = len(images)
    if n != len(labels):
        raise ValueError(f"{n} images but {len(labels)} labels")
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(ids) != n or len(set(ids)) != n:
        raise ValueError("ids must be unique, one per image")
    raw_groups = list(groups) if groups is not None else [None] * n
    if len(raw_groups) != n:
        raise ValueError(f"{n} images but {len(raw_groups)} groups")
    groups_ = [str(g) if g not in (None, "") else f"image:{ids[i]}" for i, g in enumerate(raw_groups)]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"the experiment needs at least 2 conditions, got {classes}")

    train_idx, test_idx = grouped_split(labels, groups_, test_fraction=config.test_fraction, seed=config.seed)
    # grouped_split's invariant; cheap to re-check
    assert not {groups_[i] for i in train_idx} & {groups_[i] for i in test_idx}
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise ValueError("too few patients per condition for a train/test split")
    train_labels = [labels[i] for i in train_idx]
    counts = Counter(train_labels)
    missing = [c for c in classes if counts[c] == 0]
    if missing:
        raise ValueError(f"conditions with no training images after the patient split: {missing}")

    if config.conditions:
        chosen = list(config.conditions)
        unknown = [c for c in chosen if c not in classes]
        if unknown:
            raise ValueError(f"chosen conditions not among the real images' conditions: {unknown}")
    else:
        chosen = [c for c, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))[: config.n_rarest]]
    progress(0.05, "split done")

    syn_images: list[Image.Image] = []
    syn_labels: list[str] = []
    syn_report: dict[str, Any] = {}
    for c in chosen:
        requested = int(round(config.ratio * counts[c]))
        imgs, prov = synthetic(c, requested, derived_seed(config.seed, f"synthetic:{c}"))
        if len(imgs) != len(prov):
            raise ValueError("synthetic source returned mismatched images and provenance")
        syn_images += imgs
        syn_labels += [c] * len(imgs)
        syn_report[c] = {
            "real_train": counts[c],
            "requested": requested,
            "added": len(imgs),
            "provenance": prov,
        }
    if not syn_images:
        raise ValueError(f"no synthetic images available for {chosen}")
    progress(0.15, f"{len(syn_images)} synthetic images ready")
    return ExperimentData(
        ids=ids,
        groups=groups_,
        classes=classes,
        train_idx=train_idx,
        test_idx=test_idx,
        train_labels=train_labels,
        counts=counts,
        chosen=chosen,
        rare=list(config.rare) if config.rare is not None else chosen,
        syn_images=syn_images,
        syn_labels=syn_labels,
        syn_report=syn_report,
    )


def train_arm(
    arm: Arm,
    x: torch.Tensor,
    *,
    cls_config: ClassifierConfig,
    config: AugmentationConfig,
    device: torch.device,
    out: Path,
) -> torch.nn.Module:
    """Step 2 — train one arm's classifier on ``x`` (N, 3, S, S) and save it beside the report."""
    model, history = train_classifier(
        x,
        arm.labels,
        cls_config,
        desc=f"train {arm.name}",
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        device=str(device),
        progress=config.progress,
    )
    arm.history = asdict(history)
    arm.checkpoint = f"model_{arm.name}.pt"
    arm.checkpoint_sha256 = save_classifier(
        out / arm.checkpoint,
        model=model,
        metadata={
            "experiment": "augmentation",
            "arm": arm.name,
            "seed": config.seed,
            "n_train": len(arm.labels),
            "history": arm.history,
        },
    )
    return model


def evaluate(
    outcomes: Mapping[str, Outcomes], y_test: np.ndarray, *, data: ExperimentData, config: AugmentationConfig
) -> Evaluation:
    """Step 3 — both arms on the same held-out real images, with patient-clustered CIs."""
    test_groups = [data.groups[i] for i in data.test_idx]
    results, difference = evaluate_arms(
        outcomes, y_test, test_groups, data.classes, n_bootstrap=config.n_bootstrap, seed=config.seed
    )
    mcnemar = mcnemar_exact(outcomes["real_only"][0], outcomes["augmented"][0])
    return Evaluation(results=results, difference=difference, mcnemar=mcnemar)


def compare(
    data: ExperimentData,
    arms: Sequence[Arm],
    evaluation: Evaluation,
    *,
    y_test: np.ndarray,
    config: AugmentationConfig,
    cls_config: ClassifierConfig,
    device: torch.device,
) -> dict[str, Any]:
    """Step 4 — compare: the report dict, with the rare, malignant and augmented conditions
    highlighted side by side (the data the report files are drawn from)."""
    results, difference, classes = evaluation.results, evaluation.difference, data.classes
    highlights = [
        {
            "condition": c,
            "rare": c in data.rare,
            "malignant": c in config.malignant,
            "augmented_with_synthetic": c in data.chosen,
            "n_test": results["real_only"]["sensitivity"][c]["n"],
            "real_only": results["real_only"]["sensitivity"][c],
            "augmented": results["augmented"]["sensitivity"][c],
            "difference": difference["sensitivity"][c],
        }
        for c in classes
        if c in data.rare or c in config.malignant or c in data.chosen
    ]
    return {
        "version": REPORT_VERSION,
        "experiment": "augmentation",
        "config": config.to_dict(),
        "classifier_config": cls_config.to_dict(),
        "classes": classes,
        "chosen_conditions": data.chosen,
        "rare_conditions": data.rare,
        "malignant_conditions": [c for c in classes if c in config.malignant],
        "split": {
            "method": "patient-grouped, stratified by condition",
            "train_ids": [data.ids[i] for i in data.train_idx],
            "test_ids": [data.ids[i] for i in data.test_idx],
            "train_groups": sorted({data.groups[i] for i in data.train_idx}),
            "test_groups": sorted({data.groups[i] for i in data.test_idx}),
            "counts": {
                c: {"train": data.counts[c], "test": int(np.sum(y_test == k))} for k, c in enumerate(classes)
            },
        },
        "synthetic": data.syn_report,
        "arms": {
            arm.name: {
                "n_train": len(arm.labels),
                "n_train_synthetic": len(arm.labels) - len(data.train_labels),
                "history": arm.history,
                "checkpoint": arm.checkpoint,
                "checkpoint_sha256": arm.checkpoint_sha256,
                "test": results[arm.name],
            }
            for arm in arms
        },
        "comparison": {"augmented_minus_real_only": difference, "mcnemar_top1": evaluation.mcnemar},
        "highlights": highlights,
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": str(device),
        },
    }
