"""``verify_restore``: after restoring a backup, opened studies' frozen designs and every image file."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from tests.factories import ResearcherFactory, library_images
from turingtest.library.models import Image
from turingtest.studies import services
from turingtest.studies.models import Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def restored(settings, tmp_path):
    """An opened study and a draft over images whose stored sha256 is their file's, as in production."""
    settings.MEDIA_ROOT = tmp_path / "media"
    for image in library_images(3, 3):
        with default_storage.open(image.file.name, "rb") as fh:
            Image.objects.filter(pk=image.pk).update(sha256=hashlib.sha256(fh.read()).hexdigest())
    owner = ResearcherFactory()
    config = {"n_real": 3, "n_synthetic": 3}
    study = services.study_create(owner=owner, title="Opened", config=config, seed=1)
    services.study_open(study=study)
    services.study_create(owner=owner, title="Draft", config=config, seed=2)
    return Study.objects.get(pk=study.pk)


def _run() -> str:
    out = io.StringIO()
    call_command("verify_restore", stdout=out)
    return out.getvalue()


def test_a_complete_restore_verifies(restored):
    out = _run()
    assert "studies: 1 opened, 0 with a changed design" in out  # the draft has no frozen hash to check
    assert "images: 6 checked, 0 missing or altered" in out
    assert out.strip().endswith("restore verified")


def test_missing_and_altered_files_and_a_changed_design_are_each_reported(restored):
    missing, altered, masked = Image.objects.order_by("pk")[:3]
    default_storage.delete(missing.file.name)
    with default_storage.open(altered.file.name, "wb") as fh:
        fh.write(b"not the bytes that were hashed")
    masked.mask.name = "masks/gone.png"
    masked.save(update_fields=["mask"])
    Study.objects.filter(pk=restored.pk).update(seed=99)  # a design change that bypassed the freeze
    with pytest.raises(CommandError) as failed:
        _run()
    message = str(failed.value)
    assert f"study {restored.pk} ('Opened', open): design no longer matches its frozen hash" in message
    assert f"image {missing.pk}: file {missing.file.name!r} missing from storage" in message
    assert f"image {altered.pk}: file {altered.file.name!r} does not match its sha256" in message
    assert f"image {masked.pk}: mask 'masks/gone.png' missing from storage" in message
    assert message.count("\n") == 4  # the header line, then exactly these four problems


def test_a_restored_mask_that_exists_passes(restored):
    image = Image.objects.order_by("pk").first()
    image.mask.save("mask.png", ContentFile(b"mask"), save=True)
    assert "0 missing or altered" in _run()
