"""The mask editor in the admin: who may open it, accepting a mask, refusing bad ones, the
queue, the "recompute automatic" endpoint, the background action and the zip import option."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image as PILImage

from tests.factories import AdminFactory, UserFactory
from tests.library_support import library_fixture  # noqa: F401  (fixture)
from tests.mask_support import SIZE, box, lesion_photo, png_data_url, real_image
from turingtest.library.masks import mask_load
from turingtest.library.models import Image, ImportJob, MaskJob, MaskSource


def editor_url(image: Image) -> str:
    return reverse("admin:library_image_mask", args=[image.pk])


@pytest.fixture
def admin_client(client, library):
    client.force_login(AdminFactory(username="dr.mask"))
    return client


def test_the_editor_shows_the_photo_and_its_mask_with_static_script_and_no_inline_code(admin_client):
    image = real_image(1, mask=box(4, 4, 12, 12))
    response = admin_client.get(editor_url(image))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="mask-canvas" width="32" height="32" data-mask-url="data:image/png;base64,' in html
    assert 'class="mask-photo" src="data:image/png;base64,' in html
    assert re.search(r'<script type="module" src="[^"]*js/mask-editor\.js"', html)
    assert "showing the <strong>imported</strong> mask" in html
    # The site's CSP allows no inline scripts or style attributes.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html.split('id="content"')[1])
    assert " style=" not in html
    for key in ("B", "E", "P", "Enter", "N"):
        assert f"<kbd>{key}</kbd>" in html


def test_an_image_without_a_mask_opens_on_an_automatic_one_that_is_not_saved_yet(admin_client):
    image = real_image(1)
    html = admin_client.get(editor_url(image)).content.decode()
    assert "automatic (computed now, not saved yet)" in html
    image.refresh_from_db()
    assert not image.mask and image.mask_source == ""
    data = admin_client.get(reverse("admin:library_image_mask_automatic", args=[image.pk])).json()
    assert data["mask"].startswith("data:image/png;base64,")
    image.refresh_from_db()
    assert not image.mask


def test_non_staff_are_sent_to_log_in_and_staff_without_change_permission_get_403(client, library):
    image = real_image(1)
    response = client.get(editor_url(image))
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(UserFactory())
    assert client.get(editor_url(image)).status_code == 302
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_image"))
    client.force_login(viewer)
    assert client.get(editor_url(image)).status_code == 403
    response = client.post(editor_url(image), {"mask": png_data_url(box(0, 0, 8, 8).astype(np.uint8) * 255)})
    assert response.status_code == 403
    image.refresh_from_db()
    assert not image.mask
    assert client.get(reverse("admin:library_image_mask_queue")).status_code == 403


def test_accepting_saves_the_mask_as_reviewed_and_moves_to_the_next_unreviewed_image(admin_client):
    first, reviewed, third = real_image(1), real_image(2), real_image(3)
    Image.objects.filter(pk=reviewed.pk).update(mask_source=MaskSource.REVIEWED)
    painted = box(5, 6, 20, 18)
    response = admin_client.post(editor_url(first), {"mask": png_data_url(painted.astype(np.uint8) * 255)})
    assert response.status_code == 302
    response = admin_client.get(response["Location"])
    assert response["Location"] == editor_url(third)  # the reviewed one is skipped
    first.refresh_from_db()
    assert first.mask_source == MaskSource.REVIEWED
    assert first.mask_reviewed_by.username == "dr.mask" and first.mask_reviewed_at is not None
    assert np.array_equal(mask_load(image=first), painted)
    assert first.lesion_area_fraction == pytest.approx(painted.mean())
    assert first.lesion_bbox == pytest.approx([5 / 32, 6 / 32, 20 / 32, 18 / 32], abs=1e-4)


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({}, "No mask was posted."),
        ({"mask": "not a data url"}, "must be a PNG data URL"),
        ({"mask": png_data_url(np.full((16, 16), 255, dtype=np.uint8))}, "mask size mismatch"),
        ({"mask": png_data_url(np.full((64, 48), 255, dtype=np.uint8))}, "the mask is 48×64"),
        ({"mask": png_data_url(np.zeros((SIZE, SIZE), dtype=np.uint8))}, "the mask is empty"),
        ({"mask": png_data_url(np.asarray(lesion_photo(seed=5)), "RGB")}, "the mask is not binary"),
    ],
)
def test_a_bad_mask_is_refused_with_a_clear_error_and_nothing_is_written(admin_client, posted, message):
    image = real_image(1, mask=box(2, 2, 6, 6))
    before = (image.mask.name, image.mask_source, image.lesion_area_fraction)
    files = set(default_storage.listdir("library")[1])
    response = admin_client.post(editor_url(image), posted)
    assert response.status_code == 400
    assert message in response.content.decode()
    image.refresh_from_db()
    assert (image.mask.name, image.mask_source, image.lesion_area_fraction) == before
    assert set(default_storage.listdir("library")[1]) == files


def test_the_change_page_links_the_editor_and_keeps_the_mask_file_read_only(admin_client):
    image = real_image(1, mask=box(1, 1, 4, 4))
    html = admin_client.get(reverse("admin:library_image_change", args=[image.pk])).content.decode()
    assert f'href="{editor_url(image)}">Review the lesion mask' in html
    assert 'name="mask"' not in html  # no upload that would bypass mask_save


def test_the_queue_starts_at_the_first_unreviewed_image_and_ends_on_the_image_list(admin_client):
    image = real_image(1)
    queue = reverse("admin:library_image_mask_queue")
    assert admin_client.get(queue)["Location"] == editor_url(image)
    Image.objects.filter(pk=image.pk).update(mask_source=MaskSource.REVIEWED)
    assert admin_client.get(queue)["Location"] == reverse("admin:library_image_changelist")


def test_the_image_list_filters_unreviewed_masks_and_links_the_queue(admin_client):
    unreviewed, reviewed = real_image(1), real_image(2)
    Image.objects.filter(pk=reviewed.pk).update(mask_source=MaskSource.REVIEWED)
    response = admin_client.get(reverse("admin:library_image_changelist") + "?mask=unreviewed")
    assert [row.pk for row in response.context["cl"].result_list] == [unreviewed.pk]
    html = response.content.decode()
    assert "Review masks (1 to go)" in html and editor_url(unreviewed) in html


@pytest.mark.django_db(transaction=True)
def test_the_compute_automatic_masks_action_runs_a_mask_job_with_a_progress_bar(admin_client):
    images = [real_image(i) for i in range(2)]
    response = admin_client.post(
        reverse("admin:library_image_changelist"),
        {"action": "compute_automatic_masks", "_selected_action": [i.pk for i in images]},
    )
    assert response.status_code == 302
    job = MaskJob.objects.get()
    assert (job.status, job.n_computed, job.created_by.username) == ("succeeded", 2, "dr.mask")
    assert {i.mask_source for i in Image.objects.all()} == {MaskSource.AUTOMATIC}
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    change = reverse("admin:library_maskjob_change", args=[job.pk])
    assert message.startswith(f'<a href="{change}">Mask job {job.pk}</a> finished in ')
    assert message.endswith(": 2 automatic masks computed, 0 images already had one")
    page = admin_client.get(reverse("admin:library_maskjob_change", args=[job.pk])).content.decode()
    assert "2 / 2 · Succeeded" in page
    progress_url = reverse("admin:library_maskjob_progress", args=[job.pk])
    assert f'data-progress-url="{progress_url}"' in page and "js/batch-progress.js" in page
    assert admin_client.get(progress_url).json()["percent"] == 100.0


@pytest.mark.django_db(transaction=True)
def test_the_zip_import_with_automatic_masks_computes_them_after_the_import(admin_client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(2):
            png = io.BytesIO()
            lesion_photo(seed=i, size=40).save(png, "PNG")
            zf.writestr(f"set/p{i}.png", png.getvalue())
        mask = io.BytesIO()
        PILImage.fromarray(np.pad(np.full((8, 8), 255, np.uint8), ((0, 32), (0, 32))), "L").save(mask, "PNG")
        zf.writestr("set/p0_mask.png", mask.getvalue())
        zf.writestr("set/manifest.csv", "image,mask,condition\np0.png,p0_mask.png,MEL\np1.png,,NEV\n")
    buf.seek(0)
    buf.name = "set.zip"
    response = admin_client.post(
        reverse("admin:library_importjob_add"), {"archive": buf, "format": "auto", "auto_masks": "on"}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    mask_job = MaskJob.objects.get()
    assert job.status == "succeeded" and mask_job.import_job == job
    assert (mask_job.status, mask_job.n_computed, mask_job.n_skipped) == ("succeeded", 1, 0)
    sources = {img.provenance["original_name"]: img.mask_source for img in Image.objects.all()}
    assert sources == {"p0.png": "imported", "p1.png": "automatic"}
