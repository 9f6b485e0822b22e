from __future__ import annotations

import json
from collections import Counter

import pytest

from generator.sampling import SpecDistribution, image_seed, spec_for_index
from generator.semantic_map import MapSpec


def test_image_seeds_are_deterministic_distinct_and_fit_63_bits():
    seeds = [image_seed(b, i) for b in range(20) for i in range(50)]
    assert seeds == [image_seed(b, i) for b in range(20) for i in range(50)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)
    assert image_seed(1, 0) != image_seed(0, 1)  # not a plain sum


def test_image_seed_rejects_negative_or_non_integer_arguments():
    with pytest.raises(ValueError, match="batch_seed"):
        image_seed(-1, 0)
    with pytest.raises(ValueError, match="index"):
        image_seed(0, 1.5)


def test_spec_for_index_depends_only_on_batch_seed_and_index():
    dist = SpecDistribution({"MEL": 1.0, "NEV": 2.0}, lesions_per_image=(1, 3))
    a = [spec_for_index(dist, size=64, batch_seed=7, index=i) for i in range(30)]
    # asking in another order, or for just one index, gives the same specs
    b = {i: spec_for_index(dist, size=64, batch_seed=7, index=i) for i in reversed(range(30))}
    assert a == [b[i] for i in range(30)]
    assert spec_for_index(dist, size=64, batch_seed=8, index=0) != a[0]
    assert len({json.dumps(s.to_dict()) for s in a}) == 30


def test_sampled_specs_follow_the_distribution():
    dist = SpecDistribution(
        {"MEL": 3.0, "BCC": 1.0, "NEV": 0.0},
        area_fraction_range=(0.02, 0.05),
        location=(0.4, 0.4, 0.6, 0.6),
        lesions_per_image=(2, 3),
        fitzpatrick_weights={5: 1.0, 6: 1.0},
    )
    specs = [spec_for_index(dist, size=32, batch_seed=1, index=i) for i in range(400)]
    lesions = [lesion for s in specs for lesion in s.lesions]
    counts = Counter(lesion.condition for lesion in lesions)
    assert counts["NEV"] == 0
    assert 2.4 < counts["MEL"] / counts["BCC"] < 3.8
    assert {len(s.lesions) for s in specs} == {2, 3}
    assert all(0.02 <= lesion.area_fraction <= 0.05 for lesion in lesions)
    assert all(0.4 <= lesion.center[0] <= 0.6 and 0.4 <= lesion.center[1] <= 0.6 for lesion in lesions)
    assert {s.fitzpatrick for s in specs} == {5, 6}


def test_anywhere_keeps_lesions_inside_the_image_and_skin_rgbs_are_used():
    dist = SpecDistribution({"MEL": 1.0}, area_fraction_range=(0.1, 0.2), skin_rgbs=[(10, 20, 30)])
    for i in range(50):
        spec = spec_for_index(dist, size=64, batch_seed=3, index=i)
        assert isinstance(spec, MapSpec) and spec.skin_rgb == (10, 20, 30)
        region = spec.lesions[0].region(64)
        assert region.sum() > 0.08 * 64 * 64  # not clipped away at the border


def test_distribution_round_trips_through_json():
    dist = SpecDistribution(
        {"MEL": 1.0},
        location=(0.1, 0.2, 0.3, 0.4),
        fitzpatrick_weights={1: 2.0, 3: 1.0},
        lesions_per_image=(1, 2),
    )
    again = SpecDistribution.from_dict(json.loads(json.dumps(dist.to_dict())))
    assert again == dist
    assert spec_for_index(again, size=32, batch_seed=5, index=2) == spec_for_index(
        dist, size=32, batch_seed=5, index=2
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"condition_weights": {}}, "condition_weights"),
        ({"condition_weights": {"MEL": -1.0}}, "condition_weights"),
        ({"condition_weights": {"MEL": 0.0}}, "condition_weights"),
        ({"area_fraction_range": (0.0, 0.1)}, "area_fraction_range"),
        ({"area_fraction_range": (0.2, 0.1)}, "area_fraction_range"),
        ({"area_fraction_range": (0.1, 1.5)}, "area_fraction_range"),
        ({"area_fraction_range": (0.1, 0.9)}, "area_fraction_range"),
        ({"location": "edge"}, "location"),
        ({"location": (0.5, 0.5, 0.2, 0.9)}, "location"),
        ({"lesions_per_image": (0, 2)}, "lesions_per_image"),
        ({"lesions_per_image": (3, 2)}, "lesions_per_image"),
        ({"fitzpatrick_weights": {7: 1.0}}, "fitzpatrick_weights"),
        ({"skin_rgbs": [(300, 0, 0)]}, "skin_rgbs"),
        ({"skin_rgbs": []}, "skin_rgbs"),
        ({"skin_rgbs": [(1, 2, 3)], "fitzpatrick_weights": {1: 1.0}}, "skin_rgbs"),
    ],
)
def test_an_invalid_distribution_names_the_field(kwargs, field):
    kwargs = {"condition_weights": {"MEL": 1.0}} | kwargs
    with pytest.raises(ValueError, match=field):
        SpecDistribution(**kwargs).validate()


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown spec distribution fields"):
        SpecDistribution.from_dict({"condition_weights": {"MEL": 1}, "colour": "red"})
