"""The real-vs-real baseline: what each metric reads when both sets are real.

An FID of 8 means nothing alone: two halves of one real set already differ (real-vs-real
FID in the default feature space ranged 1.7–12.7 across extractor seeds on the PAD-UFES-20
sample). So every :class:`~generator.metrics.results.FidelityResult` carries the same
metrics computed between two disjoint halves of the real (reference) set — split by patient
when patient ids are known, so one patient's near-duplicate photos cannot sit on both sides
and make the halves look closer than two sets of patients do — or between the reference and
a held-out real set. A synthetic set is as close as real data gets when its numbers fall
within the baseline's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLIT_BY_PATIENT = "two disjoint halves of the real set, split by patient"
SPLIT_BY_IMAGE = "two disjoint halves of the real set, split by image"
HELD_OUT = "the real set vs a held-out real set"


def split_halves(
    n: int, *, groups: Sequence[str | None] | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index arrays covering ``range(n)``, seeded, no group on both sides.

    Groups (patients; ``None`` = the image alone) are shuffled and each goes to the half
    with fewer images so far, so the halves are about equal in size. Without groups it is a
    seeded permutation cut in the middle.

    >>> a, b = split_halves(6, groups=["p1", "p1", "p2", "p2", "p3", "p4"], seed=0)
    >>> sorted(np.concatenate([a, b]).tolist()), len(a) + len(b)
    ([0, 1, 2, 3, 4, 5], 6)
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        return np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    if len(groups) != n:
        raise ValueError(f"{n} rows but {len(groups)} groups")
    keys = [str(g) if g not in (None, "") else f"image:{i}" for i, g in enumerate(groups)]
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    names = sorted(members)
    halves: tuple[list[int], list[int]] = ([], [])
    for j in rng.permutation(len(names)):
        side = 0 if len(halves[0]) <= len(halves[1]) else 1
        halves[side].extend(members[names[j]])
    return np.array(sorted(halves[0]), dtype=int), np.array(sorted(halves[1]), dtype=int)
