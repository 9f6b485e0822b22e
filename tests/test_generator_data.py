from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generator.data import (
    DEMO_CONDITIONS,
    ManifestDataset,
    ProceduralDataset,
    augment,
    procedural_sample,
    read_manifest,
)
from generator.semantic_map import encode, map_from_annotation, rgb_to_lab

CONDITIONS = ("MEL", "BCC", "SCC", "AK", "SEK", "NEV", "PSO", "VASC", "OTH")


def test_a_procedural_sample_is_deterministic_from_its_seed():
    a = procedural_sample(seed=11, size=64)
    b = procedural_sample(seed=11, size=64)
    c = procedural_sample(seed=12, size=64)
    assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.mask, b.mask)
    assert a.image.tobytes() != c.image.tobytes()
    assert a.image.size == (64, 64) and a.image.mode == "RGB"
    assert a.mask.dtype == bool and a.mask.shape == (64, 64)


def test_the_mask_marks_exactly_the_pixels_that_look_like_lesion():
    for seed, condition in enumerate(DEMO_CONDITIONS):
        s = procedural_sample(seed=seed, size=96, condition=condition, fitzpatrick=2)
        lab = rgb_to_lab(np.asarray(s.image))
        inside, outside = lab[s.mask], lab[~s.mask]
        assert 0.002 < s.mask.mean() < 0.4
        # lesion pixels are far from the healthy-skin colour on average
        skin = np.median(outside, axis=0)
        assert np.linalg.norm(inside.mean(0) - skin) > 2 * np.linalg.norm(outside.mean(0) - skin) + 5
        assert not s.mask[0].any() and not s.mask[:, 0].any()  # lesions stay inside the frame


def test_skin_types_one_to_six_get_darker():
    lightness = []
    for k in range(1, 7):
        values = [
            np.median(rgb_to_lab(np.asarray(s.image))[~s.mask][:, 0])
            for s in (procedural_sample(seed=i, size=48, fitzpatrick=k, condition="NEV") for i in range(3))
        ]
        lightness.append(np.mean(values))
    assert all(a > b for a, b in zip(lightness, lightness[1:]))
    assert lightness[0] - lightness[-1] > 25


def _features(s):
    lab = rgb_to_lab(np.asarray(s.image))[s.mask]
    return np.concatenate([lab.mean(0), lab.std(0), np.percentile(lab[:, 0], [10, 90])])


def test_conditions_are_visibly_different_a_nearest_centroid_rule_tells_them_apart():
    train = {
        c: np.mean([_features(procedural_sample(seed=i, size=64, condition=c)) for i in range(8)], 0)
        for c in DEMO_CONDITIONS
    }
    centroids = np.stack([train[c] for c in DEMO_CONDITIONS])
    scale = centroids.std(0) + 1e-6
    correct = total = 0
    for c in DEMO_CONDITIONS:
        for i in range(100, 106):
            f = _features(procedural_sample(seed=i, size=64, condition=c))
            guess = DEMO_CONDITIONS[int(np.argmin((((centroids - f) / scale) ** 2).sum(1)))]
            correct += guess == c
            total += 1
    assert correct / total >= 0.7  # chance is 1/7


def test_the_spec_encodes_to_the_same_map_as_the_annotation():
    s = procedural_sample(seed=5, size=64, condition="BCC")
    assert s.spec.lesions[0].condition == "BCC" and np.array_equal(s.spec.lesions[0].mask, s.mask)
    assert torch.equal(
        encode(s.spec, CONDITIONS), map_from_annotation(np.asarray(s.image), s.mask, "BCC", CONDITIONS)
    )


def test_procedural_sample_rejects_bad_arguments():
    with pytest.raises(ValueError, match="condition"):
        procedural_sample(seed=0, condition="ACN")
    with pytest.raises(ValueError, match="fitzpatrick"):
        procedural_sample(seed=0, fitzpatrick=0)
    with pytest.raises(ValueError, match="seed"):
        procedural_sample(seed=-1)
    with pytest.raises(ValueError, match="size"):
        procedural_sample(seed=0, size=8)


def test_procedural_dataset_yields_maps_images_and_masks_in_range():
    ds = ProceduralDataset(4, size=32, conditions=CONDITIONS, seed=3)
    semantic, image, mask = ds[1]
    assert (
        semantic.shape == (4 + len(CONDITIONS), 32, 32)
        and image.shape == (3, 32, 32)
        and mask.shape == (1, 32, 32)
    )
    assert image.min() >= -1 and image.max() <= 1
    assert torch.equal(semantic[3:4], mask)
    with pytest.raises(ValueError, match="procedural condition codes"):
        ProceduralDataset(2, size=32, conditions=("MEL",))


