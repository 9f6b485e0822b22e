from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from generator.semantic_map import (
    FITZPATRICK_LAB,
    FITZPATRICK_RGB,
    LesionSpec,
    MapSpec,
    encode,
    encode_batch,
    estimate_skin_colour,
    fitzpatrick_from_ita,
    ita_degrees,
    lab_to_rgb,
    map_from_annotation,
    rgb_from_ita,
    rgb_to_lab,
)

CONDITIONS = ("MEL", "BCC", "NEV")


def _spec(**kw):
    lesions = kw.pop("lesions", (LesionSpec("MEL"),))
    return MapSpec(size=kw.pop("size", 32), lesions=lesions, **({"fitzpatrick": 3} | kw))


def test_lab_conversion_matches_published_reference_values():
    # sRGB white and the sRGB red primary, CIELAB D65 (Bruce Lindbloom's calculator).
    np.testing.assert_allclose(rgb_to_lab(np.array([255, 255, 255])), [100.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(rgb_to_lab(np.array([255, 0, 0])), [53.24, 80.09, 67.20], atol=0.05)
    rgb = np.array([[12, 200, 99], [250, 3, 140]])
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-6)


def test_the_documented_fitzpatrick_colours_are_the_lab_anchors_and_fall_in_their_ita_group():
    for k, lab in FITZPATRICK_LAB.items():
        assert tuple(int(round(v)) for v in lab_to_rgb(np.array(lab))) == FITZPATRICK_RGB[k]
        assert fitzpatrick_from_ita(ita_degrees(lab[0], lab[2])) == k


def test_ita_uses_the_chardon_formula_and_del_bino_thresholds():
    assert ita_degrees(50.0, 20.0) == 0.0
    assert ita_degrees(70.0, 20.0) == pytest.approx(45.0)
    assert [fitzpatrick_from_ita(a) for a in (60, 50, 30, 20, 0, -40)] == [1, 2, 3, 4, 5, 6]
    assert fitzpatrick_from_ita(55.0) == 2  # "very light" is strictly above 55°


@pytest.mark.parametrize("fitzpatrick", range(1, 7))
def test_estimate_reads_uniform_skin_of_each_type_back(fitzpatrick):
    image = np.tile(np.array(FITZPATRICK_RGB[fitzpatrick], np.uint8), (40, 40, 1))
    est = estimate_skin_colour(image)
    assert est.rgb == FITZPATRICK_RGB[fitzpatrick]
    assert est.fitzpatrick == fitzpatrick


def test_estimate_ignores_the_lesion_and_a_minority_of_hair_pixels():
    skin = np.array(FITZPATRICK_RGB[2], np.uint8)
    image = np.tile(skin, (64, 64, 1))
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    image[mask] = (40, 20, 10)  # a dark lesion covering a quarter of the image
    image[::7, :] = (20, 15, 10)  # hair strands: ~14% of the rows
    est = estimate_skin_colour(image, mask)
    assert est.rgb == FITZPATRICK_RGB[2]
    # without the mask the lesion lies inside the ring-free centre, so the ring still works
    assert estimate_skin_colour(image).rgb == FITZPATRICK_RGB[2]
    # a mean in RGB would have been pulled far towards the lesion colour
    assert np.abs(image.reshape(-1, 3).mean(0) - skin).max() > 20


def test_estimate_rejects_bad_input_naming_the_field():
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="lesion_mask is empty"):
        estimate_skin_colour(image, np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="lesion_mask covers the whole image"):
        estimate_skin_colour(image, np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="lesion_mask shape"):
        estimate_skin_colour(image, np.ones((16, 16), bool))
    with pytest.raises(ValueError, match="image must be uint8"):
        estimate_skin_colour(image.astype(np.float32))
    with pytest.raises(ValueError, match="image must have shape"):
        estimate_skin_colour(image[..., 0])


def test_encode_follows_the_channel_layout():
    spec = MapSpec(
        size=32,
        lesions=(
            LesionSpec("BCC", center=(0.25, 0.25), area_fraction=0.05),
            LesionSpec("NEV", center=(0.75, 0.75)),
        ),
        skin_rgb=(255, 0, 128),
    )
    m = encode(spec, CONDITIONS)
    assert m.shape == (7, 32, 32) and m.dtype == torch.float32
    torch.testing.assert_close(m[0:3, 5, 5], torch.tensor([1.0, -1.0, 128 / 127.5 - 1]))
    assert torch.equal(m[3], ((m[5] + m[6]) > 0).float())  # mask = union of lesions
    assert m[4].sum() == 0  # no MEL lesion
    assert m[5, 8, 8] == 1 and m[5, 24, 24] == 0 and m[6, 24, 24] == 1
    # area_fraction is the fraction of the image area, within rasterisation error
    assert m[5].mean().item() == pytest.approx(0.05, rel=0.15)
    assert set(torch.unique(m[3:]).tolist()) <= {0.0, 1.0}


def test_ellipse_aspect_and_angle_orient_the_lesion():
    flat = LesionSpec("MEL", area_fraction=0.1, aspect=4.0, angle_deg=0.0).region(64)
    upright = LesionSpec("MEL", area_fraction=0.1, aspect=4.0, angle_deg=90.0).region(64)
    ys, xs = np.nonzero(flat)
    assert np.ptp(xs) > 3 * np.ptp(ys)
    assert np.array_equal(upright, flat.T)


def test_a_given_mask_is_resized_to_the_map_size():
    mask = np.zeros((100, 100), bool)
    mask[:50, :50] = True
    region = LesionSpec("MEL", mask=mask).region(10)
    assert region[:5, :5].all() and region.sum() == 25


