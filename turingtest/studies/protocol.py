"""The study protocol as pure functions: which images go in a pool, in what order a rater sees them.

No database here: ``services`` loads rows, calls these with plain ids and kinds, and
stores the result. Everything is driven by an explicit seed so an assignment can be
reproduced from ``Assignment.seed`` and the study's item list alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

REAL = "real"
SYNTHETIC = "synthetic"

# Keys ``study_open`` adds to the config when it freezes it (not part of a draft's design).
SNAPSHOT_KEYS = frozenset({"diagnosis_choices", "leak_audit"})

# What a study's ``config`` holds, with defaults. Keys here are the whole design: the
# hash taken when a study opens covers all of them plus the exact item list.
DEFAULT_CONFIG: dict = {
    "pool": {"kinds": [REAL, SYNTHETIC], "conditions": [], "fitzpatrick": [], "batches": []},
    "n_real": 0,
    "n_synthetic": 0,
    "balance_conditions": True,
    # Matched design (ARCHITECTURE.md invariant 9): within every condition (and labelled skin
    # type with match_fitzpatrick) real and synthetic images are drawn in the study's ratio.
    # "unmatched" is the researcher's explicit choice to give that up; it is part of the
    # frozen design, and the report warns about it.
    "match_fitzpatrick": False,
    "unmatched": False,
    "items_per_rater": None,  # None: every rater sees every (non-tutorial) item
    "n_anchors": 0,
    "n_tutorial": 0,
    "repeat_fraction": 0.0,
    "repeat_min_gap": 5,
    "exposure_ms": None,
    # With an exposure limit, an answer arriving more than exposure_ms + answer_window_ms
    # after the server sent the image is flagged late (Judgment.is_late), not dropped.
    "answer_window_ms": 60_000,
    "answers_editable": False,
    "show_score": False,
    "questions": {"confidence": True, "diagnosis": False, "comment": False},
    # Rater quality control. A rater with fewer correct tutorial answers than this (a count,
    # or a fraction of the tutorial items) is thanked and does not go on; None: no threshold.
    "qualification_min_correct": None,
    # Library image ids of catch images (unmistakable real photos, broken renders): shown to
    # every rater at seeded positions, kept out of the pool draw and of the statistics.
    "attention_checks": [],
}


def config_with_defaults(config: dict | None) -> dict:
    """Fill missing keys with defaults and check types and ranges.

    Raises ``ValueError`` naming the bad key: a design error must be caught when
    the study is saved, not when the first rater arrives.
    """
    out = {**DEFAULT_CONFIG, **(config or {})}
    out["pool"] = {**DEFAULT_CONFIG["pool"], **(out.get("pool") or {})}
    out["questions"] = {**DEFAULT_CONFIG["questions"], **(out.get("questions") or {})}
    unknown = set(out) - set(DEFAULT_CONFIG) - SNAPSHOT_KEYS
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
    win = out["answer_window_ms"]
    if not isinstance(win, int) or isinstance(win, bool) or win < 0:
        raise ValueError(f"answer_window_ms must be a non-negative integer, got {win!r}")
    for key in ("answers_editable", "show_score", "balance_conditions", "match_fitzpatrick", "unmatched"):
        if not isinstance(out[key], bool):
            raise ValueError(f"{key} must be true or false, got {out[key]!r}")
    for key, value in out["questions"].items():
        if key not in DEFAULT_CONFIG["questions"] or not isinstance(value, bool):
            raise ValueError(f"questions.{key} must be a known question set to true or false")
    _check_quality_control(out)
    kinds = out["pool"]["kinds"]
    if not set(kinds) <= {REAL, SYNTHETIC}:
        raise ValueError(f"pool.kinds must be a subset of real/synthetic, got {kinds!r}")
    if out["n_real"] and REAL not in kinds or out["n_synthetic"] and SYNTHETIC not in kinds:
        raise ValueError("pool.kinds excludes a kind the pool asks images of")
    return out


def _check_quality_control(out: dict) -> None:
    q = out["qualification_min_correct"]
    if q is not None:
        if isinstance(q, bool) or not isinstance(q, int | float):
            raise ValueError(f"qualification_min_correct must be a count, a fraction or null, got {q!r}")
        if not out["n_tutorial"]:
            raise ValueError("qualification_min_correct needs tutorial items (n_tutorial > 0)")
        # A float is a fraction of the tutorial items, an int a count of them.
        if isinstance(q, float) and not 0 < q <= 1:
            raise ValueError(f"qualification_min_correct as a fraction must be in (0, 1], got {q!r}")
        if isinstance(q, int) and not 1 <= q <= out["n_tutorial"]:
            raise ValueError(
                f"qualification_min_correct must be between 1 and n_tutorial ({out['n_tutorial']}), got {q!r}"
            )
    checks = out["attention_checks"]
    if not isinstance(checks, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in checks
    ):
        raise ValueError(f"attention_checks must be a list of image ids, got {checks!r}")
    out["attention_checks"] = sorted(set(checks))


def qualification_needed(config: dict) -> int | None:
    """Correct tutorial answers a rater needs to go on (a fraction rounds up), or None."""
    q = config.get("qualification_min_correct")
    if q is None:
        return None
    if isinstance(q, float):
        return max(1, math.ceil(q * config["n_tutorial"] - 1e-9))
    return int(q)


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


class Candidate(NamedTuple):
    """A library image a pool may draw. ``fitzpatrick`` is a *labelled* skin type or None
    (an estimate from the photo is never a label: the caller decides, see
    ``library.models.is_labelled_fitzpatrick``). The two flags say how other studies use the image:
    shown with feedback (a tutorial item) or rated there."""

    image_id: int
    kind: str
    condition: int
    fitzpatrick: int | None = None
    tutorial_elsewhere: bool = False
    rated_elsewhere: bool = False


class StratumRow(NamedTuple):
    """One line of the stratum table: condition × skin type (None: not stratified) × kind."""

    condition: int
    fitzpatrick: int | None
    kind: str
    wanted: int | None  # None for an unmatched design: it wants nothing of a stratum
    available: int
    drawn: int


class MatchError(ValueError):
    """The library cannot fill the design with every stratum matched; ``short`` names the strata."""

    def __init__(self, message: str, *, strata: list[StratumRow], short: list[tuple[int, int | None]]):
        super().__init__(message)
        self.strata = strata
        self.short = short


@dataclass(frozen=True)
class PoolDraw:
    items: list[int]  # image ids in the rated pool
    anchors: list[int]  # subset of items every rater sees
    tutorial: list[int]  # image ids shown first, with feedback, kept apart
    strata: list[StratumRow] = field(default_factory=list)
    matched: bool = True
    # Candidates the tutorial/rated separation removed: shown with feedback in another study
    # (never rated here), and rated in another study (never a tutorial example here).
    n_removed_shown_with_feedback: int = 0
    n_removed_rated_elsewhere: int = 0
    n_removed_unlabelled_type: int = 0  # match_fitzpatrick: no labelled type, cannot be stratified


Stratum = tuple[int, int | None]  # (condition, labelled type or None)


def _unit(config: dict) -> tuple[int, int, int]:
    """(real, synthetic) per unit and the number of units: 12:12 is 12 units of 1:1, 30:10 is
    10 units of 3:1. Every stratum holds whole units, so its ratio is the study's exactly."""
    n_real, n_syn = config["n_real"], config["n_synthetic"]
    g = math.gcd(n_real, n_syn)
    return n_real // g, n_syn // g, g