def test_augmentation_is_reproducible_per_epoch_and_keeps_maps_binary():
    ds = ProceduralDataset(3, size=48, conditions=CONDITIONS, seed=1, augment=True)
    first = [ds[i] for i in range(3)]
    assert all(torch.equal(a, b) for i in range(3) for a, b in zip(first[i], ds[i]))
    ds.set_epoch(1)
    second = [ds[i] for i in range(3)]
    assert any(not torch.equal(first[i][1], second[i][1]) for i in range(3))
    for semantic, _, mask in first + second:
        assert set(torch.unique(semantic[3:]).tolist()) <= {0.0, 1.0} and mask.any()
        assert torch.equal(semantic[3:4], mask)


def test_augment_flips_map_image_and_mask_together():
    semantic = torch.zeros(5, 8, 8)
    image = torch.zeros(3, 8, 8)
    mask = torch.zeros(1, 8, 8)
    semantic[3, 0, 0] = image[:, 0, 0] = mask[0, 0, 0] = 1
    for seed in range(10):
        s, i, m = augment(semantic, image, mask, np.random.default_rng(seed), max_crop=0.0)
        assert torch.equal(s[3], m[0]) and torch.equal(i[0], m[0]) and m.sum() == 1


def _write_manifest(tmp_path, rows, header="image,mask,condition,skin_type"):
    lines = [header] + [",".join(r) for r in rows]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_pair(tmp_path, name, seed, condition):
    s = procedural_sample(seed=seed, size=80, condition=condition)
    # a non-square photo exercises the centre crop
    canvas = Image.new("RGB", (100, 80), (0, 0, 0))
    canvas.paste(s.image, (10, 0))
    canvas.save(tmp_path / f"{name}.png")
    mask = Image.new("L", (100, 80), 0)
    mask.paste(Image.fromarray(s.mask.astype(np.uint8) * 255), (10, 0))
    mask.save(tmp_path / f"{name}_mask.png")
    return s


def test_manifest_dataset_reads_photos_and_masks_relative_to_the_csv(tmp_path):
    s = _write_pair(tmp_path, "a", 1, "MEL")
    _write_pair(tmp_path, "b", 2, "PSO")
    path = _write_manifest(
        tmp_path, [("a.png", "a_mask.png", "MEL", "2.0"), ("b.png", "b_mask.png", "PSO", "")]
    )
    ds = ManifestDataset(path, size=40, conditions=CONDITIONS)
    assert len(ds) == 2 and [r.skin_type for r in ds.rows] == [2, None]
    semantic, image, mask = ds[0]
    assert semantic.shape == (13, 40, 40) and image.shape == (3, 40, 40)
    expected = torch.from_numpy(np.array(Image.fromarray(s.mask).resize((40, 40), Image.NEAREST)))
    assert (mask[0].bool() == expected).float().mean() > 0.97
    assert semantic[4 + CONDITIONS.index("MEL")].sum() == mask.sum()


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("a.png", "a_mask.png", "XYZ", "")], None, "line 2: condition 'XYZ'"),
        ([("a.png", "nope.png", "MEL", "")], None, "line 2: mask file .* does not exist"),
        ([("a.png", "", "MEL", "")], None, "line 2: mask is empty"),
        ([("a.png", "a_mask.png", "MEL", "7")], None, "line 2: skin_type '7'"),
        ([("a.png", "a_mask.png", "MEL", "pale")], None, "line 2: skin_type 'pale'"),
        ([("a.png", "MEL")], "image,condition", r"missing column\(s\) \['mask'\]"),
        ([], None, "has no rows"),
    ],
)
def test_a_bad_manifest_is_refused_with_its_line(tmp_path, rows, header, message):
    _write_pair(tmp_path, "a", 1, "MEL")
    path = _write_manifest(tmp_path, rows, *([header] if header else []))
    with pytest.raises(ValueError, match=message):
        read_manifest(path, CONDITIONS)


def test_the_taxonomy_matches_the_platform_condition_fixture_order():
    import json
    from pathlib import Path

    from generator.data import TAXONOMY_CONDITIONS

    rows = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "conditions.json").read_text())
    by_index = sorted((r["fields"]["map_index"], r["fields"]["code"]) for r in rows)
    assert tuple(code for _, code in by_index) == TAXONOMY_CONDITIONS
    assert set(DEMO_CONDITIONS) <= set(TAXONOMY_CONDITIONS)
