"""The rare-condition augmentation experiment (DermGAN's third proof), as a library function.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) added synthetic images of rare
conditions to a classifier's training data and measured the change on real test
images. :func:`run_augmentation_experiment` does exactly that, reproducibly:

1. split the real images into train and test **by patient** (no patient's images
   on both sides, so the test measures generalisation to new patients, not
   recognition of a patient's other photos), stratified by condition;
2. train the compact classifier (``generator.classifier``) twice with the same
   seed and settings — on the real training images only, and on those plus
   synthetic images of the chosen conditions (default: the rarest) at ``ratio``
   synthetic images per real training image of that condition;
3. evaluate both on the same real test images: top-1 and top-3 accuracy and
   per-condition sensitivity with patient-clustered bootstrap confidence
   intervals, and an exact McNemar test on the paired top-1 outcomes;
4. write ``report.json``, ``report.html`` (with matplotlib plots) and both
   models' checkpoints into ``out_dir``.

Synthetic images come from a :class:`SyntheticSource`: :class:`PoolSource` for
images already in hand (a library generation batch) or :class:`RendererSource`
to render them on the fly from a DermGAN checkpoint.
"""

from __future__ import annotations

import html
import io
import json
import os
import platform
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from scipy.stats import binomtest

from generator.classifier import (
    ClassifierConfig,
    predict_proba,
    preprocess,
    resolve_device,
    save_classifier,
    train_classifier,
)

REPORT_VERSION = 1
DEFAULT_MALIGNANT = ("MEL", "BCC", "SCC")
ImageLike = Image.Image | str | Path


@dataclass(frozen=True)
class AugmentationConfig:
    conditions: tuple[str, ...] | None = None  # conditions that get synthetic images; None = the rarest
    n_rarest: int = 1  # how many rarest conditions (by training count) when ``conditions`` is None
    ratio: float = 1.0  # synthetic images per real training image of each chosen condition
    test_fraction: float = 0.25  # share of each condition's patients held out for testing
    image_size: int = 64  # classifier input size
    width: int = 16  # classifier first-stage channels
    depth: int = 4  # classifier stages
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0  # one seed for the split, both trainings, synthetic draws and the bootstrap
    n_bootstrap: int = 1000
    device: str = "auto"  # "auto" = CUDA when available
    malignant: tuple[str, ...] = DEFAULT_MALIGNANT  # highlighted in the report
    rare: tuple[str, ...] | None = None  # highlighted as rare; None = the chosen conditions
    progress: bool = True  # tqdm bars while training

    def validate(self) -> None:
        if not self.ratio > 0:
            raise ValueError(f"ratio must be > 0, got {self.ratio}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.n_rarest < 1:
            raise ValueError(f"n_rarest must be ≥ 1, got {self.n_rarest}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be ≥ 1 and batch_size ≥ 2")
        if self.n_bootstrap < 1:
            raise ValueError(f"n_bootstrap must be ≥ 1, got {self.n_bootstrap}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("conditions", "malignant", "rare"):
            d[key] = None if d[key] is None else list(d[key])
        return d


# ---------------------------------------------------------------- synthetic data


class SyntheticSource(Protocol):
    """Supplies ``n`` synthetic images of ``condition``, deterministically from ``seed``."""

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        """(images, one provenance dict per image). May return fewer than ``n`` if it runs out."""
        ...


class PoolSource:
    """Draws from images already in hand, e.g. a library generation batch, per condition.

    ``pool`` maps a condition code to a list of ``(image, provenance)`` pairs; the
    draw is a seeded permutation, so the same seed picks the same images.
    """

    def __init__(self, pool: Mapping[str, Sequence[tuple[ImageLike, dict[str, Any]]]]) -> None:
        self.pool = {c: list(items) for c, items in pool.items()}

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        items = self.pool.get(condition, [])
        order = np.random.default_rng(seed).permutation(len(items))[:n]
        images = [_open(items[i][0]) for i in order]
        return images, [dict(items[i][1]) for i in order]


class RendererSource:
    """Renders synthetic images on the fly from a DermGAN checkpoint (``generator.render.Renderer``).

    Image i of a condition uses spec ``spec_for_index(dist, index=i)`` and render seed
    ``image_seed(seed, i)`` — the same rule as a generation batch — so each image's
    provenance is enough to re-render it.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        area_fraction_range: tuple[float, float] = (0.01, 0.08),
        batch_size: int = 16,
    ) -> None:
        from generator.render import Renderer

        self.renderer = Renderer(checkpoint, device=device, batch_size=batch_size)
        self.area_fraction_range = area_fraction_range

    def __call__(self, condition: str, n: int, seed: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        from generator.sampling import SpecDistribution, image_seed, spec_for_index

        if condition not in self.renderer.config.conditions:
            raise ValueError(f"the checkpoint cannot render condition {condition!r}")
        dist = SpecDistribution({condition: 1.0}, area_fraction_range=self.area_fraction_range).validate()
        size = self.renderer.config.image_size
        specs = [spec_for_index(dist, size=size, batch_seed=seed, index=i) for i in range(n)]
        images = self.renderer.render(specs, seed) if n else []
        prov = [
            {
                "checkpoint_sha256": self.renderer.checkpoint_sha256,
                "batch_seed": seed,
                "index": i,
                "seed": image_seed(seed, i),
                "spec": spec.to_dict(),
            }
            for i, spec in enumerate(specs)
        ]
        return images, prov


def _open(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as im:
        return im.convert("RGB")


def _derived_seed(seed: int, tag: str) -> int:
    """A per-purpose seed, stable across runs and Python processes (no ``hash()``)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(tag.encode())]).generate_state(1)[0])