def test_spec_round_trips_through_json_including_masks():
    mask = np.random.default_rng(0).random((17, 23)) > 0.5
    spec = MapSpec(
        size=64,
        lesions=(
            LesionSpec("MEL", center=(0.3, 0.6), area_fraction=0.02, aspect=2.0, angle_deg=30.0),
            LesionSpec("BCC", mask=mask),
        ),
        ita_degrees=20.0,
    )
    again = MapSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert np.array_equal(again.lesions[1].mask, mask)
    assert torch.equal(encode(again, CONDITIONS), encode(spec, CONDITIONS))


def test_each_skin_source_resolves_to_a_documented_colour():
    assert _spec(fitzpatrick=5).resolved_skin_rgb() == FITZPATRICK_RGB[5]
    assert MapSpec(size=8, lesions=(LesionSpec("MEL"),), skin_rgb=(1, 2, 3)).resolved_skin_rgb() == (1, 2, 3)
    # ITA values at the anchors give the anchor colours; in between, colours in between
    anchor = FITZPATRICK_LAB[4]
    assert rgb_from_ita(ita_degrees(anchor[0], anchor[2])) == FITZPATRICK_RGB[4]
    mid = rgb_from_ita(0.0)
    assert all(FITZPATRICK_RGB[5][c] <= mid[c] <= FITZPATRICK_RGB[4][c] for c in range(3))
    for ita in (-80.0, -20.0, 0.0, 30.0, 50.0, 80.0):  # the implied colour has the asked-for group
        rgb = MapSpec(size=8, lesions=(LesionSpec("MEL"),), ita_degrees=ita).resolved_skin_rgb()
        lab = rgb_to_lab(np.array(rgb))
        if -53 < ita < 59:  # inside the anchors' range
            assert ita_degrees(lab[0], lab[2]) == pytest.approx(ita, abs=2.5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"area_fraction": 0.0}, "area_fraction"),
        ({"area_fraction": -0.1}, "area_fraction"),
        ({"area_fraction": 1.5}, "area_fraction .* larger than the image"),
        ({"center": (1.2, 0.5)}, "center .* outside the image"),
        ({"center": (0.5, -0.01)}, "center .* outside the image"),
        ({"center": (math.nan, 0.5)}, "center"),
        ({"center": "middle"}, "center"),
        ({"aspect": 0.5}, "aspect"),
        ({"area_fraction": 0.6, "aspect": 4.0}, "area_fraction .* larger than the image"),
        ({"angle_deg": math.inf}, "angle_deg"),
        ({"condition": ""}, "condition"),
        ({"mask": np.zeros((8, 8), bool)}, "mask is empty"),
        ({"mask": np.full((8, 8), 2)}, "mask must be boolean"),
        ({"mask": np.ones(8, bool)}, "mask must be a 2-D array"),
    ],
)
def test_invalid_lesion_specs_name_the_field(kwargs, field):
    kwargs = {"condition": "MEL"} | kwargs
    with pytest.raises(ValueError, match=field):
        LesionSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": 10_000}, "size"),
        ({"size": 32.5}, "size"),
        ({"lesions": ()}, "lesions"),
        ({"lesions": ("MEL",)}, r"lesions\[0\]"),
        ({"fitzpatrick": None}, "exactly one"),
        ({"skin_rgb": (1, 2, 3)}, "exactly one"),
        ({"fitzpatrick": 7}, "fitzpatrick"),
        ({"fitzpatrick": None, "skin_rgb": (256, 0, 0)}, "skin_rgb"),
        ({"fitzpatrick": None, "skin_rgb": (-1, 0, 0)}, "skin_rgb"),
        ({"fitzpatrick": None, "skin_rgb": (0.5, 0.2, 0.1)}, "skin_rgb"),
        ({"fitzpatrick": None, "skin_rgb": (1, 2)}, "skin_rgb"),
        ({"fitzpatrick": None, "ita_degrees": 95.0}, "ita_degrees"),
    ],
)
def test_invalid_map_specs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _spec(**kwargs)


def test_an_unknown_condition_is_refused_when_encoding():
    with pytest.raises(ValueError, match=r"lesions\[0\].condition 'XYZ' is unknown"):
        encode(_spec(lesions=(LesionSpec("XYZ"),)), CONDITIONS)
    with pytest.raises(ValueError, match="size differs"):
        encode_batch([_spec(size=16), _spec(size=32)], CONDITIONS)


def test_encode_batch_stacks_maps():
    specs = [_spec(), _spec(lesions=(LesionSpec("NEV", center=(0.1, 0.9)),))]
    batch = encode_batch(specs, CONDITIONS)
    assert batch.shape == (2, 7, 32, 32)
    assert torch.equal(batch[1], encode(specs[1], CONDITIONS))


def test_a_map_from_an_annotated_photo_carries_its_skin_colour_and_mask():
    image = np.tile(np.array(FITZPATRICK_RGB[6], np.uint8), (48, 40, 1))
    mask = np.zeros((48, 40), bool)
    mask[10:20, 5:30] = True
    image[mask] = (200, 40, 40)
    m = map_from_annotation(image, mask, "NEV", CONDITIONS)
    assert m.shape == (7, 48, 40)
    expected = torch.tensor(FITZPATRICK_RGB[6], dtype=torch.float32) / 127.5 - 1
    torch.testing.assert_close(m[0:3, 0, 0], expected)
    assert np.array_equal(m[3].bool().numpy(), mask) and torch.equal(m[6], m[3])
    with pytest.raises(ValueError, match="condition 'ACN' is unknown"):
        map_from_annotation(image, mask, "ACN", CONDITIONS)
    with pytest.raises(ValueError, match="mask is empty"):
        map_from_annotation(image, np.zeros_like(mask), "NEV", CONDITIONS)
