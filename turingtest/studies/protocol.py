"""The study protocol as pure functions: which images go in a pool, in what order a rater sees them.

No database here: ``services`` loads rows, calls these with plain ids and kinds, and
stores the result. Everything is driven by an explicit seed so an assignment can be
reproduced from ``Assignment.seed`` and the study's item list alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

REAL = "real"
SYNTHETIC = "synthetic"

# What a study's ``config`` holds, with defaults. Keys here are the whole design: the
# hash taken when a study opens covers all of them plus the exact item list.
DEFAULT_CONFIG: dict = {
    "pool": {"kinds": [REAL, SYNTHETIC], "conditions": [], "fitzpatrick": [], "batches": []},
    "n_real": 0,
    "n_synthetic": 0,
    "balance_conditions": True,
    "items_per_rater": None,  # None: every rater sees every (non-tutorial) item
    "n_anchors": 0,
    "n_tutorial": 0,
    "repeat_fraction": 0.0,
    "repeat_min_gap": 5,
    "exposure_ms": None,
    "answers_editable": False,
    "show_score": False,
    "questions": {"confidence": True, "diagnosis": False, "comment": False},
}


def config_with_defaults(config: dict | None) -> dict:
    """Fill missing keys with defaults and check types and ranges.

    Raises ``ValueError`` naming the bad key: a design error must be caught when
    the study is saved, not when the first rater arrives.
    """
    out = {**DEFAULT_CONFIG, **(config or {})}
    out["pool"] = {**DEFAULT_CONFIG["pool"], **(out.get("pool") or {})}
    out["questions"] = {**DEFAULT_CONFIG["questions"], **(out.get("questions") or {})}
    unknown = set(out) - set(DEFAULT_CONFIG) - {"diagnosis_choices"}
    if unknown:
        raise ValueError(f"unknown study config keys: {sorted(unknown)}")
    for key in ("n_real", "n_synthetic", "n_anchors", "n_tutorial", "repeat_min_gap"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {out[key]!r}")
    if out["n_real"] + out["n_synthetic"] == 0:
        raise ValueError("the pool needs at least one image (n_real + n_synthetic > 0)")
    ipr = out["items_per_rater"]
    if ipr is not None and (not isinstance(ipr, int) or isinstance(ipr, bool) or ipr < 1):
        raise ValueError(f"items_per_rater must be a positive integer or null, got {ipr!r}")
    if ipr is not None and ipr < out["n_anchors"]:
        raise ValueError(f"items_per_rater ({ipr}) is smaller than the anchor set ({out['n_anchors']})")
    if out["n_anchors"] > out["n_real"] + out["n_synthetic"]:
        raise ValueError("n_anchors is larger than the pool")
    frac = out["repeat_fraction"]
    if not isinstance(frac, int | float) or isinstance(frac, bool) or not 0 <= frac <= 0.5:
        raise ValueError(f"repeat_fraction must be between 0 and 0.5, got {frac!r}")
    out["repeat_fraction"] = float(frac)
    if out["repeat_min_gap"] < 2:
        raise ValueError("repeat_min_gap must be at least 2 (a repeat is never adjacent to its original)")
    exp = out["exposure_ms"]
    if exp is not None and (not isinstance(exp, int) or isinstance(exp, bool) or exp < 100):
        raise ValueError(f"exposure_ms must be null or an integer of at least 100, got {exp!r}")
    for key in ("answers_editable", "show_score", "balance_conditions"):
        if not isinstance(out[key], bool):
            raise ValueError(f"{key} must be true or false, got {out[key]!r}")
    for key, value in out["questions"].items():
        if key not in DEFAULT_CONFIG["questions"] or not isinstance(value, bool):
            raise ValueError(f"questions.{key} must be a known question set to true or false")
    kinds = out["pool"]["kinds"]
    if not set(kinds) <= {REAL, SYNTHETIC}:
        raise ValueError(f"pool.kinds must be a subset of real/synthetic, got {kinds!r}")
    if out["n_real"] and REAL not in kinds or out["n_synthetic"] and SYNTHETIC not in kinds:
        raise ValueError("pool.kinds excludes a kind the pool asks images of")
    return out


def synthetic_fraction(config: dict) -> float:
    total = config["n_real"] + config["n_synthetic"]
    return config["n_synthetic"] / total if total else 0.0


def _pick(
    rng: random.Random, by_condition: dict[int, list[int]], n: int, balance: bool, what: str
) -> list[int]:
    """Draw ``n`` ids; with ``balance`` round-robin over conditions so each gets an equal share."""
    available = sum(len(v) for v in by_condition.values())
    if n > available:
        raise ValueError(f"only {available} {what} images match the pool filters, {n} needed")
    pools = {c: rng.sample(ids, len(ids)) for c, ids in sorted(by_condition.items())}
    if not balance:
        flat = [i for c in sorted(pools) for i in pools[c]]
        return rng.sample(flat, n)
    order = sorted(pools)
    rng.shuffle(order)
    out: list[int] = []
    while len(out) < n:
        for c in order:
            if pools[c] and len(out) < n:
                out.append(pools[c].pop())
    return out


@dataclass(frozen=True)
class PoolDraw:
    items: list[int]  # image ids in the rated pool
    anchors: list[int]  # subset of items every rater sees
    tutorial: list[int]  # image ids shown first, with feedback, kept apart


def draw_pool(*, candidates: Sequence[tuple[int, str, int]], config: dict, seed: int) -> PoolDraw:
    """Choose the study's images from ``candidates`` = (image id, kind, condition id).

    The same (candidates, config, seed) always gives the same pool; the order of
    ``candidates`` does not matter.
    """
    rng = random.Random(seed)
    by_kind: dict[str, dict[int, list[int]]] = {REAL: {}, SYNTHETIC: {}}
    for image_id, kind, condition_id in sorted(candidates):
        by_kind[kind].setdefault(condition_id, []).append(image_id)
    balance = config["balance_conditions"]
    real = _pick(rng, by_kind[REAL], config["n_real"], balance, REAL)
    synthetic = _pick(rng, by_kind[SYNTHETIC], config["n_synthetic"], balance, SYNTHETIC)
    n_tut = config["n_tutorial"]
    tutorial: list[int] = []
    if n_tut:
        taken = set(real) | set(synthetic)
        rest = {
            kind: {c: [i for i in ids if i not in taken] for c, ids in groups.items()}
            for kind, groups in by_kind.items()
        }
        n_tut_syn = n_tut // 2 if rest[SYNTHETIC] and rest[REAL] else (n_tut if rest[SYNTHETIC] else 0)
        tutorial = _pick(rng, rest[SYNTHETIC], n_tut_syn, balance, "more synthetic (tutorial)")
        tutorial += _pick(rng, rest[REAL], n_tut - n_tut_syn, balance, "more real (tutorial)")
    n_anchor = config["n_anchors"]
    frac = synthetic_fraction(config)
    a_syn = min(round(n_anchor * frac), len(synthetic))
    a_real = min(n_anchor - a_syn, len(real))
    a_syn = n_anchor - a_real
    anchors = real[:a_real] + synthetic[:a_syn]  # the draws are already random
    return PoolDraw(items=sorted(real + synthetic), anchors=sorted(anchors), tutorial=sorted(tutorial))


@dataclass(frozen=True)
class Slot:
    """One position of a rater's sequence. ``repeat_of`` is the index of the first showing."""

    item_id: int
    is_tutorial: bool = False
    repeat_of: int | None = None


