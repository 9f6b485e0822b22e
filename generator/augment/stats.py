"""The experiment's statistics: patient-grouped split, paired McNemar test, clustered bootstrap."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest


def derived_seed(seed: int, tag: str) -> int:
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
    rng = np.random.default_rng(derived_seed(seed, "split"))
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


def outcomes_of(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    rng = np.random.default_rng(derived_seed(seed, "bootstrap"))
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
