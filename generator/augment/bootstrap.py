"""Confidence intervals that include training-seed variance: the seed-and-patient bootstrap.

A classifier's test score varies for two reasons: *which test patients* happened to be held
out, and *which training seed* (initialisation, batch order, augmentation draws) produced the
model. A CI over test images alone — from one trained model — ignores the second, and with
small rare classes the second is often the larger (one seed's model may never predict SCC,
the next predicts it half the time). So every arm is trained with several seeds, and each
bootstrap draw resamples **both** levels:

1. test *patients* with replacement (a patient's images stay together: they are not
   independent), as an image-weight vector ``w`` (how often each image's patient was drawn);
2. training *seed indexes* ``k_1 … k_S`` with replacement, out of the ``S`` seeds.

The draw's value of a metric for an arm is the mean over the drawn seed indexes of the
metric of that seed's model on the drawn patients. The 95% CI is the 2.5–97.5 percentile
of those values over ``n_bootstrap`` draws; the point estimate is the mean over seeds on
all test images. This is a two-stage (hierarchical) nonparametric bootstrap (Davison &
Hinkley 1997, *Bootstrap Methods and their Application*, §3.8,
doi:10.1017/CBO9780511802843; Ren et al. 2010, doi:10.1080/02664760903046102).

**Paired comparisons.** Arms share the draw: the same patients and the same seed indexes
(seed index ``k`` trains every arm with the same seed, so arm A's seed ``k`` and arm B's
seed ``k`` share initialisation and batch order). The difference B − A is computed inside
each draw, so what the two arms have in common cancels; its CI is the percentile interval
and its two-sided p-value ``min(1, 2·min(P(Δ ≤ 0), P(Δ ≥ 0)))`` over draws (resolution
``2 / n_bootstrap``). This replaces the image-level McNemar test, which treats a patient's
images as independent and ignores seed variance.

Metrics (weighted counts over the drawn images): top-1 and top-3 accuracy; per-condition
sensitivity TP/(TP+FN) and specificity TN/(TN+FP); balanced accuracy = mean sensitivity
over the conditions present in the draw; macro-F1 = mean over those conditions of
2TP/(2TP+FP+FN).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.augment.stats import derived_seed

SUMMARY_METRICS = ("balanced_accuracy", "macro_f1", "top1", "top3")
PER_CONDITION = ("sensitivity", "specificity")
METHOD = (
    "seed-and-patient bootstrap: each draw resamples test patients (clustered) and training seeds, "
    "both with replacement; an arm's value is the mean over the drawn seeds on the drawn patients; "
    "arms share every draw, so differences are paired by patient and by seed index; "
    "95% percentile intervals"
)


@dataclass(frozen=True)
class ArmPredictions:
    """One arm's test predictions, one row per training seed."""

    pred: np.ndarray  # (S, N) int: predicted class index (top-1)
    top3: np.ndarray  # (S, N) bool: the true class is among the three most probable


def predictions_of(probs: Sequence[np.ndarray], y: np.ndarray) -> ArmPredictions:
    """``probs``: one (N, C) probability array per seed → :class:`ArmPredictions`."""
    ranked = [np.argsort(-p, axis=1, kind="stable") for p in probs]
    return ArmPredictions(
        pred=np.stack([r[:, 0] for r in ranked]),
        top3=np.stack([np.any(r[:, :3] == y[:, None], axis=1) for r in ranked]),
    )


def _metrics(
    w: np.ndarray, y_onehot: np.ndarray, arm: ArmPredictions, n_classes: int
) -> dict[str, np.ndarray]:
    """Every metric for image weights ``w`` (B, N), per draw and seed: (B, S) or (B, S, C)."""
    pos = w @ y_onehot  # (B, C) weighted images of each true class
    total = w.sum(axis=1)  # (B,)
    present = pos > 0
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*SUMMARY_METRICS, *PER_CONDITION)}
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # absent conditions give NaN on purpose
        for s in range(arm.pred.shape[0]):
            pred_onehot = np.eye(n_classes)[arm.pred[s]]  # (N, C)
            correct = (arm.pred[s] == y_onehot.argmax(axis=1)).astype(float)  # (N,)
            tp = w @ (y_onehot * correct[:, None])  # (B, C)
            pp = w @ pred_onehot  # (B, C) predicted positives
            sens = np.where(present, tp / pos, np.nan)
            neg = total[:, None] - pos
            spec = np.where(neg > 0, (neg - (pp - tp)) / neg, np.nan)
            f1 = np.where(present, 2 * tp / (pos + pp), np.nan)
            out["sensitivity"].append(sens)
            out["specificity"].append(spec)
            out["balanced_accuracy"].append(np.nanmean(sens, axis=1))
            out["macro_f1"].append(np.nanmean(f1, axis=1))
            out["top1"].append((w @ correct) / total)
            out["top3"].append((w @ arm.top3[s].astype(float)) / total)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def _interval(draws: np.ndarray, point: float) -> dict[str, float | None]:
    draws = draws[np.isfinite(draws)]
    if not np.isfinite(point):
        return {"value": None, "ci_low": None, "ci_high": None}
    if draws.size == 0:
        return {"value": float(point), "ci_low": None, "ci_high": None}
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def _p_value(draws: np.ndarray) -> float | None:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None
    return float(min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0))))


