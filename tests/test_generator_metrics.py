"""generator.metrics: the mathematics against known answers, then the CLI end to end."""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from generator import metrics
from generator.metrics import (
    FidelityResult,
    IncomparableResultsError,
    SetMetrics,
    compute_fidelity,
    feature_statistics,
    fid,
    frechet_distance,
    kernel_distance,
    kernel_distance_estimate,
    mean_pairwise_distance,
    mmd2_unbiased,
    ms_ssim,
    precision_recall,
    split_halves,
)
from generator.metrics import baseline as baseline_module


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """The CLI trains a tiny classifier: fastest on one thread on a shared CPU."""


# ------------------------------------------------------------------- Fréchet


def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 6))
    mu, sigma = feature_statistics(a)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_in_one_dimension_matches_the_closed_form():
    # W2² between N(m1, s1²) and N(m2, s2²) is (m1 - m2)² + (s1 - s2)²:
    # here (0 - 3)² + (1 - 2)² = 10.
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0, abs=1e-10)


def test_frechet_distance_of_diagonal_gaussians_sums_over_dimensions():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    by_hand = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2  # = 11
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(by_hand, abs=1e-9)


def test_frechet_distance_of_non_commuting_covariances_matches_the_eigenvalue_formula():
    # Tr((Σ1 Σ2)^½) = Σ sqrt(eig(Σ1^½ Σ2 Σ1^½)): an independent route to the same trace.
    rng = np.random.default_rng(2)
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    trace_root = np.sqrt(np.linalg.eigvalsh(root1 @ s2 @ root1)).sum()
    expected = 1.0 + np.trace(s1) + np.trace(s2) - 2 * trace_root  # means differ by 1 in one coordinate
    got = frechet_distance(np.zeros(4), s1, np.eye(4)[0], s2)
    assert got == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_stays_finite_for_singular_covariances_from_few_samples():
    rng = np.random.default_rng(3)
    # 6 samples in 32 dimensions: both covariances have rank ≤ 5.
    mu1, s1 = feature_statistics(rng.normal(size=(6, 32)))
    mu2, s2 = feature_statistics(rng.normal(size=(6, 32)))
    value = frechet_distance(mu1, s1, mu2, s2)
    assert math.isfinite(value) and value > 0
    # exactly rank-deficient and identical: still ≈ 0, not NaN
    singular = np.diag([1.0, 0.0, 0.0])
    assert frechet_distance(np.zeros(3), singular, np.zeros(3), singular) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ----------------------------------------------------------------------- KID


def test_unbiased_mmd_averages_to_zero_on_one_distribution_where_the_biased_one_does_not():
    rng = np.random.default_rng(4)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
        unbiased.append(mmd2_unbiased(x, y))
        k = metrics._polynomial_kernel
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    se = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * se  # unbiased: zero within three standard errors
    assert np.mean(biased) > 10 * se  # the V-statistic is clearly positive at n = 20


def test_kernel_distance_is_near_zero_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kernel_distance(a, b, n_subsets=50, subset_size=100, seed=0)
    # The mean of subset estimates has a standard deviation of at most one subset's
    # (an average of correlated estimates), so |mean| < 2·std is a 95%-style bound.
    assert std > 0
    assert abs(mean) < 2 * std


def test_kernel_distance_is_clearly_positive_for_shifted_distributions():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(400, 8)), rng.normal(loc=0.5, size=(400, 8))
    mean, std = kernel_distance(a, b, n_subsets=50, subset_size=100, seed=0)
    assert mean > 5 * std


def test_kernel_distance_caps_the_subset_size_and_is_seeded():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(10, 3)), rng.normal(size=(15, 3))
    first = kernel_distance(a, b, n_subsets=5, subset_size=1000, seed=3)
    assert first == kernel_distance(a, b, n_subsets=5, subset_size=1000, seed=3)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)


def _brute_force_bootstrap_sd(a: np.ndarray, b: np.ndarray, n_draws: int, seed: int) -> float:
    """The SD of unbiased MMD² over bootstrap resamples, the slow obvious way: resample each
    set, then average the kernel over every pair of distinct *original* images, one by one."""
    rng = np.random.default_rng(seed)

    def k(x, y):
        return (float(x @ y) / len(x) + 1.0) ** 3

    def within(x, idx):
        vals = [k(x[i], x[j]) for p, i in enumerate(idx) for q, j in enumerate(idx) if p != q and i != j]
        return sum(vals) / len(vals)

    values = []
    for _ in range(n_draws):
        ia, ib = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        cross = sum(k(a[i], b[j]) for i in ia for j in ib) / (len(ia) * len(ib))
        values.append(within(a, ia) + within(b, ib) - 2 * cross)
    return float(np.std(values, ddof=1))


