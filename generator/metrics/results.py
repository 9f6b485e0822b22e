"""Metric results: per-set metrics, the extractor-stamped FidelityResult, and their tables."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generator.metrics._arrays import as_2d
from generator.metrics.baseline import HELD_OUT, SPLIT_BY_IMAGE, SPLIT_BY_PATIENT, split_halves
from generator.metrics.diversity import mean_pairwise_distance, mean_pairwise_ms_ssim
from generator.metrics.features import FeatureExtractor, images_to_tensor
from generator.metrics.fid import feature_statistics, frechet_distance
from generator.metrics.kid import kernel_distance_estimate
from generator.metrics.manifold import precision_recall


class IncomparableResultsError(ValueError):
    """Raised when asked to compare numbers computed in different feature spaces."""


@dataclass(frozen=True)
class SetMetrics:
    """Metrics for one (real, fake) pair of feature sets; None where too few samples."""

    n_real: int
    n_fake: int
    fid: float | None = None
    kid_mean: float | None = None
    kid_std: float | None = None
    kid_std_method: str | None = None  # "subsets" or "bootstrap": see generator.metrics.kid.KernelDistance
    precision: float | None = None
    recall: float | None = None
    diversity_fake: float | None = None  # mean pairwise feature distance among fakes
    diversity_real: float | None = None
    diversity_ratio: float | None = None  # fake / real; ≪ 1 = the generator repeats itself
    ms_ssim_fake: float | None = None  # mean pairwise MS-SSIM among fakes (higher = less diverse)
    ms_ssim_real: float | None = None
    notes: tuple[str, ...] = ()
    warning: str | None = None  # set when a set is smaller than the run's min_count


@dataclass(frozen=True)
class Baseline:
    """The same metrics between two real sets (see :mod:`generator.metrics.baseline`)."""

    method: str  # SPLIT_BY_PATIENT, SPLIT_BY_IMAGE or HELD_OUT
    overall: SetMetrics  # n_real / n_fake: the two real sets' sizes
    per_condition: dict[str, SetMetrics] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class FidelityResult:
    """Overall and per-condition metrics plus the identity of the feature space used."""

    extractor_name: str
    extractor_sha256: str
    feature_dim: int
    overall: SetMetrics
    per_condition: dict[str, SetMetrics] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    baseline: Baseline | None = None  # real vs real; None only in results stored before it existed

    def check_comparable(self, other: FidelityResult) -> None:
        if (self.extractor_name, self.extractor_sha256) != (other.extractor_name, other.extractor_sha256):
            raise IncomparableResultsError(
                "results come from different feature extractors "
                f"({self.extractor_name} {self.extractor_sha256[:12]} vs "
                f"{other.extractor_name} {other.extractor_sha256[:12]}); their numbers are not comparable"
            )

    def difference(self, other: FidelityResult) -> dict[str, float | None]:
        """``self - other`` for the overall metrics; refuses different extractors."""
        self.check_comparable(other)
        out: dict[str, float | None] = {}
        for key in ("fid", "kid_mean", "precision", "recall", "diversity_ratio"):
            a, b = getattr(self.overall, key), getattr(other.overall, key)
            out[key] = None if a is None or b is None else a - b
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        blocks = [d] + ([d["baseline"]] if d["baseline"] else [])
        for block in blocks:
            for m in [block["overall"], *block["per_condition"].values()]:
                m["notes"] = list(m["notes"])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FidelityResult:
        def sm(d: dict[str, Any]) -> SetMetrics:
            return SetMetrics(**{**d, "notes": tuple(d.get("notes", ()))})

        b = data.get("baseline")
        baseline = None
        if b:
            per = {k: sm(v) for k, v in b.get("per_condition", {}).items()}
            baseline = Baseline(b["method"], sm(b["overall"]), per, b.get("seed", 0))
        return cls(
            extractor_name=data["extractor_name"],
            extractor_sha256=data["extractor_sha256"],
            feature_dim=data["feature_dim"],
            overall=sm(data["overall"]),
            per_condition={k: sm(v) for k, v in data.get("per_condition", {}).items()},
            settings=dict(data.get("settings", {})),
            baseline=baseline,
        )


def set_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    real_pixels: torch.Tensor | None = None,
    fake_pixels: torch.Tensor | None = None,
    min_count: int = 0,
) -> SetMetrics:
    """Every metric that the sample sizes allow, with a note for each one skipped, and a
    ``warning`` when either set has fewer than ``min_count`` images."""
    notes: list[str] = []
    values: dict[str, Any] = {}
    n_real, n_fake = real.shape[0], fake.shape[0]
    if n_real >= 2 and n_fake >= 2:
        mu1, s1 = feature_statistics(real)
        mu2, s2 = feature_statistics(fake)
        values["fid"] = frechet_distance(mu1, s1, mu2, s2)
        if min(n_real, n_fake) <= real.shape[1]:
            notes.append(
                f"FID from {min(n_real, n_fake)} samples in {real.shape[1]} dimensions: covariances are "
                "singular and FID is strongly biased upwards at small n; compare only at equal n"
            )
        kid = kernel_distance_estimate(
            real, fake, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        values.update(kid_mean=kid.mean, kid_std=kid.std, kid_std_method=kid.std_method)
        notes.append(f"KID std: {kid.describe()}")
        values["diversity_fake"] = mean_pairwise_distance(fake)
        values["diversity_real"] = mean_pairwise_distance(real)
        if values["diversity_real"] > 0:
            values["diversity_ratio"] = values["diversity_fake"] / values["diversity_real"]
    else:
        notes.append("FID, KID and diversity need at least 2 real and 2 synthetic images")
    if n_real > k and n_fake > k:
        values["precision"], values["recall"] = precision_recall(real, fake, k=k)
    else:
        notes.append(f"precision/recall need more than k={k} images per set")
    if fake_pixels is not None and fake_pixels.shape[0] >= 2:
        values["ms_ssim_fake"] = mean_pairwise_ms_ssim(fake_pixels, seed=seed)
    if real_pixels is not None and real_pixels.shape[0] >= 2:
        values["ms_ssim_real"] = mean_pairwise_ms_ssim(real_pixels, seed=seed)
    if min(n_real, n_fake) < min_count:
        values["warning"] = (
            f"only {n_real} real and {n_fake} synthetic images (< {min_count}): "
            "these numbers are rough; compare them with the real-vs-real baseline"
        )
    return SetMetrics(n_real=n_real, n_fake=n_fake, notes=tuple(notes), **values)


def _by_condition(labels: Sequence[str | None] | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    arr = np.asarray([lbl or "" for lbl in labels], dtype=object)
    if len(arr) != n:
        raise ValueError("labels must have one entry per feature row")
    return arr


def real_baseline(
    real: np.ndarray,
    *,
    real_labels: Sequence[str | None] | None = None,
    real_groups: Sequence[str | None] | None = None,
    held_out: np.ndarray | None = None,
    held_out_labels: Sequence[str | None] | None = None,
    conditions: Sequence[str] = (),
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    min_count: int = 0,
) -> Baseline:
    """The metrics between two real sets, overall and for each of ``conditions``.

    With ``held_out`` features: ``real`` vs ``held_out``. Otherwise ``real`` is split into
    two disjoint halves (:func:`~generator.metrics.baseline.split_halves`, seeded; by
    patient when ``real_groups`` is given). The halves hold about half the images, and FID
    is biased upwards at small n, so a half-size baseline FID errs on the high side.
    """
    common = dict(
        k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed, min_count=min_count
    )
    if held_out is not None:
        a, b = real, as_2d(held_out, "held_out")
        la, lb = _by_condition(real_labels, len(a)), _by_condition(held_out_labels, len(b))
        method = HELD_OUT
    else:
        ia, ib = split_halves(len(real), groups=real_groups, seed=seed)
        a, b = real[ia], real[ib]
        labels = _by_condition(real_labels, len(real))
        la, lb = (None, None) if labels is None else (labels[ia], labels[ib])
        method = SPLIT_BY_PATIENT if real_groups is not None else SPLIT_BY_IMAGE
    per_condition = {}
    if la is not None and lb is not None:
        per_condition = {c: set_metrics(a[la == c], b[lb == c], **common) for c in conditions}
    return Baseline(method, set_metrics(a, b, **common), per_condition, seed)


def compute_fidelity(
    *,
    real_features: np.ndarray,
    fake_features: np.ndarray,
    extractor_name: str,
    extractor_sha256: str,
    real_labels: Sequence[str | None] | None = None,
    fake_labels: Sequence[str | None] | None = None,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    real_pixels: torch.Tensor | None = None,
    fake_pixels: torch.Tensor | None = None,
    real_groups: Sequence[str | None] | None = None,
    held_out_features: np.ndarray | None = None,
    held_out_labels: Sequence[str | None] | None = None,
    min_count: int = 20,
) -> FidelityResult:
    """Overall metrics and, where labels are given, the same per condition, with the
    real-vs-real baseline (:func:`real_baseline`) beside them.

    Per-condition metrics use only that condition's real and synthetic images, so
    they answer "does the synthetic melanoma look like real melanoma", which the
    overall numbers can hide when the condition mix differs between the sets; those from
    fewer than ``min_count`` images per set carry a ``warning``. ``real_groups`` (patient
    per real row) make the baseline split by patient; ``held_out_features`` replace the
    split by a held-out real set.
    """
    real = as_2d(real_features, "real_features")
    fake = as_2d(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    common = dict(k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    overall = set_metrics(real, fake, real_pixels=real_pixels, fake_pixels=fake_pixels, **common)
    per_condition: dict[str, SetMetrics] = {}
    if real_labels is not None and fake_labels is not None:
        rl, fl = _by_condition(real_labels, real.shape[0]), _by_condition(fake_labels, fake.shape[0])
        for cond in sorted((set(rl) | set(fl)) - {""}):
            rm, fm = rl == cond, fl == cond
            per_condition[cond] = set_metrics(
                real[rm],
                fake[fm],
                real_pixels=None if real_pixels is None else real_pixels[torch.from_numpy(rm.astype(bool))],
                fake_pixels=None if fake_pixels is None else fake_pixels[torch.from_numpy(fm.astype(bool))],
                min_count=min_count,
                **common,
            )
    baseline = real_baseline(
        real,
        real_labels=real_labels,
        real_groups=real_groups,
        held_out=held_out_features,
        held_out_labels=held_out_labels,
        conditions=sorted(per_condition),
        min_count=min_count,
        **common,
    )
    return FidelityResult(
        extractor_name=extractor_name,
        extractor_sha256=extractor_sha256,
        feature_dim=int(real.shape[1]),
        overall=overall,
        per_condition=per_condition,
        settings={
            **common,
            "n_real": int(real.shape[0]),
            "n_fake": int(fake.shape[0]),
            "min_count": min_count,
        },
        baseline=baseline,
    )


def evaluate_images(
    real_images: Sequence[Image.Image],
    fake_images: Sequence[Image.Image],
    extractor: FeatureExtractor,
    *,
    real_labels: Sequence[str | None] | None = None,
    fake_labels: Sequence[str | None] | None = None,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    ms_ssim_size: int | None = 64,
    real_groups: Sequence[str | None] | None = None,
    held_out_images: Sequence[Image.Image] | None = None,
    held_out_labels: Sequence[str | None] | None = None,
    min_count: int = 20,
) -> FidelityResult:
    """Extract features with ``extractor`` and compute :func:`compute_fidelity` (with its
    real-vs-real baseline: split by ``real_groups``, or against ``held_out_images``)."""
    if not real_images or not fake_images:
        raise ValueError("both the real and the synthetic set need at least one image")
    real_f = extractor.extract(real_images)
    fake_f = extractor.extract(fake_images)
    held_f = extractor.extract(held_out_images) if held_out_images else None
    rp = fp = None
    if ms_ssim_size:
        rp, fp = images_to_tensor(real_images, ms_ssim_size), images_to_tensor(fake_images, ms_ssim_size)
    result = compute_fidelity(
        real_features=real_f,
        fake_features=fake_f,
        extractor_name=extractor.name,
        extractor_sha256=extractor.sha256,
        real_labels=real_labels,
        fake_labels=fake_labels,
        k=k,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        seed=seed,
        real_pixels=rp,
        fake_pixels=fp,
        real_groups=real_groups,
        held_out_features=held_f,
        held_out_labels=held_out_labels,
        min_count=min_count,
    )
    if ms_ssim_size:
        result.settings["ms_ssim_size"] = ms_ssim_size
    return result


def format_table(result: FidelityResult) -> str:
    """A plain-text table: one row overall, one per condition, then the real-vs-real baseline's."""
    cols = ["n_real", "n_fake", "fid", "kid_mean", "kid_std", "precision", "recall", "diversity_ratio"]
    rows = _rows(result)

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [f"extractor: {result.extractor_name} sha256={result.extractor_sha256}"]
    lines.append("\t".join(["set", *cols]))
    for name, m in rows:
        lines.append(
            "\t".join([name, *(fmt(getattr(m, c)) for c in cols)]) + (f"\t! {m.warning}" if m.warning else "")
        )
    if result.baseline is not None:
        lines.append(f"real-vs-real baseline: {result.baseline.method} (n_real, n_fake = the two real sets)")
    return "\n".join(lines)


