"""generator.augment: the experiment end to end on procedural data, and its statistics."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch

from generator.augment import (
    ALL_ARMS,
    DEFAULT_ARMS,
    AugmentationConfig,
    PoolSource,
    grouped_split,
    mcnemar_exact,
    run_augmentation_experiment,
)
from generator.augment import stats as augment_stats
from generator.classifier import load_classifier
from generator.data import procedural_sample

SIZE = 32


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Tiny networks run fastest on one thread, especially on a shared, loaded CPU."""


def _procedural_set(counts: dict[str, int], *, seed0: int, per_patient: int = 2):
    images, labels, groups, ids = [], [], [], []
    seed = seed0
    for cond, n in counts.items():
        for i in range(n):
            images.append(procedural_sample(seed=seed, size=SIZE, condition=cond).image)
            labels.append(cond)
            groups.append(f"{cond}-p{i // per_patient}")
            ids.append(f"img{seed}")
            seed += 1
    return images, labels, groups, ids


def test_grouped_split_never_puts_one_patient_on_both_sides_and_tests_every_condition():
    labels = ["A"] * 20 + ["B"] * 20 + ["C"] * 4
    groups = [f"p{i // 2}" for i in range(44)]  # two images per patient
    train, test = grouped_split(labels, groups, test_fraction=0.25, seed=1)
    assert set(train) | set(test) == set(range(44)) and not set(train) & set(test)
    assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert {labels[i] for i in test} == {"A", "B", "C"}
    again = grouped_split(labels, groups, test_fraction=0.25, seed=1)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # b = 10, c = 2: p = 2 · P(X ≤ 2 | n = 12, 1/2) = 2 · (1 + 12 + 66) / 4096 = 0.0385742...
    a = [True] * 10 + [False] * 2 + [True] * 5
    b = [False] * 10 + [True] * 2 + [True] * 5  # five concordant pairs do not matter
    result = mcnemar_exact(a, b)
    assert (result["a_only_correct"], result["b_only_correct"]) == (10, 2)
    assert result["p_value"] == pytest.approx(158 / 4096, rel=1e-12)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0


def _config(**overrides) -> AugmentationConfig:
    settings = dict(
        image_size=SIZE,
        width=8,
        depth=3,
        epochs=3,
        batch_size=16,
        n_bootstrap=200,
        n_seeds=2,
        seed=7,
        device="cpu",
        progress=False,
        test_fraction=0.3,
    )
    return AugmentationConfig(**{**settings, **overrides})