# ------------------------------------------------------------------- statistics


def grouped_split(
    labels: Sequence[str], groups: Sequence[str], *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indexes with no group (patient) on both sides, stratified by condition.

    Each group is assigned the most common label among its images; for each label,
    ``round(test_fraction · n_groups)`` of its groups (at least one when it has two
    or more, so every condition with enough patients is tested) go to the test side.
    """
    labels = list(labels)
    groups = [str(g) for g in groups]
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups")
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    group_label = {
        g: Counter(labels[i] for i in idx).most_common(1)[0][0] for g, idx in sorted(by_group.items())
    }
    rng = np.random.default_rng(_derived_seed(seed, "split"))
    test_groups: set[str] = set()
    for label in sorted(set(group_label.values())):
        gs = sorted(g for g, lbl in group_label.items() if lbl == label)
        gs = [gs[i] for i in rng.permutation(len(gs))]
        n_test = int(round(test_fraction * len(gs)))
        if len(gs) >= 2:
            n_test = min(max(n_test, 1), len(gs) - 1)
        else:
            n_test = 0
        test_groups.update(gs[:n_test])
    test = np.array([i for i, g in enumerate(groups) if g in test_groups], dtype=int)
    train = np.array([i for i, g in enumerate(groups) if g not in test_groups], dtype=int)
    return train, test


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, Any]:
    """Exact (binomial) McNemar test on paired correctness of two classifiers.

    b = cases A got right and B wrong, c = the reverse; under H0 (equal accuracy)
    b ~ Binomial(b + c, 1/2), and the two-sided p-value is ``binomtest(b, b+c)``.
    Concordant pairs carry no information. With b + c = 0 the p-value is 1.

    Reference: McNemar 1947, doi:10.1007/BF02295996; Fagerland, Lydersen & Laake
    2013, doi:10.1186/1471-2288-13-91 (the exact conditional version).

    >>> round(mcnemar_exact([True] * 10 + [False] * 2, [False] * 10 + [True] * 2)["p_value"], 5)
    0.03857
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError("paired outcomes must have the same length")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"n": int(a.size), "a_only_correct": b, "b_only_correct": c, "p_value": p}


def _ci(samples: np.ndarray, point: float | None) -> dict[str, float | None]:
    samples = samples[np.isfinite(samples)]
    if point is None or samples.size == 0:
        return {"value": point, "ci_low": None, "ci_high": None}
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return {"value": point, "ci_low": float(lo), "ci_high": float(hi)}


