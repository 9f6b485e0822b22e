"""The image admin: thumbnails on the list and page (admin only), and ground truth read-only
once an image is in a study that is no longer a draft."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from PIL import Image as PILImage

from tests.factories import AdminFactory, ImageFactory, StudyFactory, StudyItemFactory, UserFactory
from turingtest.library.image_admin import THUMBNAIL_SIZES
from turingtest.library.models import Image
from turingtest.studies.models import Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(AdminFactory(username="dr.admin"))
    return client


def _change(image: Image) -> str:
    return reverse("admin:library_image_change", args=[image.pk])


def _thumbnail(image: Image, size: str) -> str:
    return reverse("admin:library_image_thumbnail", args=[image.pk, size])


def test_the_image_list_shows_a_thumbnail_per_image_without_inline_styles(admin_client):
    images = [ImageFactory(), ImageFactory(kind=Image.Kind.SYNTHETIC)]
    response = admin_client.get(reverse("admin:library_image_changelist"))
    html = response.content.decode()
    for image in images:
        assert f'class="library-thumb" src="{_thumbnail(image, "list")}"' in html
    assert "css/library-admin.css" in html
    assert " style=" not in html.split('id="content"')[1]


def test_the_thumbnail_view_returns_a_small_png_that_is_not_cached(admin_client):
    image = ImageFactory()
    response = admin_client.get(_thumbnail(image, "list"))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    with PILImage.open(io.BytesIO(response.content)) as im:
        assert im.size == (THUMBNAIL_SIZES["list"],) * 2
    assert admin_client.get(_thumbnail(image, "huge")).status_code == 404


def test_only_staff_with_view_permission_get_thumbnails(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    image = ImageFactory()
    assert client.get(_thumbnail(image, "list")).status_code == 302  # to the admin login
    staff = UserFactory(username="staff.without.perm", is_staff=True)
    client.force_login(staff)
    assert client.get(_thumbnail(image, "list")).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_image"))
    assert client.get(_thumbnail(image, "list")).status_code == 200


def test_the_image_page_shows_the_picture(admin_client):
    image = ImageFactory()
    html = admin_client.get(_change(image)).content.decode()
    assert f'class="library-picture" src="{_thumbnail(image, "page")}"' in html


def _editable(html: str, field: str) -> bool:
    return re.search(rf'name="{field}"', html) is not None


def test_ground_truth_is_editable_while_the_image_is_only_in_draft_studies(admin_client):
    image = ImageFactory()
    StudyItemFactory(image=image, study=StudyFactory(status=Study.Status.DRAFT))
    html = admin_client.get(_change(image)).content.decode()
    assert all(_editable(html, f) for f in ("kind", "condition", "fitzpatrick"))
    assert "data-ground-truth-locked" not in html


@pytest.mark.parametrize("status", [s for s in Study.Status.values if s != Study.Status.DRAFT])
def test_ground_truth_is_read_only_for_an_image_in_a_study_past_draft_with_a_note_why(admin_client, status):
    image = ImageFactory(fitzpatrick=3)
    study = StudyFactory(title="Melanoma study", status=status)
    StudyItemFactory(image=image, study=study)
    html = admin_client.get(_change(image)).content.decode()
    assert not any(_editable(html, f) for f in ("kind", "condition", "fitzpatrick"))
    assert _editable(html, "patient_id")  # the rest stays editable
    note = html.split("data-ground-truth-locked")[1].split("</p>")[0]
    assert "Melanoma study" in note and reverse("study-detail", args=[study.pk]) in note
    assert "read-only" in html


def test_a_posted_ground_truth_change_is_ignored_once_the_study_is_open(admin_client):
    image = ImageFactory(kind=Image.Kind.REAL, fitzpatrick=3)
    StudyItemFactory(image=image, study=StudyFactory(status=Study.Status.OPEN))
    other = ImageFactory().condition
    response = admin_client.post(
        _change(image),
        {
            "kind": "synthetic",
            "condition": other.pk,
            "fitzpatrick": "5",
            "patient_id": "p-7",
            "lesion_area_fraction": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    image.refresh_from_db()
    assert (image.kind, image.fitzpatrick, image.patient_id) == ("real", 3, "p-7")
    assert image.condition_id != other.pk
