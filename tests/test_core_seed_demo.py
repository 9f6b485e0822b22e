"""seed_demo builds a complete, self-contained demo of real photos against DermGAN and is safe to run again."""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from generator import checkpoint as ckpt_lib
from generator.config import GeneratorConfig
from generator.networks import build_generator
from turingtest.core.management.commands.seed_demo import QUIET_LOGGERS
from turingtest.evaluation.models import FidelityRun
from turingtest.library.models import GenerationBatch, Image
from turingtest.studies.audit import audit_study, resolution_parity
from turingtest.studies.models import Judgment, Study

PAD = Path(__file__).resolve().parents[1] / "fixtures" / "pad-ufes-20"
STUDY_CSV, TRAIN_CSV = PAD / "study.csv", PAD / "train.csv"
PAD_CONDITIONS = ("AK", "BCC", "MEL", "NEV", "SCC", "SEK")


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """The renders and the fidelity run's small networks run faster on one thread (tests/conftest.py)."""


def _checkpoint_256(path: Path) -> Path:
    """An untrained generator at the photos' 256 px (the demo checkpoint's size), narrow enough to
    render 36 images in a couple of seconds: the real render path, not a stand-in."""
    config = GeneratorConfig(conditions=PAD_CONDITIONS, image_size=256, ngf=4, num_downs=8)
    torch.manual_seed(0)
    ckpt_lib.save(
        path, model=build_generator(config), config=config, metadata={"note": "untrained test network"}
    )
    return path


def _seed(tmp_path, **extra) -> str:
    out = io.StringIO()
    ckpt = tmp_path / "demo-256.pt"
    if not ckpt.exists():
        _checkpoint_256(ckpt)
    call_command(
        "seed_demo",
        "--per-kind",
        "6",
        "--simulated-raters",
        "2",
        "--checkpoint",
        str(ckpt),
        stdout=out,
        **extra,
    )
    return out.getvalue()


def _manifest(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {Path(row["image"]).name: row for row in csv.DictReader(fh)}


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_builds_real_photos_their_mirrors_an_open_study_with_answers_and_a_rater_link(
    tmp_path, settings, caplog
):
    settings.DEBUG = True
    caplog.set_level(logging.INFO)
    output = _seed(tmp_path)
    # Only what a person needs: no eager Celery task lines, no kombu "No hostname was supplied".
    noisy = [r for r in caplog.records if r.name in QUIET_LOGGERS and r.levelno < logging.ERROR]
    assert noisy == []
    assert logging.getLogger("celery.app.trace").level == logging.NOTSET  # put back afterwards
    study_rows = _manifest(STUDY_CSV)
    reals = Image.objects.filter(kind=Image.Kind.REAL)
    # Every study photo, imported with its condition and patient, and nothing of train.csv.
    names = set(reals.values_list("provenance__original_name", flat=True))
    assert names == set(study_rows)
    assert not names & set(_manifest(TRAIN_CSV))
    assert not Image.objects.filter(provenance__procedural=True).exists()
    for image in reals.select_related("condition"):
        row = study_rows[image.provenance["original_name"]]
        assert image.condition.code == row["condition"] and image.patient_id == row["patient_id"]
        assert image.mask  # the automatic mask of the fixtures, imported with the photo
        if row["fitzpatrick"]:  # a label where PAD-UFES-20 recorded one, an estimate otherwise
            assert (image.fitzpatrick, image.fitzpatrick_source) == (int(row["fitzpatrick"]), "label")
        else:
            assert image.fitzpatrick_source != "label"
    # One mirror per photo: same condition, and the photo's skin-type label where it has one.
    batch = GenerationBatch.objects.get()
    synthetic = Image.objects.filter(kind=Image.Kind.SYNTHETIC).select_related("condition")
    assert synthetic.count() == reals.count() == 36
    by_pk = {image.pk: image for image in reals.select_related("condition")}
    mirrored = [image.provenance["mirrors_image_id"] for image in synthetic]
    assert sorted(mirrored) == sorted(by_pk)
    for image in synthetic:
        real = by_pk[image.provenance["mirrors_image_id"]]
        assert image.batch_id == batch.pk and image.condition_id == real.condition_id
        if real.fitzpatrick_source == "label":
            assert (image.fitzpatrick, image.fitzpatrick_source) == (real.fitzpatrick, "label")
    # Fidelity of the mirrors against the study photos, held out from the checkpoint's training.
    run = FidelityRun.objects.get()
    assert run.batch_id == batch.pk and run.status == FidelityRun.Status.SUCCEEDED
    assert sorted(run.real_image_ids) == sorted(by_pk) and len(run.synthetic_image_ids) == 36
    assert f"fidelity run {run.pk} succeeded" in output
    # Same native resolution for both kinds: the checkpoint renders at the photos' 256 px.
    assert set(Image.objects.values_list("native_width", "native_height", "width")) == {(256, 256, 256)}

    study = Study.objects.get()
    assert study.status == Study.Status.OPEN and study.config_sha256
    rated = study.items.filter(is_tutorial=False)
    assert Counter(rated.values_list("image__kind", flat=True)) == {"real": 6, "synthetic": 6}
    assert study.pool_summary["matched"] is True
    assert set(study.items.values_list("image__batch_id", flat=True)) <= {None, batch.pk}
    tutorial = study.items.filter(is_tutorial=True)
    assert Counter(tutorial.values_list("image__kind", flat=True)) == {"real": 1, "synthetic": 1}
    assert not resolution_parity(study=study).differs  # no resolution warning on the study page
    audit = audit_study(study=study)
    assert audit.flagged == []
    assert next(r for r in audit.results if r.name == "byte_size").auc == 0.5  # constant-size PNGs
    assert Judgment.objects.filter(presentation__assignment__study=study).count() > 0
    assert study.assignments.filter(rater__username="rater").exists()
    assert "/invite/" in output
    assert output.strip().splitlines()[-1] == f"study {study.pk}"


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_run_twice_adds_nothing_twice(tmp_path, settings):
    settings.DEBUG = True
    _seed(tmp_path)
    counts = (
        Image.objects.count(),
        GenerationBatch.objects.count(),
        FidelityRun.objects.count(),
        Study.objects.count(),
        Judgment.objects.count(),
    )
    output = _seed(tmp_path)
    assert (
        Image.objects.count(),
        GenerationBatch.objects.count(),
        FidelityRun.objects.count(),
        Study.objects.count(),
        Judgment.objects.count(),
    ) == counts
    assert "0 new" in output


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_refuses_to_create_known_passwords_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG=1"):
        call_command("seed_demo")