def _outcomes(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ranked = np.argsort(-probs, axis=1, kind="stable")
    return ranked[:, 0] == y, np.any(ranked[:, :3] == y[:, None], axis=1)


def _rate(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def evaluate_arms(
    outcomes: Mapping[str, tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    groups: Sequence[str],
    classes: Sequence[str],
    *,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Point estimates and patient-clustered bootstrap 95% CIs for each arm and their difference.

    Resampling patients (not images) keeps a patient's correlated images together,
    so the intervals are not too narrow when patients contribute several images.
    """
    arms = list(outcomes)
    group_arr = np.asarray([str(g) for g in groups])
    uniq = np.unique(group_arr)
    members = [np.flatnonzero(group_arr == g) for g in uniq]
    rng = np.random.default_rng(_derived_seed(seed, "bootstrap"))
    boot: dict[str, dict[str, list[float]]] = {a: {} for a in [*arms, "difference"]}
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([members[i] for i in pick])
        yb = y[idx]
        vals: dict[str, dict[str, float]] = {}
        for a in arms:
            top1, top3 = outcomes[a][0][idx], outcomes[a][1][idx]
            vals[a] = {"top1": _rate(top1), "top3": _rate(top3)}
            for k, c in enumerate(classes):
                vals[a][f"sens:{c}"] = _rate(top1[yb == k])
        for a in arms:
            for key, v in vals[a].items():
                boot[a].setdefault(key, []).append(v)
        if len(arms) == 2:
            for key in vals[arms[0]]:
                boot["difference"].setdefault(key, []).append(vals[arms[1]][key] - vals[arms[0]][key])

    def summary(arm: str, point: dict[str, float | None]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": int(len(y))}
        for key in ("top1", "top3"):
            out[key] = _ci(np.asarray(boot[arm][key]), point[key])
        out["sensitivity"] = {
            c: {"n": int(np.sum(y == k)), **_ci(np.asarray(boot[arm][f"sens:{c}"]), point[f"sens:{c}"])}
            for k, c in enumerate(classes)
        }
        return out

    points: dict[str, dict[str, float | None]] = {}
    for a in arms:
        top1, top3 = outcomes[a]
        p: dict[str, float | None] = {"top1": _rate(top1), "top3": _rate(top3)}
        for k, c in enumerate(classes):
            m = y == k
            p[f"sens:{c}"] = float(top1[m].mean()) if m.any() else None
        points[a] = p
    results = {a: summary(a, points[a]) for a in arms}
    diff: dict[str, Any] = {}
    if len(arms) == 2:
        dp = {
            k: (
                None
                if points[arms[1]][k] is None or points[arms[0]][k] is None
                else points[arms[1]][k] - points[arms[0]][k]
            )
            for k in points[arms[0]]
        }
        diff = summary("difference", dp)
    return results, diff


# ------------------------------------------------------------------- experiment


@dataclass
class _Arm:
    name: str
    labels: list[str]
    history: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    checkpoint_sha256: str = ""


def run_augmentation_experiment(
    *,
    images: Sequence[ImageLike],
    labels: Sequence[str],
    groups: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
    synthetic: SyntheticSource,
    config: AugmentationConfig,
    out_dir: str | Path,
    on_progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Run the two-arm experiment on labelled real images and return the report dict.

    ``groups`` are patient ids (``None``/empty entries: the image is its own group);
    ``ids`` name the images in the report (default: their index). Writes
    ``report.json``, ``report.html``, ``plots/*.png``, ``model_real_only.pt`` and
    ``model_augmented.pt`` into ``out_dir``. ``on_progress(fraction, message)`` is
    called between stages (the platform stores it on the run's row).
    """
    config.validate()
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = on_progress or (lambda fraction, message: None)
    device = resolve_device(config.device)

    # 1. patient-grouped split
    train_idx, test_idx = grouped_split(labels, groups_, test_fraction=config.test_fraction, seed=config.seed)
    train_groups = {groups_[i] for i in train_idx}
    test_groups = {groups_[i] for i in test_idx}
    assert not train_groups & test_groups  # grouped_split's invariant; cheap to re-check
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise ValueError("too few patients per condition for a train/test split")
    train_labels = [labels[i] for i in train_idx]
    counts = Counter(train_labels)
    missing = [c for c in classes if counts[c] == 0]
    if missing:
        raise ValueError(f"conditions with no training images after the patient split: {missing}")

    # 2. which conditions get synthetic images
    if config.conditions:
        chosen = list(config.conditions)
        unknown = [c for c in chosen if c not in classes]
        if unknown:
            raise ValueError(f"chosen conditions not among the real images' conditions: {unknown}")
    else:
        chosen = [c for c, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))[: config.n_rarest]]
    rare = list(config.rare) if config.rare is not None else chosen
    progress(0.05, "split done")

    syn_images: list[Image.Image] = []
    syn_labels: list[str] = []
    syn_report: dict[str, Any] = {}
    for c in chosen:
        requested = int(round(config.ratio * counts[c]))
        imgs, prov = synthetic(c, requested, _derived_seed(config.seed, f"synthetic:{c}"))
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

    # 3. train both arms with identical seeds and settings
    cls_config = ClassifierConfig(tuple(classes), config.image_size, config.width, config.depth)
    x_real = preprocess([images[i] for i in train_idx], config.image_size)
    x_syn = preprocess(syn_images, config.image_size)
    x_test = preprocess([images[i] for i in test_idx], config.image_size)
    y_test = np.array([classes.index(labels[i]) for i in test_idx])
    train_kwargs = dict(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        device=str(device),
        progress=config.progress,
    )
    arms = [_Arm("real_only", train_labels), _Arm("augmented", train_labels + syn_labels)]
    outcomes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, (arm, x) in enumerate(zip(arms, [x_real, torch.cat([x_real, x_syn])])):
        model, history = train_classifier(x, arm.labels, cls_config, desc=f"train {arm.name}", **train_kwargs)
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
        outcomes[arm.name] = _outcomes(predict_proba(model, x_test), y_test)
        progress(0.15 + 0.35 * (k + 1), f"trained {arm.name}")

    # 4. evaluate on the same held-out real images
    test_group_list = [groups_[i] for i in test_idx]
    results, difference = evaluate_arms(
        outcomes, y_test, test_group_list, classes, n_bootstrap=config.n_bootstrap, seed=config.seed
    )
    mcnemar = mcnemar_exact(outcomes["real_only"][0], outcomes["augmented"][0])
    highlights = [
        {
            "condition": c,
            "rare": c in rare,
            "malignant": c in config.malignant,
            "augmented_with_synthetic": c in chosen,
            "n_test": results["real_only"]["sensitivity"][c]["n"],
            "real_only": results["real_only"]["sensitivity"][c],
            "augmented": results["augmented"]["sensitivity"][c],
            "difference": difference["sensitivity"][c],
        }
        for c in classes
        if c in rare or c in config.malignant or c in chosen
    ]
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "experiment": "augmentation",
        "config": config.to_dict(),
        "classifier_config": cls_config.to_dict(),
        "classes": classes,
        "chosen_conditions": chosen,
        "rare_conditions": rare,
        "malignant_conditions": [c for c in classes if c in config.malignant],
        "split": {
            "method": "patient-grouped, stratified by condition",
            "train_ids": [ids[i] for i in train_idx],
            "test_ids": [ids[i] for i in test_idx],
            "train_groups": sorted(train_groups),
            "test_groups": sorted(test_groups),
            "counts": {
                c: {"train": counts[c], "test": int(np.sum(y_test == k))} for k, c in enumerate(classes)
            },
        },
        "synthetic": syn_report,
        "arms": {
            arm.name: {
                "n_train": len(arm.labels),
                "n_train_synthetic": len(arm.labels) - len(train_labels),
                "history": arm.history,
                "checkpoint": arm.checkpoint,
                "checkpoint_sha256": arm.checkpoint_sha256,
                "test": results[arm.name],
            }
            for arm in arms
        },
        "comparison": {"augmented_minus_real_only": difference, "mcnemar_top1": mcnemar},
        "highlights": highlights,
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": str(device),
        },
    }
    progress(0.9, "writing report")
    report["files"] = write_report(report, out)
    progress(1.0, "done")
    return report


