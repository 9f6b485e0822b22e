"""seed_demo builds a complete, self-contained demo and is safe to run again."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.library_support import tiny_checkpoint
from turingtest.core.management.commands.seed_demo import QUIET_LOGGERS
from turingtest.library.models import Image
from turingtest.studies.models import Judgment, Study


def _seed(tmp_path, **extra) -> str:
    out = io.StringIO()
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    call_command(
        "seed_demo",
        "--procedural",
        "12",
        "--synthetic",
        "12",
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


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_builds_users_images_an_open_study_with_answers_and_prints_a_rater_link(
    tmp_path, settings, caplog
):
    settings.DEBUG = True
    caplog.set_level(logging.INFO)
    output = _seed(tmp_path)
    # Only what a person needs: no eager Celery task lines, no kombu "No hostname was supplied".
    noisy = [r for r in caplog.records if r.name in QUIET_LOGGERS and r.levelno < logging.ERROR]
    assert noisy == []
    assert logging.getLogger("celery.app.trace").level == logging.NOTSET  # put back afterwards
    procedural = Image.objects.filter(provenance__procedural=True)
    assert procedural.count() == 12
    assert set(procedural.values_list("fitzpatrick", flat=True)) == {1, 2, 3, 4, 5, 6}
    assert Image.objects.filter(kind=Image.Kind.SYNTHETIC).count() == 12
    # native resolution: stand-ins are drawn at the stored size, the tiny checkpoint renders 32 px
    assert set(procedural.values_list("native_width", "native_height")) == {(settings.IMAGE_SIZE,) * 2}
    assert set(procedural.values_list("fitzpatrick_source", flat=True)) == {"label"}
    synthetic = Image.objects.filter(kind=Image.Kind.SYNTHETIC)
    assert set(synthetic.values_list("native_width", "native_height")) == {(32, 32)}
    study = Study.objects.get()
    assert study.status == Study.Status.OPEN and study.config_sha256
    assert Judgment.objects.filter(presentation__assignment__study=study).count() > 0
    assert "/invite/" in output
    assert output.strip().splitlines()[-1] == f"study {study.pk}"


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_run_twice_adds_nothing_twice(tmp_path, settings):
    settings.DEBUG = True
    _seed(tmp_path)
    counts = (Image.objects.count(), Study.objects.count(), Judgment.objects.count())
    _seed(tmp_path)
    assert (Image.objects.count(), Study.objects.count(), Judgment.objects.count()) == counts


@pytest.mark.django_db(transaction=True)  # the batch is enqueued on commit
def test_seed_demo_refuses_to_create_known_passwords_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG=1"):
        call_command("seed_demo")