def seed_patient_bootstrap(
    predictions: Mapping[str, ArmPredictions],
    y: np.ndarray,
    groups: Sequence[str],
    classes: Sequence[str],
    *,
    comparisons: Sequence[tuple[str, str]] = (),
    n_bootstrap: int = 1000,
    seed: int = 0,
    min_count: int = 20,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-arm metrics with seed-and-patient bootstrap CIs, and paired differences.

    Parameters
    ----------
    predictions : arm name → :class:`ArmPredictions`, every arm with the same S seeds.
    y : (N,) true class index of each test image; ``groups`` (N,) its patient.
    classes : the C condition codes, in index order.
    comparisons : ``(a, b)`` pairs; each gets ``b − a`` with CI and p-value.
    min_count : per-condition entries with fewer test images carry a ``warning``.

    Returns
    -------
    ``(results, differences)``: ``results[arm]`` holds ``n``, ``n_seeds``, each summary
    metric as ``{value, ci_low, ci_high}``, ``per_seed`` (each summary metric per seed, on all
    test images) and ``sensitivity`` / ``specificity`` per condition (``n``, interval,
    ``per_seed``, ``warning`` when ``n < min_count``); ``differences["b_vs_a"]`` holds the
    same intervals for ``b − a`` plus ``p_value`` and ``significant`` (CI excludes 0).
    """
    arms = list(predictions)
    y = np.asarray(y, dtype=int)
    n, n_classes = len(y), len(classes)
    seeds = {predictions[a].pred.shape[0] for a in arms}
    if len(seeds) != 1:
        raise ValueError(f"every arm needs the same number of seeds, got {sorted(seeds)}")
    n_seeds = seeds.pop()
    if n == 0 or len(groups) != n:
        raise ValueError(f"{n} test labels but {len(groups)} groups")
    y_onehot = np.eye(n_classes)[y]
    _, patient = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    n_patients = int(patient.max()) + 1
    rng = np.random.default_rng(derived_seed(seed, "seed-patient-bootstrap"))
    counts = rng.multinomial(n_patients, np.full(n_patients, 1 / n_patients), size=n_bootstrap)
    w = counts[:, patient].astype(float)  # (B, N): each image weighs as often as its patient was drawn
    seed_pick = rng.integers(0, n_seeds, size=(n_bootstrap, n_seeds))  # (B, S), shared by all arms

    def resampled(m: np.ndarray) -> np.ndarray:
        # m: (B, S[, C]) → mean over the drawn seed indexes of each draw: (B[, C])
        idx = seed_pick.reshape(seed_pick.shape + (1,) * (m.ndim - 2))
        with warnings.catch_warnings():  # a condition absent from a draw is NaN there, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.take_along_axis(m, idx, axis=1), axis=1)

    full = {a: _metrics(np.ones((1, n)), y_onehot, predictions[a], n_classes) for a in arms}
    draws = {
        a: {k: resampled(v) for k, v in _metrics(w, y_onehot, predictions[a], n_classes).items()}
        for a in arms
    }
    n_per_class = y_onehot.sum(axis=0).astype(int)

    def summary(point: dict[str, np.ndarray], drawn: dict[str, np.ndarray], per_seed: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"n": n, "n_seeds": n_seeds}
        for k in SUMMARY_METRICS:
            out[k] = _interval(drawn[k], float(np.mean(point[k])))
        if per_seed:
            out["per_seed"] = {k: [float(v) for v in point[k].ravel()] for k in SUMMARY_METRICS}
        for k in PER_CONDITION:
            out[k] = {}
            for c, code in enumerate(classes):
                values = point[k][..., c].ravel()
                entry = {"n": int(n_per_class[c]), **_interval(drawn[k][:, c], float(np.mean(values)))}
                if per_seed:
                    entry["per_seed"] = [None if not np.isfinite(v) else float(v) for v in values]
                if n_per_class[c] < min_count:
                    entry["warning"] = (
                        f"only {n_per_class[c]} test images (< {min_count}): read the CI, not the value"
                    )
                out[k][code] = entry
        return out

    results = {a: summary({k: v[0] for k, v in full[a].items()}, draws[a], True) for a in arms}
    differences: dict[str, Any] = {}
    for a, b in comparisons:
        point = {k: full[b][k][0] - full[a][k][0] for k in full[a]}
        drawn = {k: draws[b][k] - draws[a][k] for k in draws[a]}
        diff = summary(point, drawn, False)
        for k in SUMMARY_METRICS:
            diff[k].update(_significance(drawn[k], diff[k]))
        for k in PER_CONDITION:
            for c, code in enumerate(classes):
                diff[k][code].update(_significance(drawn[k][:, c], diff[k][code]))
        differences[f"{b}_vs_{a}"] = {"a": a, "b": b, **diff}
    return results, differences


def _significance(draws: np.ndarray, interval: Mapping[str, Any]) -> dict[str, Any]:
    lo, hi = interval.get("ci_low"), interval.get("ci_high")
    return {
        "p_value": _p_value(draws),
        "significant": lo is not None and (lo > 0 or hi < 0),
    }