# ----------------------------------------------------------------------- report


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _plots(report: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    (out / "plots").mkdir(exist_ok=True)
    classes = report["classes"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) + 2), 4))
    width = 0.38
    for k, (arm, colour) in enumerate([("real_only", "#7f8c8d"), ("augmented", "#2e86c1")]):
        sens = report["arms"][arm]["test"]["sensitivity"]
        vals = [sens[c]["value"] if sens[c]["value"] is not None else 0 for c in classes]
        lo = [v - (sens[c]["ci_low"] if sens[c]["ci_low"] is not None else v) for c, v in zip(classes, vals)]
        hi = [
            (sens[c]["ci_high"] if sens[c]["ci_high"] is not None else v) - v for c, v in zip(classes, vals)
        ]
        xs = np.arange(len(classes)) + (k - 0.5) * width
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=3, label=arm.replace("_", " "), color=colour)
    labels = []
    for c in classes:
        mark = ("*" if c in report["rare_conditions"] else "") + (
            "†" if c in report["malignant_conditions"] else ""
        )
        labels.append(c + mark)
    ax.set_xticks(np.arange(len(classes)), labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("sensitivity (top-1 recall)")
    ax.set_title("Per-condition sensitivity on held-out real images (95% CI)\n* rare   † malignant")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _atomic_write_bytes(out / "plots" / "sensitivity.png", buf.getvalue())
    files.append("plots/sensitivity.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for arm in ("real_only", "augmented"):
        ax.plot(
            range(1, len(report["arms"][arm]["history"]["loss"]) + 1),
            report["arms"][arm]["history"]["loss"],
            marker="o",
            label=arm.replace("_", " "),
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _atomic_write_bytes(out / "plots" / "training_loss.png", buf.getvalue())
    files.append("plots/training_loss.png")
    return files


def _fmt(d: Mapping[str, Any] | None, pct: bool = True) -> str:
    if not d or d.get("value") is None:
        return "–"
    scale, unit = (100.0, "%") if pct else (1.0, "")
    text = f"{d['value'] * scale:.1f}{unit}"
    if d.get("ci_low") is not None:
        text += f" [{d['ci_low'] * scale:.1f}, {d['ci_high'] * scale:.1f}]"
    return text


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (plots referenced relatively, no scripts)."""
    e = html.escape
    real, aug = report["arms"]["real_only"]["test"], report["arms"]["augmented"]["test"]
    diff = report["comparison"]["augmented_minus_real_only"]
    mc = report["comparison"]["mcnemar_top1"]
    rows = []
    for c in report["classes"]:
        tags = []
        if c in report["rare_conditions"]:
            tags.append("rare")
        if c in report["malignant_conditions"]:
            tags.append("malignant")
        if c in report["chosen_conditions"]:
            tags.append("+synthetic")
        cls = ' class="highlight"' if tags else ""
        rows.append(
            f"<tr{cls}><td>{e(c)}</td><td>{e(', '.join(tags))}</td>"
            f"<td>{report['split']['counts'][c]['train']}</td><td>{real['sensitivity'][c]['n']}</td>"
            f"<td>{e(_fmt(real['sensitivity'][c]))}</td><td>{e(_fmt(aug['sensitivity'][c]))}</td>"
            f"<td>{e(_fmt(diff['sensitivity'][c]))}</td></tr>"
        )
    syn = "".join(
        f"<li>{e(c)}: {v['added']} synthetic added to {v['real_train']} real training images</li>"
        for c, v in report["synthetic"].items()
    )
    cfg = e(json.dumps(report["config"], indent=1))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DermGAN augmentation experiment</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child{{text-align:left}}
tr.highlight{{background:#fff6d5}}pre{{background:#f4f4f4;padding:1em}}</style></head><body>
<h1>Augmentation experiment</h1>
<p>Two classifiers with the same seed and settings; the second also saw synthetic images of
{e(", ".join(report["chosen_conditions"]))}. Both evaluated on the same held-out real images
({real["n"]} images, patients disjoint from training). Values are point estimates with
patient-clustered bootstrap 95% confidence intervals ({report["config"]["n_bootstrap"]} resamples).</p>
<ul>{syn}</ul>
<h2>Overall</h2>
<table><tr><th>metric</th><th>real only</th><th>real + synthetic</th><th>difference</th></tr>
<tr><td>top-1 accuracy</td><td>{e(_fmt(real["top1"]))}</td><td>{e(_fmt(aug["top1"]))}</td><td>{e(_fmt(diff["top1"]))}</td></tr>
<tr><td>top-3 accuracy</td><td>{e(_fmt(real["top3"]))}</td><td>{e(_fmt(aug["top3"]))}</td><td>{e(_fmt(diff["top3"]))}</td></tr>
</table>
<p>Exact McNemar test on paired top-1 outcomes: {mc["a_only_correct"]} images right only without synthetic data,
{mc["b_only_correct"]} right only with it; p = {mc["p_value"]:.4g}.</p>
<h2>Per-condition sensitivity</h2>
<table><tr><th>condition</th><th>notes</th><th>n train (real)</th><th>n test</th><th>real only</th>
<th>real + synthetic</th><th>difference</th></tr>{"".join(rows)}</table>
<p><img src="plots/sensitivity.png" alt="per-condition sensitivity with confidence intervals"></p>
<p><img src="plots/training_loss.png" alt="training loss per epoch"></p>
<h2>Reproduce</h2><pre>{cfg}</pre>
<p>Checkpoints: {e(report["arms"]["real_only"]["checkpoint"])} (sha256 {e(report["arms"]["real_only"]["checkpoint_sha256"])}),
{e(report["arms"]["augmented"]["checkpoint"])} (sha256 {e(report["arms"]["augmented"]["checkpoint_sha256"])}).</p>
</body></html>
"""


def write_report(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Write plots, report.html and report.json (last, atomically: its presence means complete)."""
    files = {"plots": _plots(report, out)}
    _atomic_write_bytes(out / "report.html", render_html(report).encode())
    listing = {
        "json": "report.json",
        "html": "report.html",
        "plots": ", ".join(files["plots"]),
        "real_only_checkpoint": report["arms"]["real_only"]["checkpoint"],
        "augmented_checkpoint": report["arms"]["augmented"]["checkpoint"],
    }
    report_with_files = {**report, "files": listing}
    _atomic_write_bytes(out / "report.json", json.dumps(report_with_files, indent=2).encode())
    return listing
