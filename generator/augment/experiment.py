"""The experiment itself, in steps: data, the arms, train each arm with each seed, evaluate, compare.

:func:`run_augmentation_experiment` runs them in order; each step is a plain function of
what the steps before it produced, so each can be read (and tested) on its own.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generator.augment.arms import SYNTHETIC_ARMS, Arm, build_arms, train_arm
from generator.augment.bootstrap import METHOD, ArmPredictions, predictions_of, seed_patient_bootstrap
from generator.augment.config import AugmentationConfig
from generator.augment.report import write_report
from generator.augment.sources import ImageLike, SyntheticSource
from generator.augment.stats import derived_seed, grouped_split
from generator.classifier import ClassifierConfig, predict_proba, preprocess, resolve_device

REPORT_VERSION = 2
PRIMARY_METRIC = "balanced_accuracy"
NULL_CHECK = ("oversample", "copies")  # (comparator, arm): copies must not beat oversampling
Progress = Callable[[float, str], None]


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


@dataclass(frozen=True)
class Evaluation:
    """Step 4's result: every arm on the same real test images, and the paired comparisons."""

    results: dict[str, Any]  # per arm: summary metrics and per-condition metrics with CIs
    comparisons: dict[str, Any]  # "<b>_vs_<a>": b − a with CIs, p-values, significance
    headline: dict[str, Any]  # synthetic vs the best non-synthetic arm
    null_check: dict[str, Any]  # copies vs oversampling


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
    """Run every arm with every training seed on labelled real images; return the report dict.

    ``groups`` are patient ids (``None``/empty entries: the image is its own group);
    ``ids`` name the images in the report (default: their index). Writes
    ``report.json``, ``report.html``, ``plots/*.png`` and ``models/<arm>-seed<seed>.pt``
    (see ``config.save_models``) into ``out_dir``. ``on_progress(fraction, message)`` is
    called after each training (the platform stores it on the run's row).
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

    # step 2: the arms' training sets; step 3: every arm with the same training seeds
    cls_config = ClassifierConfig(tuple(data.classes), config.image_size, config.width, config.depth)
    arms = build_arms(
        x_real=preprocess([images[i] for i in data.train_idx], config.image_size),
        train_labels=data.train_labels,
        x_syn=preprocess(data.syn_images, config.image_size),
        syn_labels=data.syn_labels,
        classes=data.classes,
        config=config,
    )
    x_test = preprocess([images[i] for i in data.test_idx], config.image_size)
    y_test = np.array([data.classes.index(labels[i]) for i in data.test_idx])
    seeds = training_seeds(config)
    predictions: dict[str, ArmPredictions] = {}
    total, done = len(arms) * len(seeds), 0
    for arm in arms:
        probs = []
        for k, seed in enumerate(seeds):
            save = config.save_models == "all" or (config.save_models == "first" and k == 0)
            model = train_arm(
                arm, seed=seed, save=save, cls_config=cls_config, config=config, device=device, out=out
            )
            probs.append(predict_proba(model, x_test))
            done += 1
            progress(0.15 + 0.75 * done / total, f"trained {arm.name} seed {seed} ({done}/{total})")
        predictions[arm.name] = predictions_of(probs, y_test)

    evaluation = evaluate(predictions, y_test, data=data, config=config)
    report = compare(
        data, arms, evaluation, y_test=y_test, config=config, cls_config=cls_config, device=device
    )
    progress(0.95, "writing report")
    report["files"] = write_report(report, out)
    progress(1.0, "done")
    return report


def training_seeds(config: AugmentationConfig) -> list[int]:
    """seed, seed + 1, …: seed index k trains every arm with the same seed (paired by seed)."""
    return [config.seed + k for k in range(config.n_seeds)]


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


def comparison_pairs(arm_names: Sequence[str]) -> list[tuple[str, str]]:
    """``(a, b)`` pairs whose difference b − a the report shows: each synthetic arm vs each
    non-synthetic arm (the headline picks the best of those), the null check, and every arm
    vs the baseline (context, not the claim)."""
    non_synthetic = [a for a in arm_names if a not in SYNTHETIC_ARMS]
    pairs = [(a, s) for s in SYNTHETIC_ARMS if s in arm_names for a in non_synthetic]
    pairs.append(NULL_CHECK)
    pairs += [("baseline", a) for a in arm_names if a != "baseline"]
    return list(dict.fromkeys(pairs))


def evaluate(
    predictions: Mapping[str, ArmPredictions],
    y_test: np.ndarray,
    *,
    data: ExperimentData,
    config: AugmentationConfig,
) -> Evaluation:
    """Step 4 — every arm on the same held-out real images, CIs from the seed-and-patient
    bootstrap (:mod:`generator.augment.bootstrap`); the headline compares the synthetic arm with
    the best non-synthetic arm (highest balanced accuracy), the null check copies with oversampling."""
    results, comparisons = seed_patient_bootstrap(
        predictions,
        y_test,
        [data.groups[i] for i in data.test_idx],
        data.classes,
        comparisons=comparison_pairs(list(predictions)),
        n_bootstrap=config.n_bootstrap,
        seed=config.seed,
        min_count=config.min_count,
    )
    non_synthetic = [a for a in predictions if a not in SYNTHETIC_ARMS]
    # ties go to the simpler arm (declaration order: baseline first)
    best = max(
        non_synthetic, key=lambda a: (results[a][PRIMARY_METRIC]["value"] or 0.0, -non_synthetic.index(a))
    )

    def verdict(key: str) -> dict[str, Any]:
        diff = comparisons[key]
        per_condition = {c: diff["sensitivity"][c] for c in data.chosen}
        return {
            "comparison": key,
            "metric": PRIMARY_METRIC,
            "difference": diff[PRIMARY_METRIC],
            "significant": diff[PRIMARY_METRIC]["significant"],
            "sensitivity_of_chosen": per_condition,
        }

    head = verdict(f"synthetic_vs_{best}")
    d = head["difference"]
    headline = {
        "arm": "synthetic",
        "comparator": best,
        "comparator_chosen_by": f"highest {PRIMARY_METRIC} (point estimate) among {', '.join(non_synthetic)}",
        **head,
        "claim": (
            f"synthetic − {best}: {PRIMARY_METRIC} {d['value']:+.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}], "
            + ("significant" if head["significant"] else "not significant")
        ),
    }
    null = verdict(f"{NULL_CHECK[1]}_vs_{NULL_CHECK[0]}")
    gain = null["difference"]["ci_low"] is not None and null["difference"]["ci_low"] > 0
    null_check = {
        "arm": NULL_CHECK[1],
        "comparator": NULL_CHECK[0],
        **null,
        "significant_gain": gain,
        "passed": not gain,
        "meaning": (
            "copies (repeated real images, flipped/rotated once) carry no new information; "
            + (
                "they show a significant gain over oversampling, so this setup credits noise: "
                "do not trust the headline"
                if gain
                else "they show no significant gain over oversampling, as they should"
            )
        ),
    }
    return Evaluation(results=results, comparisons=comparisons, headline=headline, null_check=null_check)


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
    """Step 5 — compare: the report dict, with the rare, malignant and augmented conditions
    highlighted arm by arm (the data the report files are drawn from)."""
    results, classes = evaluation.results, data.classes
    head_key = evaluation.headline["comparison"]
    highlights = [
        {
            "condition": c,
            "rare": c in data.rare,
            "malignant": c in config.malignant,
            "augmented_with_synthetic": c in data.chosen,
            "n_test": int(np.sum(y_test == k)),
            "sensitivity": {arm.name: results[arm.name]["sensitivity"][c] for arm in arms},
            "headline_difference": evaluation.comparisons[head_key]["sensitivity"][c],
        }
        for k, c in enumerate(classes)
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
            "method": "patient-grouped, stratified by condition; the same split for every arm and seed",
            "train_ids": [data.ids[i] for i in data.train_idx],
            "test_ids": [data.ids[i] for i in data.test_idx],
            "train_groups": sorted({data.groups[i] for i in data.train_idx}),
            "test_groups": sorted({data.groups[i] for i in data.test_idx}),
            "counts": {
                c: {"train": data.counts[c], "test": int(np.sum(y_test == k))} for k, c in enumerate(classes)
            },
        },
        "synthetic": data.syn_report,
        "statistics": {
            "method": METHOD,
            "primary_metric": PRIMARY_METRIC,
            "confidence": 0.95,
            "n_bootstrap": config.n_bootstrap,
            "n_seeds": config.n_seeds,
            "training_seeds": training_seeds(config),
            "n_test_patients": len({data.groups[i] for i in data.test_idx}),
            "min_count": config.min_count,
        },
        "arms": {
            arm.name: {
                "description": arm.description,
                "n_train": len(arm.labels),
                "n_added": arm.n_added,
                "class_weights": arm.class_weights,
                "seeds": arm.runs,
                "test": results[arm.name],
            }
            for arm in arms
        },
        "comparisons": evaluation.comparisons,
        "headline": evaluation.headline,
        "null_check": evaluation.null_check,
        "highlights": highlights,
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": str(device),
        },
    }
