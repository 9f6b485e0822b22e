"""The image admin's pictures and ground-truth lock (mixed into ``ImageAdmin`` in ``admin.py``).

Thumbnails come from an admin view (staff with view permission only): image files are
never served publicly, since a stored name or URL must not reach a rater. Kind, condition
and Fitzpatrick type are the ground truth a study's judgments are scored against, so once
an image is in a study that is no longer a draft they are read-only here.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache

from turingtest.library.models import Image
from turingtest.library.store import image_thumbnail_png

# Pixel sizes the thumbnail view renders: twice the CSS size, so they stay sharp on dense screens.
THUMBNAIL_SIZES = {"list": 128, "page": 512}
GROUND_TRUTH_FIELDS = ("kind", "condition", "fitzpatrick")


def studies_locking(image: Image) -> list:
    """The studies past draft that use ``image``: their judgments are scored against its ground truth.

    Looked up through the reverse relation by status value, so the library never imports the
    studies app (studies depends on the library, not the other way round).
    """
    if image.pk is None:
        return []
    items = image.study_items.exclude(study__status="draft").select_related("study").order_by("study_id")
    return [item.study for item in items]


class ImageGroundTruthMixin:
    """Thumbnails on the image list and page; ground truth read-only once a study uses the image."""

    def get_urls(self):
        view = self.admin_site.admin_view(never_cache(self.thumbnail_view))
        return [
            path("<int:object_id>/thumbnail/<str:size>.png", view, name="library_image_thumbnail"),
            *super().get_urls(),
        ]

    def thumbnail_view(self, request: HttpRequest, object_id: int, size: str) -> HttpResponse:
        if size not in THUMBNAIL_SIZES:
            raise Http404("unknown thumbnail size")
        image = get_object_or_404(Image, pk=object_id)
        if not self.has_view_permission(request, image):
            raise PermissionDenied
        response = HttpResponse(
            image_thumbnail_png(image=image, size=THUMBNAIL_SIZES[size]), content_type="image/png"
        )
        response["Cache-Control"] = "private, no-store"
        return response

    def get_list_display(self, request: HttpRequest):
        return ["thumbnail", *super().get_list_display(request)]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = [*super().get_readonly_fields(request, obj), "picture"]
        if obj is not None and studies_locking(obj):
            fields += [f for f in GROUND_TRUTH_FIELDS if f not in fields]
        return fields

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        image = self.get_object(request, object_id)
        locking = studies_locking(image) if image is not None else []
        extra_context = {
            **(extra_context or {}),
            "locking_studies": [
                (study, reverse("study-detail", args=[study.pk]), study.get_status_display())
                for study in locking
            ],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="image")
    def thumbnail(self, obj: Image) -> str:
        url = reverse("admin:library_image_thumbnail", args=[obj.pk, "list"])
        return format_html(
            '<img class="library-thumb" src="{}" alt="image {}" width="64" height="64" loading="lazy">',
            url,
            obj.pk,
        )

    @admin.display(description="image")
    def picture(self, obj: Image) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:library_image_thumbnail", args=[obj.pk, "page"])
        return format_html(
            '<img class="library-picture" src="{}" alt="image {}" width="256" height="256">', url, obj.pk
        )
