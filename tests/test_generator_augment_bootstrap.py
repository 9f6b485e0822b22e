"""generator.augment.bootstrap: the metrics by hand, and what the seed-and-patient bootstrap must do."""

from __future__ import annotations

import numpy as np
import pytest

from generator.augment import ArmPredictions, seed_patient_bootstrap

CLASSES = ["A", "B", "C"]


def _arm(pred_rows, y) -> ArmPredictions:
    pred = np.asarray(pred_rows)
    return ArmPredictions(pred=pred, top3=np.ones_like(pred, dtype=bool))


def test_the_metrics_match_a_hand_computed_confusion_matrix():
    #            true: A A A A B B C C      pred: A A B C B A C C
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    arm = _arm([[0, 0, 1, 2, 1, 0, 2, 2]] * 2, y)
    results, _ = seed_patient_bootstrap({"x": arm}, y, [f"p{i}" for i in range(8)], CLASSES, n_bootstrap=10)
    r = results["x"]
    # sensitivity A 2/4, B 1/2, C 2/2; specificity A 3/4 (B5 predicted A), B 5/6, C 5/6
    assert [r["sensitivity"][c]["value"] for c in CLASSES] == pytest.approx([0.5, 0.5, 1.0])
    assert [r["specificity"][c]["value"] for c in CLASSES] == pytest.approx([3 / 4, 5 / 6, 5 / 6])
    assert r["balanced_accuracy"]["value"] == pytest.approx(2 / 3)
    # F1 = 2TP / (2TP + FP + FN): A 4/7, B 2/4, C 4/5
    assert r["macro_f1"]["value"] == pytest.approx((4 / 7 + 2 / 4 + 4 / 5) / 3)
    assert r["top1"]["value"] == pytest.approx(5 / 8)
    assert r["sensitivity"]["B"]["warning"].startswith("only 2 test images")


def test_identical_arms_differ_by_exactly_zero_and_a_clear_gain_is_significant():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    groups = [f"p{i // 2}" for i in range(60)]
    noisy = np.where(rng.random((5, 60)) < 0.5, y, (y + 1) % 3)  # each seed right about half the time
    arms = {"a": _arm(noisy, y), "same": _arm(noisy.copy(), y), "perfect": _arm(np.tile(y, (5, 1)), y)}
    _, diff = seed_patient_bootstrap(
        arms, y, groups, CLASSES, comparisons=[("a", "same"), ("a", "perfect")], n_bootstrap=500
    )
    same = diff["same_vs_a"]["balanced_accuracy"]
    assert (same["value"], same["ci_low"], same["ci_high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert not same["significant"]
    gain = diff["perfect_vs_a"]["balanced_accuracy"]
    assert gain["significant"] and gain["ci_low"] > 0.3 and gain["p_value"] <= 2 / 500


def test_the_interval_includes_the_spread_between_training_seeds():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 80)
    groups = [f"p{i}" for i in range(80)]
    # seeds that disagree a lot: one model near-perfect, another near chance
    quality = np.array([0.95, 0.35, 0.9, 0.4, 0.6])[:, None]
    varied = np.where(rng.random((5, 80)) < quality, y, (y + 1) % 3)
    one_seed_five_times = np.tile(varied[4], (5, 1))
    results, _ = seed_patient_bootstrap(
        {"varied": _arm(varied, y), "fixed": _arm(one_seed_five_times, y)},
        y,
        groups,
        CLASSES,
        n_bootstrap=500,
    )

    def width(arm: str) -> float:
        return results[arm]["top1"]["ci_high"] - results[arm]["top1"]["ci_low"]

    # same mean quality, but the interval of disagreeing seeds is far wider than test sampling alone
    assert width("varied") > 2 * width("fixed")
    assert results["varied"]["per_seed"]["top1"][0] > 0.85 > 0.5 > results["varied"]["per_seed"]["top1"][1]


def test_a_patients_images_are_resampled_together():
    rng = np.random.default_rng(2)
    y0 = rng.integers(0, 3, 40)
    pred0 = np.where(rng.random((3, 40)) < 0.6, y0, (y0 + 1) % 3)
    # each image photographed four times: as one patient the information is the same as before
    y4, pred4 = np.repeat(y0, 4), np.repeat(pred0, 4, axis=1)
    kwargs = dict(n_bootstrap=800, seed=3)
    one = seed_patient_bootstrap({"m": _arm(pred0, y0)}, y0, [f"p{i}" for i in range(40)], CLASSES, **kwargs)
    clustered = seed_patient_bootstrap(
        {"m": _arm(pred4, y4)}, y4, [f"p{i // 4}" for i in range(160)], CLASSES, **kwargs
    )
    independent = seed_patient_bootstrap(
        {"m": _arm(pred4, y4)}, y4, [f"p{i}" for i in range(160)], CLASSES, **kwargs
    )

    def width(result) -> float:
        ci = result[0]["m"]["top1"]
        return ci["ci_high"] - ci["ci_low"]

    assert width(clustered) == pytest.approx(width(one), rel=0.05)
    assert width(independent) < 0.75 * width(clustered)  # treating photos as patients: too narrow


def test_arms_with_different_numbers_of_seeds_are_refused():
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="same number of seeds"):
        seed_patient_bootstrap(
            {"a": _arm([[0, 1, 2]], y), "b": _arm([[0, 1, 2]] * 2, y)}, y, ["p0", "p1", "p2"], CLASSES
        )