def test_kid_std_of_small_sets_comes_from_a_bootstrap_and_matches_a_brute_force_one():
    # 30 vs 30 with subset_size 1000: every subset would be the whole set, so the old std was ~1e-17
    rng = np.random.default_rng(21)
    a, b = rng.normal(size=(30, 4)), rng.normal(loc=0.4, size=(30, 4))
    estimate = kernel_distance_estimate(a, b, n_subsets=300, subset_size=1000, seed=0)
    assert estimate.std_method == "bootstrap" and estimate.n_draws == 300
    assert estimate.mean == pytest.approx(mmd2_unbiased(a, b), rel=1e-12)  # the full sets' estimate
    brute = _brute_force_bootstrap_sd(a, b, n_draws=300, seed=99)
    assert estimate.std > 0.01
    # two independent 300-draw bootstraps of one SD agree to within ~3 × 4% Monte Carlo error
    assert estimate.std == pytest.approx(brute, rel=0.15)
    assert kernel_distance(a, b, n_subsets=300, subset_size=1000, seed=0) == (estimate.mean, estimate.std)


def test_kid_std_of_small_sets_is_close_to_the_true_sampling_sd():
    # the SD of the estimate over fresh samples of 50 vs 50 from the two distributions
    rng = np.random.default_rng(22)
    draw = lambda: (rng.normal(size=(50, 8)), rng.normal(loc=0.3, size=(50, 8)))  # noqa: E731
    true_sd = np.std([mmd2_unbiased(*draw()) for _ in range(300)])
    stds = [kernel_distance(*draw(), n_subsets=200, subset_size=1000, seed=s)[1] for s in range(6)]
    assert 0.7 * true_sd < np.median(stds) < 1.5 * true_sd


def test_kid_uses_subsets_when_both_sets_are_larger_than_a_subset():
    rng = np.random.default_rng(23)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(70, 4))
    estimate = kernel_distance_estimate(a, b, n_subsets=20, subset_size=40, seed=1)
    assert (estimate.std_method, estimate.subset_size) == ("subsets", 40) and estimate.std > 0
    assert kernel_distance_estimate(a, b, n_subsets=20, subset_size=60, seed=1).std_method == "bootstrap"


# ---------------------------------------------------------- precision/recall


def test_precision_and_recall_on_a_hand_built_line():
    # Real points 0..4 on a line, k = 1: every real ball has radius 1, covering [-1, 5].
    real = np.arange(5, dtype=float)[:, None]
    # Fakes: 0.5 and 4.9 fall in the real manifold, 10 and 20 do not -> precision 2/4.
    # Fake k=1 radii: 0.5→4.4, 4.9→4.4, 10→5.1, 20→10. Ball around 0.5 covers
    # [-3.9, 4.9] which holds every real point -> recall 5/5.
    fake = np.array([0.5, 4.9, 10.0, 20.0])[:, None]
    assert precision_recall(real, fake, k=1) == pytest.approx((0.5, 1.0))


def test_precision_and_recall_of_disjoint_clusters_are_zero_and_of_identical_sets_one():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(50, 3))
    assert precision_recall(a, a + 100.0, k=3) == (0.0, 0.0)
    assert precision_recall(a, a.copy(), k=3) == (1.0, 1.0)


def test_recall_drops_when_the_fakes_cover_only_part_of_the_real_set():
    # Real: two far-apart clusters; fake: only the first (mode collapse) -> high precision, recall ≈ 0.5.
    rng = np.random.default_rng(9)
    real = np.vstack([rng.normal(size=(100, 2)), rng.normal(loc=50, size=(100, 2))])
    fake = rng.normal(size=(100, 2))
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.9
    assert 0.4 < recall < 0.6


# ------------------------------------------------------------------ diversity


def test_mean_pairwise_distance_by_hand():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])  # distances 5, 0, 5
    assert mean_pairwise_distance(pts) == pytest.approx(10 / 3)


