"""turingtest.evaluation (selection, services, runs): image sets, fidelity and augmentation runs on real rows and files."""

from __future__ import annotations

import pytest
import torch
from django.core.files.storage import default_storage

from generator.metrics import FidelityResult, IncomparableResultsError
from tests.evaluation_data import batch_with_images, real_images
from turingtest.evaluation import runs, selection, services
from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.evaluation.presentation import arm_order

pytestmark = pytest.mark.django_db

TINY_CLASSIFIER = {
    "classifier_image_size": 32,
    "classifier_width": 4,
    "classifier_depth": 2,
    "classifier_epochs": 2,
}
FAST = {"kid_subsets": 5, "kid_subset_size": 50, **TINY_CLASSIFIER}
# the smallest experiment that still has every arm and training-seed variance (the default trains 25)
TINY_EXPERIMENT = {
    "image_size": 32,
    "width": 4,
    "depth": 2,
    "epochs": 1,
    "n_seeds": 2,
    "n_bootstrap": 50,
    "batch_size": 16,
}


def assert_has_a_real_baseline(run: FidelityRun) -> None:
    """Every stored fidelity result carries the real-vs-real block, overall and per condition."""
    baseline = run.results["baseline"]
    assert baseline["method"] == "two disjoint halves of the real set, split by patient"
    assert set(baseline["per_condition"]) == set(run.results["per_condition"])
    for m in [baseline["overall"], *baseline["per_condition"].values()]:
        assert m["n_real"] + m["n_fake"] > 0


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """These tiny networks run faster on one thread (tests/conftest.py)."""


def test_filter_parse_reads_key_value_lists_and_rejects_unknown_keys():
    assert selection.filter_parse(["condition=MEL,NEV", "fitzpatrick=5,6", "procedural=false"]) == {
        "condition": ["MEL", "NEV"],
        "fitzpatrick": [5, 6],
        "procedural": False,
    }
    with pytest.raises(selection.EvaluationError, match="KEY=V1,V2"):
        selection.filter_parse(["colour=red"])
    with pytest.raises(selection.EvaluationError, match="integers"):
        selection.filter_parse(["fitzpatrick=dark"])


def test_a_batch_run_fixes_its_image_sets_and_defaults_to_the_real_images_of_its_conditions():
    reals = real_images({"MEL": 4, "NEV": 4, "VASC": 2})
    batch = batch_with_images({"MEL": 3, "VASC": 2})
    run = services.fidelity_run_create(batch=batch, enqueue=False)
    assert run.status == FidelityRun.Status.QUEUED
    assert run.real_filter == {"condition": ["MEL", "VASC"]}
    assert run.real_image_ids == [im.pk for im in reals if im.condition.code in {"MEL", "VASC"}]
    assert sorted(run.synthetic_image_ids) == sorted(batch.images.values_list("pk", flat=True))
    assert len(run.inputs_sha256) == 64


def test_a_fidelity_run_computes_overall_and_per_condition_metrics_with_the_auto_classifier():
    real_images({"MEL": 8, "NEV": 8, "VASC": 6})
    batch = batch_with_images({"MEL": 6, "VASC": 6})
    run = services.fidelity_run_create(batch=batch, seed=3, config=FAST, enqueue=False)
    run = runs.fidelity_run_execute(run_pk=run.pk)
    assert run.status == FidelityRun.Status.SUCCEEDED, run.error
    assert run.progress == 1.0 and run.finished is not None
    result = run.result()
    assert set(result.per_condition) == {"MEL", "VASC"}
    assert result.overall.n_real == 14 and result.overall.n_fake == 12
    assert result.overall.fid is not None and result.overall.precision is not None
    assert_has_a_real_baseline(run)
    # the halves are patient-disjoint: 14 real images of 7 patients, 2 photos each, so each half
    # is even (a split by image would cut 7 / 7)
    assert result.baseline.overall.n_real % 2 == 0 and result.baseline.overall.n_fake % 2 == 0
    assert result.baseline.overall.fid is not None
    # every set here is below min_count (20): each per-condition row warns, and the KID std
    # comes from the bootstrap because the sets are smaller than kid_subset_size
    assert all(m.warning for m in result.per_condition.values())
    assert result.overall.kid_std_method == "bootstrap" and result.overall.kid_std > 0
    assert run.config["min_count"] == 20
    # the feature space is recorded and is the cached classifier file in storage
    assert run.extractor_name.startswith("classifier") and len(run.extractor_sha256) == 64
    assert default_storage.exists(run.extractor_file)
    with default_storage.open(run.extractor_file, "rb") as fh:
        import hashlib

        assert hashlib.sha256(fh.read()).hexdigest() == run.extractor_sha256

    # a second run over the same library reuses the same extractor: comparable numbers
    again = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, seed=3, config=FAST, enqueue=False).pk
    )
    assert again.extractor_sha256 == run.extractor_sha256
    assert again.result().overall == result.overall


