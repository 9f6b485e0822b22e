"""Image rows record native resolution and skin-type provenance; old files re-encode to constant size."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from tests.factories import ImageFactory, ResearcherFactory
from tests.library_support import distribution, library_fixture, tiny_checkpoint  # noqa: F401  (fixture)
from turingtest.images import png_length
from turingtest.library import checkpoints, scheduling, store
from turingtest.library.models import Image
from turingtest.studies import services as study_services

pytestmark = pytest.mark.django_db


def _noise(w: int, h: int, seed: int) -> PILImage.Image:
    return PILImage.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_a_batch_records_its_render_size_as_the_native_resolution(
    library, django_capture_on_commit_callbacks
):
    path = tiny_checkpoint(library / "tiny16.pt", size=16, num_downs=4)
    checkpoint = checkpoints.checkpoint_register(path=path, name="tiny 16 px")
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduling.batch_schedule(
            checkpoint=checkpoint, count=3, seed=5, distribution=distribution(), chunk_size=3
        )
    images = list(batch.images.order_by("batch_index"))
    assert len(images) == 3
    for image in images:
        assert (image.width, image.height) == (32, 32)  # stored at IMAGE_SIZE
        assert (image.native_width, image.native_height, image.native_side) == (16, 16, 16)
        # the type it was rendered for is a label, not a guess from its pixels
        assert image.fitzpatrick_source == "label" and image.has_labelled_fitzpatrick
        assert image.file.size == png_length(32)


def test_a_given_type_is_a_label_and_a_missing_one_an_estimate_with_its_ita(library):
    labelled = store.image_store(
        pil_image=_noise(40, 30, 1), kind="real", condition="MEL", provenance={}, fitzpatrick=4
    )
    estimated = store.image_store(pil_image=_noise(50, 50, 2), kind="real", condition="MEL", provenance={})
    assert (labelled.fitzpatrick, labelled.fitzpatrick_source, labelled.has_labelled_fitzpatrick) == (
        4,
        "label",
        True,
    )
    assert estimated.fitzpatrick in range(1, 7) and estimated.fitzpatrick_source == "estimate"
    assert not estimated.has_labelled_fitzpatrick and estimated.ita_degrees is not None
    assert labelled.ita_degrees is not None  # the estimate is kept beside the label, for comparison
    assert (labelled.native_width, labelled.native_height) == (40, 30)
    assert list(Image.objects.fitzpatrick_labelled()) == [labelled]
    no_skin = Image(fitzpatrick=None, fitzpatrick_source="label")
    assert not no_skin.has_labelled_fitzpatrick and no_skin.native_side is None


def test_the_admin_shows_where_the_skin_type_came_from(library, client):
    from tests.factories import AdminFactory

    image = store.image_store(pil_image=_noise(40, 40, 3), kind="real", condition="MEL", provenance={})
    client.force_login(AdminFactory())
    listing = client.get("/admin/library/image/").content.decode()
    assert "Fitzpatrick source" in listing and "Estimate (ITA°)" in listing
    page = client.get(f"/admin/library/image/{image.pk}/change/").content.decode()
    assert "Estimate (ITA°)" in page and f"{image.ita_degrees:.1f}" in page
    assert "40 × 40" in page


# --- re-encoding old files -------------------------------------------------------------------


def _old_style(image_pk: int, im: PILImage.Image) -> None:
    """Store ``im`` the way the library did before: Pillow's compressed PNG, sha256 of those bytes."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    data = buf.getvalue()
    image = Image.objects.get(pk=image_pk)
    image.file.save(f"old{image_pk}.png", ContentFile(data), save=False)
    Image.objects.filter(pk=image_pk).update(file=image.file.name, sha256=hashlib.sha256(data).hexdigest())


def _sizes() -> set[int]:
    return {default_storage.size(name) for name in Image.objects.values_list("file", flat=True)}


