"""The experiment's split and seeds: patient-grouped split, derived seeds, and the exact McNemar test.

The confidence intervals (seed-and-patient bootstrap) live in :mod:`generator.augment.bootstrap`.
McNemar is kept for callers comparing two single models on images; the report no longer uses it
because it treats a patient's images as independent and sees one training seed only.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
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