def _capacity(ids: dict[str, list[int]], a: int, b: int) -> int:
    return min(len(ids[REAL]) // a if a else math.inf, len(ids[SYNTHETIC]) // b if b else math.inf)


def _allocate(
    rng: random.Random, caps: dict[Stratum, int], n_units: int, balance: bool
) -> dict[Stratum, int]:
    """Units per stratum: round-robin (equal shares, capped) or a random draw of unit slots."""
    alloc = dict.fromkeys(caps, 0)
    order = sorted(caps, key=lambda s: (s[0], -1 if s[1] is None else s[1]))
    rng.shuffle(order)
    if balance:
        left = n_units
        while left > 0 and any(alloc[s] < caps[s] for s in order):
            for s in order:
                if left and alloc[s] < caps[s]:
                    alloc[s] += 1
                    left -= 1
    else:
        slots = [s for s in order for _ in range(caps[s])]
        for s in rng.sample(slots, min(n_units, len(slots))):
            alloc[s] += 1
    return alloc


def _strata_rows(
    groups: dict[Stratum, dict[str, list[int]]], wanted: dict[Stratum, dict[str, int]] | None, drawn: set[int]
) -> list[StratumRow]:
    rows = []
    for (cond, fitz), ids in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        for kind in (REAL, SYNTHETIC):
            rows.append(
                StratumRow(
                    condition=cond,
                    fitzpatrick=fitz,
                    kind=kind,
                    wanted=None if wanted is None else wanted[(cond, fitz)][kind],
                    available=len(ids[kind]),
                    drawn=sum(i in drawn for i in ids[kind]),
                )
            )
    return rows


def _draw_matched(
    rng: random.Random, groups: dict[Stratum, dict[str, list[int]]], config: dict
) -> tuple[list[int], list[int], list[StratumRow]]:
    a, b, n_units = _unit(config)
    caps = {s: _capacity(ids, a, b) for s, ids in groups.items()}
    alloc = _allocate(rng, caps, n_units, config["balance_conditions"])
    if sum(alloc.values()) < n_units:
        # What each stratum would be asked for if its scarcer kind were there: the strata
        # whose availability falls short of that are the ones to name.
        ideal_caps = {
            s: max(len(ids[REAL]) // a if a else 0, len(ids[SYNTHETIC]) // b if b else 0)
            for s, ids in groups.items()
        }
        ideal = _allocate(random.Random(0), ideal_caps, n_units, config["balance_conditions"])
        wanted = {s: {REAL: ideal[s] * a, SYNTHETIC: ideal[s] * b} for s in groups}
        rows = _strata_rows(groups, wanted, set())
        short = sorted({(r.condition, r.fitzpatrick) for r in rows if r.available < (r.wanted or 0)})
        raise MatchError(
            f"cannot match {config['n_real']} real : {config['n_synthetic']} synthetic within every "
            f"stratum: the library holds {sum(caps.values()) * a} real : {sum(caps.values()) * b} "
            f"synthetic in matched strata",
            strata=rows,
            short=short,
        )
    real: list[int] = []
    synthetic: list[int] = []
    for s in sorted(groups, key=lambda s: (s[0], s[1] or 0)):
        real += rng.sample(groups[s][REAL], alloc[s] * a)
        synthetic += rng.sample(groups[s][SYNTHETIC], alloc[s] * b)
    wanted = {s: {REAL: alloc[s] * a, SYNTHETIC: alloc[s] * b} for s in groups}
    return real, synthetic, _strata_rows(groups, wanted, set(real) | set(synthetic))


def _check_totals(groups: dict[Stratum, dict[str, list[int]]], config: dict) -> None:
    for kind, n in ((REAL, config["n_real"]), (SYNTHETIC, config["n_synthetic"])):
        available = sum(len(ids[kind]) for ids in groups.values())
        if n > available:
            raise ValueError(f"only {available} {kind} images match the pool filters, {n} needed")


def _rated_groups(
    cands: list[Candidate], by_fitz: bool
) -> tuple[list[Candidate], dict[Stratum, dict[str, list[int]]]]:
    """The candidates a pool may rate, grouped into strata (condition, labelled type or None)."""
    rated = [c for c in cands if not c.tutorial_elsewhere and (c.fitzpatrick is not None or not by_fitz)]
    groups: dict[Stratum, dict[str, list[int]]] = {}
    for c in rated:
        key = (c.condition, c.fitzpatrick if by_fitz else None)
        groups.setdefault(key, {REAL: [], SYNTHETIC: []})[c.kind].append(c.image_id)
    return rated, groups


def available_strata(*, candidates: Sequence[tuple], config: dict) -> list[StratumRow]:
    """The stratum table before any draw: what each stratum holds for rating (wanted None).

    The same grouping ``draw_pool`` uses, so a preview's counts are the draw's ``available``.
    """
    by_fitz = config["match_fitzpatrick"] and not config["unmatched"]
    _, groups = _rated_groups(sorted(Candidate(*c) for c in candidates), by_fitz)
    return _strata_rows(groups, None, set())


def draw_pool(*, candidates: Sequence[tuple], config: dict, seed: int) -> PoolDraw:
    """Choose the study's images from ``candidates`` (``Candidate`` or its leading fields).

    Matched (the default): candidates are grouped into strata, by condition and, with
    ``match_fitzpatrick``, by labelled skin type (unlabelled ones are left out); each stratum
    gets whole units of the study's real:synthetic ratio, spread equally over the strata
    with ``balance_conditions``. A design the library cannot match raises ``MatchError``
    naming the short strata. ``unmatched`` draws each kind on its own (balanced over
    conditions), as the researcher explicitly chose.

    Tutorial examples come from their own set: an image shown with feedback in another study
    is never rated here, and an image rated in another study is never a tutorial here
    (images already used as tutorials elsewhere are preferred). The same (candidates,
    config, seed) always gives the same pool; the order of ``candidates`` does not matter.
    """
    rng = random.Random(seed)
    # Attention checks are placed by the researcher, never drawn (nor a tutorial example).
    catch = set(config.get("attention_checks") or ())
    cands = sorted(c for c in (Candidate(*c) for c in candidates) if c.image_id not in catch)
    by_fitz = config["match_fitzpatrick"] and not config["unmatched"]
    rated, groups = _rated_groups(cands, by_fitz)
    _check_totals(groups, config)
    if config["unmatched"]:
        by_kind: dict[str, dict[int, list[int]]] = {REAL: {}, SYNTHETIC: {}}
        for c in rated:
            by_kind[c.kind].setdefault(c.condition, []).append(c.image_id)
        balance = config["balance_conditions"]
        real = _pick(rng, by_kind[REAL], config["n_real"], balance, REAL)
        synthetic = _pick(rng, by_kind[SYNTHETIC], config["n_synthetic"], balance, SYNTHETIC)
        strata = _strata_rows(groups, None, set(real) | set(synthetic))
    else:
        real, synthetic, strata = _draw_matched(rng, groups, config)
    tutorial = _draw_tutorial(rng, cands, set(real) | set(synthetic), config)
    n_anchor = config["n_anchors"]
    frac = synthetic_fraction(config)
    a_syn = min(round(n_anchor * frac), len(synthetic))
    a_real = min(n_anchor - a_syn, len(real))
    a_syn = n_anchor - a_real
    anchors = real[:a_real] + synthetic[:a_syn]  # the draws are already random
    return PoolDraw(
        items=sorted(real + synthetic),
        anchors=sorted(anchors),
        tutorial=sorted(tutorial),
        strata=strata,
        matched=not config["unmatched"],
        n_removed_shown_with_feedback=sum(c.tutorial_elsewhere for c in cands),
        n_removed_rated_elsewhere=sum(c.rated_elsewhere and not c.tutorial_elsewhere for c in cands),
        n_removed_unlabelled_type=sum(c.fitzpatrick is None and not c.tutorial_elsewhere for c in cands)
        if by_fitz
        else 0,
    )


def _draw_tutorial(rng: random.Random, cands: list[Candidate], taken: set[int], config: dict) -> list[int]:
    """Tutorial examples, half synthetic where both kinds are left, from images never rated
    in any study; images already in the tutorial set (used as tutorials elsewhere) first."""
    n_tut = config["n_tutorial"]
    if not n_tut:
        return []
    balance = config["balance_conditions"]
    left = [c for c in cands if c.image_id not in taken and not c.rated_elsewhere]
    known = {REAL: {}, SYNTHETIC: {}}  # type: dict[str, dict[int, list[int]]]
    fresh = {REAL: {}, SYNTHETIC: {}}  # type: dict[str, dict[int, list[int]]]
    for c in left:
        (known if c.tutorial_elsewhere else fresh)[c.kind].setdefault(c.condition, []).append(c.image_id)
    has = {kind: bool(known[kind] or fresh[kind]) for kind in (REAL, SYNTHETIC)}
    n_syn = n_tut // 2 if has[SYNTHETIC] and has[REAL] else (n_tut if has[SYNTHETIC] else 0)
    out: list[int] = []
    for kind, n, what in (
        (SYNTHETIC, n_syn, "more synthetic (tutorial)"),
        (REAL, n_tut - n_syn, "more real (tutorial)"),
    ):
        n_known = min(n, sum(len(v) for v in known[kind].values()))
        n_fresh = n - n_known
        available = n_known + sum(len(v) for v in fresh[kind].values())
        if n > available:
            raise ValueError(f"only {available} {what} images match the pool filters, {n} needed")
        out += _pick(rng, known[kind], n_known, balance, what) + _pick(
            rng, fresh[kind], n_fresh, balance, what
        )
    return out


@dataclass(frozen=True)
class Slot:
    """One position of a rater's sequence. ``repeat_of`` is the index of the first showing."""

    item_id: int
    is_tutorial: bool = False
    repeat_of: int | None = None
    is_attention_check: bool = False


def plan_sequence(
    *,
    items: Sequence[tuple[int, str, bool]],
    tutorial: Sequence[int],
    config: dict,
    seed: int,
    attention: Sequence[int] = (),
) -> list[Slot]:
    """A rater's sequence: tutorial first, then a balanced, shuffled set, repeats spaced later.

    ``items`` are (study item id, kind, is_anchor). With ``items_per_rater`` the rater
    sees every anchor plus a random subset drawn so the real:synthetic share matches
    the study's ratio. A ``repeat_fraction`` of the rated items is shown again, each
    repeat at least ``repeat_min_gap`` positions after its first showing (so never
    adjacent). ``attention`` (study item ids of catch images) are shown once each at seeded
    positions among the rated items, never first. The same (items, tutorial, config, seed,
    attention) always gives the same sequence; without attention checks it is the sequence
    drawn before they existed (they draw from the generator last).
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

    # Attention checks: each at a random position after the first rated item. Inserting
    # never shrinks an original-to-repeat distance, and -1 marks them apart from repeats.
    for check in sorted(attention):
        seq.insert(rng.randint(1, len(seq)) if seq else 0, (check, -1))

    # repeat_of points at the index of the first showing (always earlier).
    slots = [Slot(item_id=i, is_tutorial=True) for i in tut]
    position_of: dict[int, int] = {}
    for item, src in seq:
        if src == -1:
            slots.append(Slot(item_id=item, is_attention_check=True))
        elif src is None:
            position_of[item] = len(slots)
            slots.append(Slot(item_id=item))
        else:
            slots.append(Slot(item_id=item, repeat_of=position_of[item]))
    return slots
