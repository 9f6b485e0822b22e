"""Lesion masks: ``mask_save`` and its provenance, decoding posted masks, the review queue,
automatic masks in the background (twice is once) and ``import_images --auto-masks``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image as PILImage

from tests.factories import AdminFactory
from tests.library_support import broker_down, library_fixture  # noqa: F401  (fixture)
from tests.mask_support import SIZE, box, lesion_photo, png_data_url, real_image
from turingtest.library.masks import (
    MaskError,
    image_next_unreviewed,
    mask_decode,
    mask_job_run,
    mask_load,
    mask_save,
)
from turingtest.library.models import Image, MaskJob, MaskSource
from turingtest.library.scheduling import BrokerUnavailable, mask_job_schedule

# --------------------------------------------------------------------------- mask_save


def test_an_imported_mask_is_recorded_as_imported_and_an_image_without_one_has_no_source(library):
    assert real_image(1, mask=box(8, 8, 16, 16)).mask_source == MaskSource.IMPORTED
    assert real_image(2).mask_source == ""


def test_mask_save_updates_area_bbox_and_provenance_and_replaces_the_old_file(
    library, django_capture_on_commit_callbacks
):
    image = real_image(1, mask=box(0, 0, 4, 4))
    old_name = image.mask.name
    reviewer = AdminFactory(username="dr.review")
    with pytest.raises(MaskError, match="needs the reviewer"):
        mask_save(image=image, mask=box(8, 4, 24, 12), source=MaskSource.REVIEWED)

    with django_capture_on_commit_callbacks(execute=True):
        assert mask_save(image=image, mask=box(8, 4, 24, 12), source=MaskSource.REVIEWED, user=reviewer)

    image.refresh_from_db()
    assert image.mask_source == MaskSource.REVIEWED
    assert image.mask_reviewed_by == reviewer and image.mask_reviewed_at is not None
    assert image.lesion_area_fraction == pytest.approx(16 * 8 / SIZE**2)
    assert image.lesion_bbox == [8 / 32, 4 / 32, 24 / 32, 12 / 32]
    assert np.array_equal(mask_load(image=image), box(8, 4, 24, 12))
    assert image.mask.name != old_name and not default_storage.exists(old_name)

    # An automatic mask saved later clears the reviewer: the provenance says what the mask is now.
    assert mask_save(image=image, mask=box(0, 0, 2, 2), source=MaskSource.AUTOMATIC)
    image.refresh_from_db()
    assert (image.mask_source, image.mask_reviewed_by, image.mask_reviewed_at) == ("automatic", None, None)


def test_mask_save_refuses_a_mask_of_the_wrong_size_or_not_binary_and_writes_nothing(library):
    image = real_image(1)
    files_before = set(default_storage.listdir("library")[1])
    with pytest.raises(MaskError, match="size mismatch"):
        mask_save(image=image, mask=np.ones((16, 16), dtype=bool), source=MaskSource.AUTOMATIC)
    with pytest.raises(MaskError, match="binary"):
        mask_save(image=image, mask=np.full((SIZE, SIZE), 7, dtype=np.uint8), source=MaskSource.AUTOMATIC)
    image.refresh_from_db()
    assert not image.mask and image.mask_source == "" and image.lesion_area_fraction is None
    assert set(default_storage.listdir("library")[1]) == files_before


def test_only_if_missing_leaves_a_mask_that_appeared_meanwhile_alone(library):
    image = real_image(1)
    stale = Image.objects.get(pk=image.pk)  # loaded before a reviewer saved
    mask_save(image=image, mask=box(1, 1, 9, 9), source=MaskSource.REVIEWED, user=AdminFactory())
    assert not mask_save(image=stale, mask=box(0, 0, 3, 3), source=MaskSource.AUTOMATIC, only_if_missing=True)
    image.refresh_from_db()
    assert image.mask_source == MaskSource.REVIEWED and np.array_equal(
        mask_load(image=image), box(1, 1, 9, 9)
    )


# --------------------------------------------------------------------------- posted masks


def test_mask_decode_reads_a_painted_png_and_thresholds_it(library):
    image = real_image(1)
    grey = box(4, 4, 20, 20).astype(np.uint8) * 255
    grey[4, 4] = 200  # one anti-aliased pixel
    assert np.array_equal(mask_decode(data=png_data_url(grey), image=image), box(4, 4, 20, 20))
    rgba = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    rgba[box(2, 2, 6, 6)] = (255, 255, 255, 255)  # painted = opaque white; the rest transparent
    assert np.array_equal(mask_decode(data=png_data_url(rgba, "RGBA"), image=image), box(2, 2, 6, 6))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "PNG data URL"),
        ("data:image/jpeg;base64,AAAA", "PNG data URL"),
        ("data:image/png;base64,bm90IGFuIGltYWdl", "cannot be read"),
        (png_data_url(np.full((16, 16), 255, dtype=np.uint8)), "size mismatch: the mask is 16×16"),
        (png_data_url(np.zeros((SIZE, SIZE), dtype=np.uint8)), "empty"),
        (png_data_url(np.asarray(lesion_photo(seed=3))[..., 0].copy()), "not binary"),
    ],
)
def test_mask_decode_refuses_bad_masks_with_a_clear_reason(library, data, message):
    with pytest.raises(MaskError, match=message):
        mask_decode(data=data, image=real_image(1))


# --------------------------------------------------------------------------- queue


def test_the_queue_walks_unreviewed_real_images_in_order_and_wraps(library):
    a, b, c = (real_image(i) for i in range(3))
    mask_save(image=b, mask=box(1, 1, 5, 5), source=MaskSource.REVIEWED, user=AdminFactory())
    assert image_next_unreviewed() == a
    assert image_next_unreviewed(after=a.pk) == c
    assert image_next_unreviewed(after=c.pk) == a  # wraps round
    for image in (a, c):
        mask_save(image=image, mask=box(1, 1, 5, 5), source=MaskSource.REVIEWED, user=AdminFactory())
    assert image_next_unreviewed(after=c.pk) is None


# --------------------------------------------------------------------------- background job
# Transactional: the enqueue happens on commit, and eagerly (no broker) that runs the task
# before ``mask_job_schedule`` returns, as it does in the embedded default.


@pytest.mark.django_db(transaction=True)
def test_the_automatic_mask_task_computes_masks_once_and_a_second_run_changes_nothing(library):
    given = real_image(0, mask=box(2, 2, 6, 6))
    bare = [real_image(i) for i in (1, 2)]
    job = mask_job_schedule(images=[given, *bare])  # eager: runs before it returns
    assert (job.status, job.n_total, job.n_computed, job.n_skipped) == ("succeeded", 3, 2, 1)
    assert job.progress()["percent"] == 100.0
    states = {}
    for image in bare:
        image.refresh_from_db()
        assert image.mask_source == MaskSource.AUTOMATIC and image.mask_reviewed_by is None
        area = image.lesion_area_fraction
        assert 0.05 < area < 0.4  # the dark disc (radius 7 of 32 px: 0.15)
        states[image.pk] = (image.mask.name, area)
    given.refresh_from_db()
    assert given.mask_source == MaskSource.IMPORTED
    n_files = len(default_storage.listdir("library")[1])

    # The same task again (a redelivery) and a second job over the same images: nothing twice.
    assert mask_job_run(job=job).status == "succeeded"
    again = mask_job_schedule(images=[given, *bare])
    assert (again.n_computed, again.n_skipped) == (0, 3)
    for image in bare:
        image.refresh_from_db()
        assert (image.mask.name, image.lesion_area_fraction) == states[image.pk]
    assert len(default_storage.listdir("library")[1]) == n_files


@pytest.mark.django_db(transaction=True)
def test_a_mask_job_lists_an_unreadable_image_and_goes_on(library):
    broken, fine = real_image(1), real_image(2)
    default_storage.delete(broken.file.name)
    job = mask_job_schedule(images=[broken, fine])
    assert job.status == "succeeded" and job.n_computed == 1
    assert [e["image"] for e in job.errors] == [broken.pk]


def test_a_mask_job_needs_real_images_and_a_broker(library, monkeypatch):
    synthetic = Image.objects.get(pk=real_image(1).pk)
    Image.objects.filter(pk=synthetic.pk).update(kind="synthetic")
    synthetic.refresh_from_db()
    with pytest.raises(Exception, match="no real image"):
        mask_job_schedule(images=[synthetic])
    with broker_down(monkeypatch), pytest.raises(BrokerUnavailable):
        mask_job_schedule(images=None)
    assert not MaskJob.objects.exists()


# --------------------------------------------------------------------------- import


@pytest.mark.django_db(transaction=True)
def test_import_images_with_auto_masks_computes_masks_for_rows_without_one(library, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    for i in range(2):
        lesion_photo(seed=i).save(folder / f"p{i}.png")
    PILImage.fromarray(box(0, 0, 8, 8).astype(np.uint8) * 255, "L").save(folder / "p0_mask.png")
    (folder / "manifest.csv").write_text(
        "image,mask,condition\np0.png,p0_mask.png,MEL\np1.png,,MEL\n", encoding="utf-8"
    )
    out = io.StringIO()
    call_command("import_images", str(folder / "manifest.csv"), "--auto-masks", stdout=out, verbosity=0)
    assert "imported 2" in out.getvalue()
    assert "1 automatic masks computed, 1 images already had one" in out.getvalue()
    sources = {img.provenance["original_name"]: img.mask_source for img in Image.objects.all()}
    assert sources == {"p0.png": "imported", "p1.png": "automatic"}


def test_import_without_auto_masks_leaves_images_without_a_mask(library, tmp_path):
    lesion_photo().save(tmp_path / "p.png")
    (tmp_path / "m.csv").write_text("image,condition\np.png,MEL\n", encoding="utf-8")
    call_command("import_images", str(tmp_path / "m.csv"), stdout=io.StringIO(), verbosity=0)
    assert Image.objects.get().mask_source == "" and not MaskJob.objects.exists()