def test_ms_ssim_is_one_for_identical_images_and_lower_for_noisier_copies():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=gen)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    slight = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    heavy = (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    s_slight, s_heavy = ms_ssim(x, slight), ms_ssim(x, heavy)
    assert torch.all(s_slight < 1) and torch.all(s_heavy < s_slight)


# --------------------------------------------------------- results and summary


def test_per_condition_metrics_use_only_that_conditions_images():
    rng = np.random.default_rng(10)
    real = np.vstack([rng.normal(size=(30, 4)), rng.normal(loc=5, size=(30, 4))])
    real_labels = ["MEL"] * 30 + ["NEV"] * 30
    fake = np.vstack([rng.normal(size=(30, 4)), rng.normal(loc=-5, size=(30, 4))])  # NEV fakes are wrong
    fake_labels = ["MEL"] * 30 + ["NEV"] * 30
    result = compute_fidelity(
        real_features=real,
        fake_features=fake,
        extractor_name="test",
        extractor_sha256="a" * 64,
        real_labels=real_labels,
        fake_labels=fake_labels,
        kid_subsets=10,
        kid_subset_size=30,
    )
    assert set(result.per_condition) == {"MEL", "NEV"}
    assert result.per_condition["MEL"].n_real == 30
    assert result.per_condition["NEV"].fid > 10 * result.per_condition["MEL"].fid
    assert result.per_condition["NEV"].precision == 0.0
    assert result.overall.n_fake == 60


def test_a_condition_with_too_few_images_gets_notes_instead_of_numbers():
    rng = np.random.default_rng(11)
    result = compute_fidelity(
        real_features=rng.normal(size=(10, 3)),
        fake_features=rng.normal(size=(10, 3)),
        extractor_name="test",
        extractor_sha256="b" * 64,
        real_labels=["A"] * 9 + ["B"],
        fake_labels=["A"] * 9 + ["B"],
        kid_subsets=5,
    )
    b = result.per_condition["B"]
    assert b.fid is None and b.precision is None and b.notes


def test_every_result_carries_a_real_vs_real_baseline_split_by_patient():
    rng = np.random.default_rng(13)
    real = np.vstack([rng.normal(size=(40, 4)), rng.normal(loc=3, size=(40, 4))])
    labels = ["MEL"] * 40 + ["NEV"] * 40
    groups = [f"p{i // 4}" for i in range(80)]  # four photos per patient
    fake = rng.normal(loc=1.5, size=(50, 4))
    result = compute_fidelity(
        real_features=real,
        fake_features=fake,
        extractor_name="test",
        extractor_sha256="d" * 64,
        real_labels=labels,
        fake_labels=["MEL"] * 25 + ["NEV"] * 25,
        real_groups=groups,
        kid_subsets=20,
    )
    base = result.baseline
    assert base.method == baseline_module.SPLIT_BY_PATIENT
    assert base.overall.n_real == base.overall.n_fake == 40  # whole patients, balanced halves
    assert set(base.per_condition) == {"MEL", "NEV"}
    # two halves of one real set are far closer than the real set and the shifted fakes
    assert base.overall.fid < result.overall.fid / 5 and base.overall.kid_std_method == "bootstrap"
    assert result.per_condition["MEL"].warning is None
    assert FidelityResult.from_dict(json.loads(json.dumps(result.to_dict()))).baseline == base
    # no labels, no groups: still a baseline, split by image
    plain = compute_fidelity(
        real_features=real, fake_features=fake, extractor_name="t", extractor_sha256="e" * 64
    )
    assert plain.baseline.method == baseline_module.SPLIT_BY_IMAGE and plain.baseline.overall.fid is not None
    # a held-out real set replaces the split
    held = compute_fidelity(
        real_features=real,
        fake_features=fake,
        extractor_name="t",
        extractor_sha256="e" * 64,
        held_out_features=rng.normal(size=(30, 4)),
    )
    assert held.baseline.method == baseline_module.HELD_OUT and held.baseline.overall.n_fake == 30


def test_the_real_split_never_puts_one_patient_on_both_sides():
    groups = [f"p{i % 7}" for i in range(50)] + [None] * 5
    a, b = split_halves(55, groups=groups, seed=3)
    assert sorted([*a, *b]) == list(range(55))
    assert not {groups[i] for i in a if groups[i]} & {groups[i] for i in b if groups[i]}
    assert abs(len(a) - len(b)) <= 8  # at most one patient's images apart
    assert np.array_equal(split_halves(55, groups=groups, seed=3)[0], a)
    failures, attempted = doctest.testmod(baseline_module)
    assert attempted >= 1 and failures == 0


def test_per_condition_metrics_below_the_minimum_count_carry_a_warning():
    rng = np.random.default_rng(14)
    result = compute_fidelity(
        real_features=rng.normal(size=(40, 3)),
        fake_features=rng.normal(size=(40, 3)),
        extractor_name="t",
        extractor_sha256="f" * 64,
        real_labels=["A"] * 30 + ["B"] * 10,
        fake_labels=["A"] * 30 + ["B"] * 10,
        kid_subsets=5,
        min_count=20,
    )
    assert result.per_condition["A"].warning is None
    assert "only 10 real and 10 synthetic" in result.per_condition["B"].warning
    assert result.baseline.per_condition["B"].warning is not None  # 5 vs 5 real images
    assert "! only 10 real" in metrics.format_table(result)


def _result(name: str, sha: str, fid: float) -> FidelityResult:
    return FidelityResult(name, sha, 8, SetMetrics(n_real=10, n_fake=10, fid=fid))


def test_results_from_different_extractors_refuse_to_be_compared():
    a, b = _result("classifier", "1" * 64, 3.0), _result("classifier", "2" * 64, 1.0)
    with pytest.raises(IncomparableResultsError, match="different feature extractors"):
        a.difference(b)
    with pytest.raises(IncomparableResultsError):
        a.difference(_result("inception-v3-fid", "1" * 64, 1.0))
    assert a.difference(_result("classifier", "1" * 64, 1.0))["fid"] == pytest.approx(2.0)


def test_a_result_round_trips_through_json():
    rng = np.random.default_rng(12)
    result = compute_fidelity(
        real_features=rng.normal(size=(12, 3)),
        fake_features=rng.normal(size=(12, 3)),
        extractor_name="x",
        extractor_sha256="c" * 64,
        real_labels=["A"] * 12,
        fake_labels=["A"] * 12,
        kid_subsets=3,
    )
    again = FidelityResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


# ------------------------------------------------------------------------ CLI


def _write_folder(root, colours: dict[str, list[tuple[int, int, int]]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for cond, cols in colours.items():
        (root / cond).mkdir(parents=True)
        for i, col in enumerate(cols):
            arr = np.clip(np.array(col)[None, None, :] + rng.normal(0, 20, size=(32, 32, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(root / cond / f"{i}.png")


def test_the_cli_trains_a_default_classifier_and_reports_overall_and_per_condition(tmp_path, capsys):
    _write_folder(tmp_path / "real", {"MEL": [(90, 50, 40)] * 8, "NEV": [(200, 160, 140)] * 8}, seed=0)
    _write_folder(tmp_path / "fake", {"MEL": [(95, 55, 45)] * 6, "NEV": [(60, 200, 60)] * 6}, seed=1)
    out_csv = tmp_path / "per_condition.csv"
    clf = tmp_path / "clf.pt"
    rc = metrics.main(
        [
            "--real",
            str(tmp_path / "real"),
            "--fake",
            str(tmp_path / "fake"),
            "--json",
            "--save-classifier",
            str(clf),
            "--per-condition-csv",
            str(out_csv),
            "--kid-subsets",
            "5",
            "--kid-subset-size",
            "8",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["extractor_name"].startswith("classifier")
    assert report["extractor_sha256"] == metrics.file_sha256(clf)
    assert set(report["per_condition"]) == {"MEL", "NEV"}
    assert report["overall"]["n_real"] == 16 and report["overall"]["n_fake"] == 12
    # the real-vs-real baseline: two halves of the 16 real images, overall and per condition
    baseline = report["baseline"]
    assert baseline["overall"]["n_real"] + baseline["overall"]["n_fake"] == 16
    assert set(baseline["per_condition"]) == {"MEL", "NEV"}
    assert report["per_condition"]["MEL"]["warning"].startswith("only 8 real and 6 synthetic")
    rows = out_csv.read_text().splitlines()
    assert rows[0].startswith("condition,") and len(rows) == 7
    assert [r.split(",")[0] for r in rows[4:]] == [
        "real-vs-real:overall",
        "real-vs-real:MEL",
        "real-vs-real:NEV",
    ]

    # the saved classifier is then usable explicitly and gives the same numbers
    rc = metrics.main(
        [
            "--real",
            str(tmp_path / "real"),
            "--fake",
            str(tmp_path / "fake"),
            "--json",
            "--extractor",
            f"classifier:{clf}",
            "--kid-subsets",
            "5",
            "--kid-subset-size",
            "8",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["overall"] == report["overall"]


def test_the_cli_says_clearly_when_inception_weights_are_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DERMGAN_INCEPTION_WEIGHTS", raising=False)
    _write_folder(tmp_path / "real", {"A": [(1, 2, 3)] * 3}, seed=0)
    rc = metrics.main(
        ["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "real"), "--extractor", "inception"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "unavailable" in err and "pt_inception-2015-12-05-6726825d.pth" in err


def test_the_cli_rejects_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = metrics.main(["--real", str(tmp_path / "empty"), "--fake", str(tmp_path / "empty")])
    assert rc == 2
    assert "no images" in capsys.readouterr().err


def test_the_worked_example_in_the_frechet_docstring_holds():
    """pytest collects only tests/, so the docstring example runs here."""
    failures, attempted = doctest.testmod(fid)
    assert attempted >= 1 and failures == 0


def test_python_dash_m_generator_metrics_still_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "generator.metrics", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "--per-condition-csv" in result.stdout