def test_the_experiment_runs_every_arm_with_every_seed_end_to_end(tmp_path):
    counts = {"MEL": 24, "NEV": 24, "VASC": 8}  # VASC is the rare one
    images, labels, groups, ids = _procedural_set(counts, seed0=0)
    syn_images, syn_labels, _, syn_ids = _procedural_set({"VASC": 12}, seed0=10_000)
    pool = PoolSource({"VASC": [(im, {"id": i}) for im, i in zip(syn_images, syn_ids)]})
    config = _config(arms=ALL_ARMS, save_models="all")
    seen = []
    report = run_augmentation_experiment(
        images=images,
        labels=labels,
        groups=groups,
        ids=ids,
        synthetic=pool,
        config=config,
        out_dir=tmp_path,
        on_progress=lambda f, m: seen.append(f),
    )

    # the rarest condition was chosen and got ratio × its real training images
    assert report["chosen_conditions"] == ["VASC"]
    vasc = report["synthetic"]["VASC"]
    assert (
        vasc["added"] == vasc["requested"] == vasc["real_train"] == report["split"]["counts"]["VASC"]["train"]
    )
    arms = report["arms"]
    assert list(arms) == list(ALL_ARMS)
    n_real = arms["baseline"]["n_train"]
    # every image-adding arm adds exactly as many as the synthetic arm
    for name in ("oversample", "synthetic", "copies"):
        assert arms[name]["n_added"] == vasc["added"] and arms[name]["n_train"] == n_real + vasc["added"]
    assert arms["synthetic_oversample"]["n_added"] == 2 * vasc["added"]
    assert (
        arms["reweight"]["n_train"] == n_real and arms["reweight"]["class_weights"][2] > 1
    )  # VASC weighs more

    # disjoint patient-grouped split, one for every arm and seed
    split = report["split"]
    assert not set(split["train_ids"]) & set(split["test_ids"])
    assert not set(split["train_groups"]) & set(split["test_groups"])
    assert len(split["train_ids"]) + len(split["test_ids"]) == len(images)
    assert report["statistics"]["training_seeds"] == [7, 8]
    for name, arm in arms.items():
        test = arm["test"]
        assert test["n"] == len(split["test_ids"]) and test["n_seeds"] == 2
        for metric in ("balanced_accuracy", "macro_f1", "top1", "top3"):
            assert 0 <= test[metric]["ci_low"] <= test[metric]["value"] <= test[metric]["ci_high"] <= 1
            assert test[metric]["value"] == pytest.approx(np.mean(test["per_seed"][metric]))
        assert set(test["sensitivity"]) == set(test["specificity"]) == set(counts)
        assert "warning" in test["sensitivity"]["VASC"]  # 2 test images < min_count
        assert [run["seed"] for run in arm["seeds"]] == [7, 8]
        for run in arm["seeds"]:
            assert len(run["history"]["loss"]) == 3
            # every checkpoint is real, loads, and is the model the report describes
            model, meta, sha = load_classifier(tmp_path / run["checkpoint"])
            assert sha == run["checkpoint_sha256"] and (meta["arm"], meta["seed"]) == (name, run["seed"])
    assert arms["baseline"]["test"]["top3"]["value"] == 1.0  # only 3 classes: top-3 is trivial

    # the headline compares synthetic with the best non-synthetic arm; the null check sits beside it
    head, null = report["headline"], report["null_check"]
    non_synthetic = ["baseline", "oversample", "reweight", "copies"]
    best = max(arms[a]["test"]["balanced_accuracy"]["value"] for a in non_synthetic)
    assert head["comparator"] in non_synthetic
    assert arms[head["comparator"]]["test"]["balanced_accuracy"]["value"] == best
    assert head["comparison"] == f"synthetic_vs_{head['comparator']}" in report["comparisons"]
    assert (null["arm"], null["comparator"], null["comparison"]) == (
        "copies",
        "oversample",
        "copies_vs_oversample",
    )
    assert null["passed"] == (not null["significant_gain"])
    diff = report["comparisons"]["synthetic_vs_baseline"]["balanced_accuracy"]
    expected = (
        arms["synthetic"]["test"]["balanced_accuracy"]["value"]
        - arms["baseline"]["test"]["balanced_accuracy"]["value"]
    )
    assert diff["value"] == pytest.approx(expected) and 0 <= diff["p_value"] <= 1
    assert {h["condition"] for h in report["highlights"]} == {"VASC", "MEL"}  # rare + malignant
    assert set(report["highlights"][0]["sensitivity"]) == set(ALL_ARMS)
    assert seen[-1] == 1.0 and seen == sorted(seen)

    # the files on disk: every arm, every seed and the null check in the page
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["null_check"] == report["null_check"]
    html = (tmp_path / "report.html").read_text()
    assert "Null check" in html and "copies − oversample" in html
    for name in ALL_ARMS:
        assert f"<td>{name}</td><td>7</td>" in html and f"<td>{name}</td><td>8</td>" in html
    for plot in ("arms", "sensitivity", "headline", "training_loss"):
        assert f"plots/{plot}.png" in html
        assert (tmp_path / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"

    # seeded: the same call reproduces the same numbers and weights
    again = run_augmentation_experiment(
        images=images,
        labels=labels,
        groups=groups,
        ids=ids,
        synthetic=pool,
        config=config,
        out_dir=tmp_path / "again",
    )
    assert again["arms"]["synthetic"]["test"] == report["arms"]["synthetic"]["test"]
    assert again["arms"]["copies"]["seeds"] == report["arms"]["copies"]["seeds"]


def test_copies_give_no_significant_gain_over_oversampling_at_the_default_settings(tmp_path):
    """The built-in null check on procedural data: repeated real images carry no information,
    so with the default statistics (5 seeds, 1000 draws, ratio 1, default arms) the protocol
    must not credit them with a gain over oversampling. The classifier is small but learns
    (balanced accuracy well above chance), so the arms genuinely differ seed to seed."""
    images, labels, groups, ids = _procedural_set({"MEL": 44, "NEV": 44, "VASC": 12}, seed0=0)
    syn_images, _, _, syn_ids = _procedural_set({"VASC": 12}, seed0=10_000)
    pool = PoolSource({"VASC": [(im, {"id": i}) for im, i in zip(syn_images, syn_ids)]})
    defaults = AugmentationConfig()
    config = _config(epochs=10, lr=5e-3, n_bootstrap=defaults.n_bootstrap, n_seeds=defaults.n_seeds, seed=0)
    assert (config.arms, config.ratio, config.n_seeds) == (DEFAULT_ARMS, 1.0, 5)
    report = run_augmentation_experiment(
        images=images, labels=labels, groups=groups, ids=ids, synthetic=pool, config=config, out_dir=tmp_path
    )
    # the models learn (chance: 1/3), and giving VASC more weight helps — the effect copies must not beat
    assert report["arms"]["baseline"]["test"]["balanced_accuracy"]["value"] > 0.45
    assert report["arms"]["oversample"]["test"]["balanced_accuracy"]["value"] > 0.65
    null = report["null_check"]
    d = null["difference"]
    assert null["passed"] and not null["significant_gain"]
    assert d["ci_low"] < 0 < d["ci_high"] and d["p_value"] > 0.05
    # the interval is honest about seeds: wider than the spread of the per-seed differences alone
    per_seed = np.subtract(
        report["arms"]["copies"]["test"]["per_seed"]["balanced_accuracy"],
        report["arms"]["oversample"]["test"]["per_seed"]["balanced_accuracy"],
    )
    assert d["ci_high"] - d["ci_low"] > np.std(per_seed) > 0


def test_the_experiment_rejects_an_unknown_chosen_condition(tmp_path):
    images, labels, groups, ids = _procedural_set({"MEL": 4, "NEV": 4}, seed0=0)
    config = _config(conditions=("SCC",), width=4, depth=2, epochs=1)
    with pytest.raises(ValueError, match="SCC"):
        run_augmentation_experiment(
            images=images,
            labels=labels,
            groups=groups,
            ids=ids,
            synthetic=PoolSource({}),
            config=config,
            out_dir=tmp_path,
        )


def _tiny_checkpoint(path, conditions=("MEL", "NEV", "VASC")):
    from generator import checkpoint as ckpt_lib
    from generator.config import GeneratorConfig
    from generator.networks import build_generator

    config = GeneratorConfig(conditions=conditions, image_size=32, ngf=4, num_downs=5)
    torch.manual_seed(0)
    return ckpt_lib.save(path, model=build_generator(config), config=config, metadata={"training": {}})


def test_the_renderer_source_renders_seeded_images_whose_provenance_re_renders_them(tmp_path):
    from generator.augment import RendererSource
    from generator.render import Renderer
    from generator.semantic_map import MapSpec

    sha = _tiny_checkpoint(tmp_path / "g.pt")
    source = RendererSource(tmp_path / "g.pt", device="cpu")
    images, prov = source("VASC", 3, seed=11)
    assert len(images) == 3 and images[0].size == (32, 32)
    assert {p["checkpoint_sha256"] for p in prov} == {sha}
    again, _ = source("VASC", 3, seed=11)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    # image 1 alone, from its provenance, gives the same pixels
    one = Renderer(tmp_path / "g.pt", device="cpu").render_one(
        MapSpec.from_dict(prov[1]["spec"]), prov[1]["seed"]
    )
    assert np.array_equal(np.asarray(one), np.asarray(images[1]))
    with pytest.raises(ValueError, match="cannot render condition 'SCC'"):
        source("SCC", 1, seed=0)


def test_the_worked_example_in_the_mcnemar_docstring_holds():
    """pytest collects only tests/, so the docstring example runs here."""
    failures, attempted = doctest.testmod(augment_stats)
    assert attempted >= 1 and failures == 0