def test_runs_from_different_extractors_cannot_be_compared():
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 6})
    a = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, seed=1, config=FAST, enqueue=False).pk
    )
    b = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, seed=2, config=FAST, enqueue=False).pk
    )
    assert a.extractor_sha256 != b.extractor_sha256  # another seed trains another classifier
    assert_has_a_real_baseline(a)
    assert_has_a_real_baseline(b)
    with pytest.raises(IncomparableResultsError):
        a.result().difference(b.result())
    assert isinstance(a.result(), FidelityResult)


def test_a_failing_run_stores_its_error_and_a_second_execution_does_nothing(monkeypatch):
    real_images({"MEL": 3, "NEV": 3})
    batch = batch_with_images({"MEL": 3})
    monkeypatch.delenv("DERMGAN_INCEPTION_WEIGHTS", raising=False)
    run = services.fidelity_run_create(batch=batch, extractor="inception", enqueue=False)
    run = runs.fidelity_run_execute(run_pk=run.pk)
    assert run.status == FidelityRun.Status.FAILED
    assert "unavailable" in run.error and "pt_inception-2015-12-05-6726825d.pth" in run.error
    finished = run.finished
    assert runs.fidelity_run_execute(run_pk=run.pk).finished == finished  # not claimed twice


def test_creating_a_run_with_no_matching_images_is_refused():
    real_images({"MEL": 2})
    batch = batch_with_images({"NEV": 2})
    with pytest.raises(selection.EvaluationError, match="no real images"):
        services.fidelity_run_create(batch=batch, enqueue=False)
    assert not FidelityRun.objects.exists()


def test_an_augmentation_run_trains_every_arm_with_every_seed_and_stores_the_report():
    real_images({"MEL": 12, "NEV": 12, "VASC": 6})
    batch = batch_with_images({"VASC": 8})
    run = services.augmentation_run_create(
        synthetic_batches=[batch], ratio=1.0, seed=5, config=TINY_EXPERIMENT, enqueue=False
    )
    run = runs.augmentation_run_execute(run_pk=run.pk)
    assert run.status == AugmentationRun.Status.SUCCEEDED, run.error
    report = run.results
    assert report["version"] == 2
    assert report["chosen_conditions"] == ["VASC"]  # the rarest in training
    assert report["rare_conditions"] == ["VASC"] and report["malignant_conditions"] == ["MEL"]
    split = report["split"]
    assert not set(split["train_groups"]) & set(split["test_groups"])
    assert not set(split["train_ids"]) & set(split["test_ids"])
    prov = report["synthetic"]["VASC"]["provenance"]
    assert {p["image_id"] for p in prov} <= set(batch.images.values_list("pk", flat=True))

    # jsonb (PostgreSQL) does not keep key order; the config's list does
    assert arm_order(report) == ["baseline", "oversample", "reweight", "synthetic", "copies"]
    assert set(report["arms"]) == set(arm_order(report))
    for arm in report["arms"].values():
        assert [s["seed"] for s in arm["seeds"]] == [5, 6]
        assert len(arm["test"]["per_seed"]["balanced_accuracy"]) == 2
        assert arm["test"]["balanced_accuracy"]["ci_low"] <= arm["test"]["balanced_accuracy"]["ci_high"]
    head, null = report["headline"], report["null_check"]
    assert head["arm"] == "synthetic" and head["comparator"] in {
        "baseline",
        "oversample",
        "reweight",
        "copies",
    }
    assert head["comparison"] in report["comparisons"] and head["claim"].startswith("synthetic −")
    assert (null["arm"], null["comparator"]) == ("copies", "oversample")
    assert null["passed"] == (not null["significant_gain"]) and run.null_check_passed() == null["passed"]
    assert report["statistics"]["training_seeds"] == [5, 6]

    files = report["files"]
    assert files["models"] == [f"models/{arm}-seed5.pt" for arm in arm_order(report)]  # each arm's first seed
    for rel in [files["json"], files["html"], *files["plots"], *files["models"]]:
        assert default_storage.exists(run.file_name(rel)), rel
    assert {"plots/arms.png", "plots/sensitivity.png", "plots/headline.png"} <= set(files["plots"])
    assert runs.augmentation_run_execute(run_pk=run.pk).report_prefix == run.report_prefix  # idempotent