def _csv_text(value: str) -> str:
    # OWASP's CSV-injection rule, the platform's csvsafe rule (this package imports no platform code):
    # a condition name a spreadsheet would run as a formula gets a quote prefix.
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r", "'")) else value


def _rows(result: FidelityResult) -> list[tuple[str, SetMetrics]]:
    """``(name, metrics)`` rows: overall, per condition, then ``real-vs-real:<name>`` rows."""
    rows = [("overall", result.overall), *sorted(result.per_condition.items())]
    if result.baseline is not None:
        b = result.baseline
        rows += [
            (f"real-vs-real:{n}", m) for n, m in [("overall", b.overall), *sorted(b.per_condition.items())]
        ]
    return rows


def write_per_condition_csv(result: FidelityResult, path: str | Path) -> None:
    """Per-condition rows (plus ``overall``) to CSV, written atomically; names formula-safe."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fields = [f for f in SetMetrics.__dataclass_fields__ if f not in ("notes", "warning")]
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["condition", *fields, "extractor_name", "extractor_sha256"])
        for name, m in _rows(result):
            writer.writerow(
                [
                    _csv_text(name),
                    *(getattr(m, f) for f in fields),
                    _csv_text(result.extractor_name),
                    result.extractor_sha256,
                ]
            )
    os.replace(tmp, path)