def plan_sequence(
    *,
    items: Sequence[tuple[int, str, bool]],
    tutorial: Sequence[int],
    config: dict,
    seed: int,
) -> list[Slot]:
    """A rater's sequence: tutorial first, then a balanced, shuffled set, repeats spaced later.

    ``items`` are (study item id, kind, is_anchor). With ``items_per_rater`` the rater
    sees every anchor plus a random subset drawn so the real:synthetic share matches
    the study's ratio. A ``repeat_fraction`` of the rated items is shown again, each
    repeat at least ``repeat_min_gap`` positions after its first showing (so never
    adjacent). The same (items, tutorial, config, seed) always gives the same sequence.
    """
    rng = random.Random(seed)
    tut = sorted(tutorial)
    rng.shuffle(tut)
    items = sorted(items)
    anchors = [i for i, _, a in items if a]
    others = {
        REAL: [i for i, k, a in items if not a and k == REAL],
        SYNTHETIC: [i for i, k, a in items if not a and k == SYNTHETIC],
    }
    k_total = config["items_per_rater"]
    if k_total is None or k_total >= len(items):
        main = [i for i, _, _ in items]
    else:
        anchor_syn = sum(1 for i, k, a in items if a and k == SYNTHETIC)
        want_syn = round(k_total * synthetic_fraction(config)) - anchor_syn
        n_rest = k_total - len(anchors)
        n_syn = max(0, min(want_syn, len(others[SYNTHETIC]), n_rest))
        n_real = min(n_rest - n_syn, len(others[REAL]))
        n_syn = min(n_rest - n_real, len(others[SYNTHETIC]))  # top up if real ran short
        main = anchors + rng.sample(others[SYNTHETIC], n_syn) + rng.sample(others[REAL], n_real)
        main.sort()
    rng.shuffle(main)

    # Repeats: insert each chosen item at a random later point, at least `gap` after its
    # original. Inserting never shrinks an existing original-to-repeat distance.
    seq: list[tuple[int, int | None]] = [(item, None) for item in main]  # (item, index in main)
    gap = config["repeat_min_gap"]
    eligible = list(range(0, max(0, len(main) - gap + 1)))
    n_rep = min(round(config["repeat_fraction"] * len(main)), len(eligible))
    originals = rng.sample(eligible, n_rep)
    for orig in originals:
        current = seq.index((main[orig], None))
        at = rng.randint(current + gap, len(seq))
        seq.insert(at, (main[orig], orig))

    # repeat_of points at the index of the first showing (always earlier).
    slots = [Slot(item_id=i, is_tutorial=True) for i in tut]
    position_of: dict[int, int] = {}
    for item, src in seq:
        if src is None:
            position_of[item] = len(slots)
            slots.append(Slot(item_id=item))
        else:
            slots.append(Slot(item_id=item, repeat_of=position_of[item]))
    return slots
