"""manage.py fidelity and manage.py augmentation_experiment on library images."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from generator.classifier import ClassifierConfig, save_classifier, train_classifier
from tests.evaluation_data import batch_with_images, png, real_images
from turingtest.evaluation.models import AugmentationRun, FidelityRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """These tiny networks run faster on one thread (tests/conftest.py)."""


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def tiny_classifier(tmp_path):
    from PIL import Image

    images = [Image.open(io.BytesIO(png(s, c))) for s, c in enumerate(["MEL", "NEV"] * 4)]
    labels = ["MEL", "NEV"] * 4
    model, _ = train_classifier(
        images, labels, ClassifierConfig(("MEL", "NEV"), 32, 4, 2), epochs=1, batch_size=4, progress=False
    )
    path = tmp_path / "clf.pt"
    sha = save_classifier(path, model=model)
    return path, sha


def test_fidelity_for_a_batch_prints_a_table_and_stores_the_run(tiny_classifier):
    path, sha = tiny_classifier
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    out = _run(
        "fidelity", "--batch", str(batch.pk), "--extractor", f"classifier:{path}", "--kid-subsets", "5"
    )
    run = FidelityRun.objects.get()
    assert out.strip().splitlines()[-1] == f"fidelity run {run.pk}"
    assert f"sha256={sha}" in out and "overall" in out and "MEL" in out
    assert run.status == FidelityRun.Status.SUCCEEDED and run.extractor_sha256 == sha
    assert run.batch == batch and run.extractor_spec == f"classifier:{path}"
    # the real-vs-real baseline is printed beside the synthetic rows, and stored
    assert "real-vs-real:overall" in out and "real-vs-real:MEL" in out and "split by patient" in out
    assert run.results["baseline"]["overall"]["fid"] is not None
    assert "! only 6 real and 5 synthetic images (< 20)" in out  # per-condition warning


def test_fidelity_with_filters_prints_json(tiny_classifier):
    path, _ = tiny_classifier
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    out = _run(
        "fidelity",
        "--synthetic-batch",
        str(batch.pk),
        "--synthetic-filter",
        "condition=MEL",
        "--real-filter",
        "condition=MEL",
        "--extractor",
        f"classifier:{path}",
        "--kid-subsets",
        "5",
        "--json",
    )
    body = out[out.index("{") : out.rindex("}") + 1]
    results = json.loads(body)
    assert results["overall"]["n_real"] == 6 and results["overall"]["n_fake"] == 5
    assert set(results["per_condition"]) == {"MEL"}
    assert set(results["baseline"]["per_condition"]) == {"MEL"}
    assert results["overall"]["kid_std_method"] == "bootstrap"  # 6 and 5 images < the subset size


def test_fidelity_fails_clearly_for_an_unknown_batch_or_missing_inception_weights(monkeypatch):
    with pytest.raises(CommandError, match="no generation batch 999"):
        _run("fidelity", "--batch", "999")
    real_images({"MEL": 3})
    batch = batch_with_images({"MEL": 3})
    monkeypatch.delenv("DERMGAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(CommandError, match="unavailable"):
        _run("fidelity", "--batch", str(batch.pk), "--inception-weights", "/nonexistent/pt_inception.pth")
    assert FidelityRun.objects.get().status == FidelityRun.Status.FAILED  # the attempt is on record


def test_the_augmentation_experiment_command_reports_every_arm_the_headline_and_the_null_check(tmp_path):
    real_images({"MEL": 10, "NEV": 10, "VASC": 6})
    batch = batch_with_images({"VASC": 6})
    out = _run(
        "augmentation_experiment",
        "--synthetic-batch",
        str(batch.pk),
        *("--image-size", "32", "--width", "4", "--depth", "2", "--epochs", "1"),
        *("--n-seeds", "2", "--n-bootstrap", "20", "--seed", "2"),
        *("--arms", "baseline,oversample,reweight,synthetic,copies,synthetic_oversample"),
        "--out",
        str(tmp_path / "report"),
    )
    run = AugmentationRun.objects.get()
    assert out.strip().splitlines()[-1] == f"augmentation run {run.pk}"
    arms = ["baseline", "oversample", "reweight", "synthetic", "copies", "synthetic_oversample"]
    positions = [out.index(f"{arm:20s} balanced accuracy ") for arm in arms]
    assert positions == sorted(positions)  # in the order the arms ran
    assert run.config["arms"] == arms and run.config["n_seeds"] == 2
    assert f"headline: {run.results['headline']['claim']}" in out
    verdict = "passed" if run.results["null_check"]["passed"] else "FAILED"
    assert "null check (copies − oversample): balanced_accuracy " in out and verdict in out
    assert "McNemar" not in out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["config"]["seed"] == 2 and report["statistics"]["training_seeds"] == [2, 3]
    for rel in [*report["files"]["plots"], *report["files"]["models"], "report.html"]:
        assert (tmp_path / "report" / rel).stat().st_size > 0, rel
    assert (tmp_path / "report" / "models" / "synthetic_oversample-seed2.pt").exists()


def test_the_augmentation_experiment_rejects_conditions_without_real_images():
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 2})
    with pytest.raises(CommandError, match="SCC"):
        _run("augmentation_experiment", "--synthetic-batch", str(batch.pk), "--conditions", "SCC")