def test_reencode_images_makes_old_files_constant_size_with_the_same_pixels_and_is_idempotent(
    library, django_capture_on_commit_callbacks
):
    images = [ImageFactory() for _ in range(3)]
    contents = [PILImage.new("RGB", (32, 32), (180, 140, 120)), _noise(32, 32, 7), _noise(32, 32, 8)]
    for image, im in zip(images, contents, strict=True):
        _old_style(image.pk, im)
    assert len(_sizes()) == 2  # content-dependent before (noise compresses to the same length)
    old = {i.pk: (i.file.name, i.sha256) for i in Image.objects.all()}
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # old files are deleted after commit
        call_command("reencode_images", stdout=out)
    assert "3 re-encoded" in out.getvalue()
    assert _sizes() == {png_length(32)}
    for image, im in zip(images, contents, strict=True):
        image.refresh_from_db()
        with default_storage.open(image.file.name) as fh:
            data = fh.read()
        assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB")), np.asarray(im))
        assert image.sha256 == hashlib.sha256(data).hexdigest() != old[image.pk][1]
        assert image.provenance["sha256_before_reencode"] == old[image.pk][1]
        assert not default_storage.exists(old[image.pk][0])  # the old file is gone
    # duplicates stay detectable: storing the same pixels now finds the re-encoded row
    with pytest.raises(store.DuplicateImage):
        store.image_store(pil_image=contents[1], kind="real", condition="MEL", provenance={})
    again = io.StringIO()
    call_command("reencode_images", stdout=again)
    assert "0 re-encoded, 3 already current" in again.getvalue()


def test_images_of_an_opened_study_are_left_alone_unless_asked(library):
    images = [ImageFactory(kind=kind) for kind in ("real", "synthetic", "real", "synthetic")]
    for n, image in enumerate(images):
        _old_style(image.pk, _noise(32, 32, 20 + n))
    study = study_services.study_create(
        owner=ResearcherFactory(),
        title="frozen",
        config={"n_real": 2, "n_synthetic": 2, "unmatched": True},
        seed=1,
    )
    study = study_services.study_open(study=study)
    out = io.StringIO()
    call_command("reencode_images", stdout=out)
    assert "4 left alone" in out.getvalue() and "--include-frozen" in out.getvalue()
    assert study_services.study_verify_frozen(study=study)
    out = io.StringIO()
    call_command("reencode_images", "--include-frozen", stdout=out)
    assert "4 re-encoded" in out.getvalue()
    assert f"frozen design hashes changed for studies: {study.pk}" in out.getvalue()
    assert _sizes() == {png_length(32)}


def test_a_dry_run_changes_nothing_and_unreadable_files_fail_the_command(library):
    image = ImageFactory()
    _old_style(image.pk, _noise(32, 32, 30))
    before = Image.objects.get(pk=image.pk).sha256
    out = io.StringIO()
    call_command("reencode_images", "--dry-run", stdout=out)
    assert out.getvalue().startswith("dry run: checked 1: 1 re-encoded")
    assert Image.objects.get(pk=image.pk).sha256 == before
    broken = ImageFactory(file=ContentFile(b"not a png", name="broken.png"))
    with pytest.raises(CommandError, match="1 images could not be re-encoded"):
        call_command("reencode_images", stdout=io.StringIO(), stderr=io.StringIO())
    assert Image.objects.get(pk=broken.pk).file.name == broken.file.name


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_what_old_rows_already_tell():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        [("library", "0003_generationbatch_specs")],
        [("library", "0004_image_native_resolution")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        OldImage = apps.get_model("library", "Image")
        Condition = apps.get_model("library", "Condition")
        Checkpoint = apps.get_model("library", "GeneratorCheckpoint")
        Batch = apps.get_model("library", "GenerationBatch")
        cond = Condition.objects.create(code="MIG", name="Migration test", map_index=900)
        ckpt = Checkpoint.objects.create(name="c", sha256="c" * 64)
        batch = Batch.objects.create(checkpoint=ckpt, count=1, seed=1, image_size=128, distribution={})

        def row(n: int, **kw):
            return OldImage.objects.create(
                kind="real", condition=cond, file=f"{n}.png", sha256=str(n) * 64, width=256, height=256, **kw
            ).pk

        given = row(1, fitzpatrick=2, provenance={"fitzpatrick_source": "given"})
        estimated = row(2, fitzpatrick=5, provenance={"fitzpatrick_source": "estimated"})
        unknown = row(3, fitzpatrick=3, provenance={})
        rendered = row(4, provenance={"fitzpatrick_source": "given"}, batch=batch, batch_index=0)
        procedural = row(5, provenance={"procedural": True, "fitzpatrick_source": "given"})
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
    got = {i.pk: i for i in Image.objects.all()}
    assert got[given].has_labelled_fitzpatrick and got[estimated].fitzpatrick_source == "estimate"
    assert got[unknown].fitzpatrick_source == "" and not got[unknown].has_labelled_fitzpatrick
    assert (got[rendered].native_width, got[rendered].native_height) == (128, 128)
    assert got[procedural].native_side == 256 and got[given].native_side is None
