"""The protocol's pure functions: pool draws and rater sequences (seeded, balanced, spaced repeats)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turingtest.studies import protocol
from turingtest.studies.protocol import REAL, SYNTHETIC


def cfg(**kw) -> dict:
    return protocol.config_with_defaults({"n_real": 1, "n_synthetic": 1, **kw})


def items(n_real: int, n_syn: int, anchors: set[int] = frozenset()) -> list[tuple[int, str, bool]]:
    return [(i, REAL if i < n_real else SYNTHETIC, i in anchors) for i in range(n_real + n_syn)]


def test_the_same_seed_gives_the_same_sequence_and_another_seed_a_different_one():
    c = cfg(repeat_fraction=0.2, repeat_min_gap=3)
    a = protocol.plan_sequence(items=items(20, 20), tutorial=[100, 101], config=c, seed=5)
    b = protocol.plan_sequence(items=list(reversed(items(20, 20))), tutorial=[101, 100], config=c, seed=5)
    other = protocol.plan_sequence(items=items(20, 20), tutorial=[100, 101], config=c, seed=6)
    assert a == b
    assert a != other


def test_tutorial_items_come_first_and_are_never_repeated():
    seq = protocol.plan_sequence(
        items=items(5, 5), tutorial=[50, 51, 52], config=cfg(repeat_fraction=0.5), seed=1
    )
    assert [s.is_tutorial for s in seq[:3]] == [True] * 3
    assert not any(s.is_tutorial for s in seq[3:])
    assert all(s.repeat_of is None for s in seq[:3])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=40),
    frac=st.floats(min_value=0, max_value=0.5),
    gap=st.integers(min_value=2, max_value=8),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_repeats_are_spaced_at_least_the_gap_after_their_first_showing_and_never_adjacent(n, frac, gap, seed):
    seq = protocol.plan_sequence(
        items=items(n, n), tutorial=[], config=cfg(repeat_fraction=frac, repeat_min_gap=gap), seed=seed
    )
    firsts = [s.item_id for s in seq if s.repeat_of is None]
    assert sorted(firsts) == list(range(2 * n))  # every item exactly once as a first showing
    repeats = [(p, s) for p, s in enumerate(seq) if s.repeat_of is not None]
    assert len(repeats) <= round(frac * 2 * n)
    for p, s in repeats:
        assert seq[s.repeat_of].item_id == s.item_id and seq[s.repeat_of].repeat_of is None
        assert p - s.repeat_of >= gap
    for a, b in zip(seq, seq[1:]):
        assert a.item_id != b.item_id
    assert Counter(s.item_id for s in seq).most_common(1)[0][1] <= 2 if seq else True


def test_the_repeat_fraction_is_honoured_when_there_is_room():
    seq = protocol.plan_sequence(items=items(20, 20), tutorial=[], config=cfg(repeat_fraction=0.1), seed=3)
    assert sum(s.repeat_of is not None for s in seq) == 4


def test_a_subset_per_rater_keeps_the_ratio_and_includes_every_anchor():
    anchors = {0, 1, 30, 31}
    c = cfg(n_real=30, n_synthetic=30, items_per_rater=20, n_anchors=4)
    for seed in range(10):
        seq = protocol.plan_sequence(items=items(30, 30, anchors), tutorial=[], config=c, seed=seed)
        ids = [s.item_id for s in seq]
        assert len(ids) == 20 and anchors <= set(ids)
        assert sum(i >= 30 for i in ids) == 10  # 50:50
    subsets = {
        frozenset(
            s.item_id
            for s in protocol.plan_sequence(items=items(30, 30, anchors), tutorial=[], config=c, seed=k)
        )
        for k in range(5)
    }
    assert len(subsets) > 1  # raters see different subsets


def test_a_subset_follows_an_uneven_ratio():
    c = cfg(n_real=30, n_synthetic=10, items_per_rater=8)
    seq = protocol.plan_sequence(items=items(30, 10), tutorial=[], config=c, seed=2)
    assert sum(s.item_id >= 30 for s in seq) == 2  # 8 * 10/40


def test_pool_draws_are_balanced_over_conditions_and_kinds():
    # 4 conditions, plenty of each kind in each.
    cands = [(i, REAL if i % 2 else SYNTHETIC, (i // 2) % 4) for i in range(400)]
    draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=20, n_synthetic=20, n_tutorial=4), seed=9)
    cond = {i: c for i, _, c in cands}
    kind = {i: k for i, k, _ in cands}
    assert len(draw.items) == 40 and len(draw.tutorial) == 4
    assert not set(draw.items) & set(draw.tutorial)
    per = Counter((kind[i], cond[i]) for i in draw.items)
    assert set(per.values()) == {5}  # 20 per kind over 4 conditions
    assert Counter(kind[i] for i in draw.tutorial) == {REAL: 2, SYNTHETIC: 2}
    again = protocol.draw_pool(
        candidates=list(reversed(cands)), config=cfg(n_real=20, n_synthetic=20, n_tutorial=4), seed=9
    )
    assert again == draw


def test_anchors_are_drawn_from_the_pool_at_the_studys_ratio():
    cands = [(i, REAL if i < 50 else SYNTHETIC, 0) for i in range(100)]
    draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=10, n_synthetic=10, n_anchors=4), seed=1)
    assert set(draw.anchors) <= set(draw.items)
    assert sum(a >= 50 for a in draw.anchors) == 2


def test_a_pool_larger_than_the_library_is_a_clear_error():
    cands = [(i, REAL, 0) for i in range(3)]
    with pytest.raises(ValueError, match="only 3 real images match the pool filters, 5 needed"):
        protocol.draw_pool(
            candidates=cands, config=cfg(n_real=5, n_synthetic=0, pool={"kinds": [REAL]}), seed=1
        )


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"n_real": -1}, "n_real"),
        ({"n_real": 0, "n_synthetic": 0}, "at least one image"),
        ({"repeat_fraction": 0.9}, "repeat_fraction"),
        ({"repeat_min_gap": 1}, "never adjacent"),
        ({"items_per_rater": 0}, "items_per_rater"),
        ({"n_anchors": 3, "items_per_rater": 2}, "anchor"),
        ({"exposure_ms": 5}, "exposure_ms"),
        ({"questions": {"mood": True}}, "questions.mood"),
        ({"colour": "blue"}, "unknown study config keys"),
    ],
)
def test_bad_configs_are_rejected_with_the_key_named(bad, message):
    with pytest.raises(ValueError, match=message):
        protocol.config_with_defaults({"n_real": 2, "n_synthetic": 2, **bad})


# --- matched designs (issue 12) ----------------------------------------------------------


def _cands(spec: dict[tuple[int, str], int], *, fitz: int | None = None, start: int = 0) -> list:
    """Candidates from {(condition, kind): count}, with consecutive ids."""
    out, i = [], start
    for (cond, kind), n in sorted(spec.items()):
        for _ in range(n):
            out.append(protocol.Candidate(i, kind, cond, fitz))
            i += 1
    return out


def test_every_stratum_of_a_matched_draw_holds_both_kinds_in_the_studys_ratio():
    # Condition 0 is rich in real images, 1 in synthetic ones, 2 has only synthetic ones:
    # an unmatched draw would make the condition give the answer away.
    cands = _cands({(0, REAL): 30, (0, SYNTHETIC): 10, (1, REAL): 10, (1, SYNTHETIC): 30, (2, SYNTHETIC): 20})
    for n_real, n_syn in ((10, 10), (12, 4)):
        draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=n_real, n_synthetic=n_syn), seed=3)
        kind = {c.image_id: c.kind for c in cands}
        cond = {c.image_id: c.condition for c in cands}
        per = Counter((cond[i], kind[i]) for i in draw.items)
        assert sum(per[(c, REAL)] for c in (0, 1, 2)) == n_real
        for c in (0, 1, 2):
            assert per[(c, REAL)] * n_syn == per[(c, SYNTHETIC)] * n_real, (c, per)
        assert per[(2, SYNTHETIC)] == 0  # no real image of condition 2 to match it
        rows = {(r.condition, r.kind): r for r in draw.strata}
        assert all(r.wanted == r.drawn for r in draw.strata)
        assert rows[(2, SYNTHETIC)].available == 20 and rows[(2, REAL)].available == 0


def test_a_design_that_cannot_be_matched_names_the_short_strata_and_unmatched_is_an_explicit_choice():
    cands = _cands({(0, REAL): 6, (0, SYNTHETIC): 1, (1, REAL): 1, (1, SYNTHETIC): 6})
    with pytest.raises(protocol.MatchError) as exc:
        protocol.draw_pool(candidates=cands, config=cfg(n_real=6, n_synthetic=6), seed=1)
    assert exc.value.short == [(0, None), (1, None)]
    assert "cannot match 6 real : 6 synthetic" in str(exc.value)
    draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=6, n_synthetic=6, unmatched=True), seed=1)
    assert len(draw.items) == 12 and not draw.matched
    assert {r.wanted for r in draw.strata} == {None}


def test_matching_by_labelled_skin_type_leaves_unlabelled_images_out():
    cands = _cands({(0, REAL): 4, (0, SYNTHETIC): 4}, fitz=2)
    cands += _cands({(0, REAL): 4, (0, SYNTHETIC): 4}, fitz=5, start=100)
    cands += _cands({(0, REAL): 9}, fitz=None, start=200)  # estimated or missing types
    draw = protocol.draw_pool(
        candidates=cands, config=cfg(n_real=6, n_synthetic=6, match_fitzpatrick=True), seed=2
    )
    fitz = {c.image_id: (c.fitzpatrick, c.kind) for c in cands}
    per = Counter(fitz[i] for i in draw.items)
    assert per[(2, REAL)] == per[(2, SYNTHETIC)] and per[(5, REAL)] == per[(5, SYNTHETIC)]
    assert not any(i >= 200 for i in draw.items)
    assert draw.n_removed_unlabelled_type == 9
    assert {r.fitzpatrick for r in draw.strata} == {2, 5}


def test_tutorial_examples_and_rated_items_never_cross_between_studies():
    cands = [
        protocol.Candidate(
            i, REAL if i % 2 else SYNTHETIC, 0, None, tutorial_elsewhere=i < 4, rated_elsewhere=4 <= i < 8
        )
        for i in range(40)
    ]
    draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=10, n_synthetic=10, n_tutorial=4), seed=5)
    assert not set(draw.items) & set(range(4)), "shown with feedback elsewhere: never rated here"
    assert set(draw.tutorial) == set(range(4)), "the tutorial set is reused before fresh images"
    draw = protocol.draw_pool(candidates=cands, config=cfg(n_real=10, n_synthetic=10, n_tutorial=8), seed=5)
    assert not set(draw.tutorial) & set(range(4, 8)), "rated elsewhere: never a tutorial here"
    assert (draw.n_removed_shown_with_feedback, draw.n_removed_rated_elsewhere) == (4, 4)