def test_an_augmentation_run_stores_its_settings_as_json_and_refuses_bad_ones():
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 2})
    arms = ("baseline", "oversample", "reweight", "synthetic", "copies", "synthetic_oversample")
    run = services.augmentation_run_create(
        synthetic_batches=[batch], config={**TINY_EXPERIMENT, "arms": arms}, enqueue=False
    )
    assert run.config["arms"] == list(arms) and run.config["n_seeds"] == 2
    with pytest.raises(selection.EvaluationError, match="n_seeds must be ≥ 2"):
        services.augmentation_run_create(synthetic_batches=[batch], config={"n_seeds": 1}, enqueue=False)
    with pytest.raises(selection.EvaluationError, match="arms must be"):
        services.augmentation_run_create(
            synthetic_batches=[batch], config={"arms": "baseline"}, enqueue=False
        )
    with pytest.raises(selection.EvaluationError, match="unknown experiment settings"):
        services.augmentation_run_create(synthetic_batches=[batch], config={"colour": 1}, enqueue=False)
    assert AugmentationRun.objects.count() == 1


def test_an_augmentation_run_needs_exactly_one_synthetic_source():
    real_images({"MEL": 2, "NEV": 2})
    with pytest.raises(selection.EvaluationError, match="exactly one"):
        services.augmentation_run_create(enqueue=False)


def test_an_augmentation_run_can_render_its_synthetic_images_from_a_library_checkpoint(tmp_path):
    from generator import checkpoint as ckpt_lib
    from generator.config import GeneratorConfig
    from generator.networks import build_generator
    from turingtest.library.checkpoints import checkpoint_register

    config = GeneratorConfig(conditions=("MEL", "NEV", "VASC"), image_size=32, ngf=4, num_downs=5)
    torch.manual_seed(0)
    ckpt_lib.save(tmp_path / "g.pt", model=build_generator(config), config=config, metadata={})
    checkpoint = checkpoint_register(path=tmp_path / "g.pt")
    real_images({"MEL": 8, "NEV": 8, "VASC": 4})
    run = services.augmentation_run_create(
        checkpoint=checkpoint,
        conditions=["VASC"],
        ratio=2.0,
        seed=1,
        config={**TINY_EXPERIMENT, "n_bootstrap": 20},
        enqueue=False,
    )
    run = runs.augmentation_run_execute(run_pk=run.pk)
    assert run.status == AugmentationRun.Status.SUCCEEDED, run.error
    syn = run.results["synthetic"]["VASC"]
    assert syn["added"] == 2 * syn["real_train"]
    assert {p["checkpoint_sha256"] for p in syn["provenance"]} == {checkpoint.sha256}
    assert run.checkpoint_sha256 == checkpoint.sha256
