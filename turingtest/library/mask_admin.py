"""The mask editor in the admin: a page per real image, the review queue, automatic masks in the background.

``MaskEditorMixin`` adds to the image admin (``admin.py`` mixes it in): the editor page
(``/admin/library/image/<id>/mask/``), its "recompute automatic" endpoint, the queue
(``/admin/library/image/mask-queue/``, the next real image without a reviewed mask), a
list filter, a mask column and the "Compute automatic masks" action. The drawing itself
is ``static/js/mask-editor.js``; the page posts the mask as a PNG data URL and every check
is made here, by ``masks.mask_decode``, before ``masks.mask_save`` writes anything.
"""

from __future__ import annotations

import base64

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache

from turingtest.core.admin_messages import job_message
from turingtest.library.admin_widgets import progress_bar
from turingtest.library.masks import (
    MaskError,
    image_next_unreviewed,
    images_unreviewed,
    mask_automatic,
    mask_data_url,
    mask_decode,
    mask_load,
    mask_save,
)
from turingtest.library.models import Image, MaskJob, MaskSource
from turingtest.library.scheduling import mask_job_schedule
from turingtest.library.store import LibraryError


class MaskPostForm(forms.Form):
    """The editor's accept: the painted mask as a PNG data URL, checked against the image."""

    mask = forms.CharField(strip=True, error_messages={"required": "No mask was posted."})

    def __init__(self, *args, image: Image, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.image = image

    def clean_mask(self):
        try:
            return mask_decode(data=self.cleaned_data["mask"], image=self.image)
        except MaskError as exc:
            raise forms.ValidationError(str(exc)) from None


class MaskReviewFilter(admin.SimpleListFilter):
    title = "mask"
    parameter_name = "mask"

    def lookups(self, request, model_admin):
        return [
            ("unreviewed", "Real, not reviewed"),
            (MaskSource.REVIEWED, "Reviewed"),
            (MaskSource.AUTOMATIC, "Automatic"),
            (MaskSource.IMPORTED, "Imported"),
            (MaskSource.RENDERED, "Rendered"),
            ("none", "No mask"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "unreviewed":
            return queryset.filter(pk__in=images_unreviewed().values("pk"))
        if value == "none":
            return queryset.filter(mask="")
        if value in MaskSource.values:
            return queryset.filter(mask_source=value)
        return queryset


def _data_url(name: str) -> str:
    with default_storage.open(name, "rb") as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode("ascii")


class MaskEditorMixin:
    """Mask review for ``ImageAdmin``: mixed in before ``admin.ModelAdmin``."""

    # The mask file is read-only here: a mask changes only through mask_save (the editor), which
    # keeps its source and the lesion area and box in step.
    mask_fields = ("mask", "mask_editor_link", "mask_source", "mask_reviewed_by", "mask_reviewed_at")

    def get_urls(self):
        wrap = self.admin_site.admin_view  # staff only: others are sent to the login page
        return [
            path("mask-queue/", wrap(self.mask_queue_view), name="library_image_mask_queue"),
            path("<int:object_id>/mask/", wrap(self.mask_editor_view), name="library_image_mask"),
            path(
                "<int:object_id>/mask/automatic.json",
                wrap(never_cache(self.mask_automatic_view)),
                name="library_image_mask_automatic",
            ),
            *super().get_urls(),
        ]

    def get_list_filter(self, request: HttpRequest):
        return [*super().get_list_filter(request), MaskReviewFilter]

    def get_list_display(self, request: HttpRequest):
        return [*super().get_list_display(request), "mask_column"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.mask_fields]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "n_masks_unreviewed": images_unreviewed().count()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="mask")
    def mask_column(self, obj: Image) -> str:
        label = obj.get_mask_source_display() if obj.mask_source else "none"
        if obj.kind != Image.Kind.REAL:
            return label
        return format_html(
            '{} · <a href="{}">edit</a>', label, reverse("admin:library_image_mask", args=[obj.pk])
        )

    @admin.display(description="mask editor")
    def mask_editor_link(self, obj: Image) -> str:
        if obj.pk is None or obj.kind != Image.Kind.REAL:
            return "—"
        return format_html(
            '<a href="{}">Review the lesion mask</a>', reverse("admin:library_image_mask", args=[obj.pk])
        )

    @admin.action(description="Compute automatic masks (images without one)", permissions=["change"])
    def compute_automatic_masks(self, request: HttpRequest, queryset) -> None:
        try:
            job = mask_job_schedule(images=queryset, user=request.user)
        except LibraryError as exc:
            self.message_user(request, f"Not started: {exc}", level=messages.ERROR)
            return
        url = reverse("admin:library_maskjob_change", args=[job.pk])
        summary = f"{job.n_computed} automatic masks computed, {job.n_skipped} images already had one"
        job_message(request, job=job, label="Mask job", url=url, summary=summary)

    # --- views -----------------------------------------------------------------------------

    def _image_for_review(self, request: HttpRequest, object_id: int) -> Image:
        image = get_object_or_404(Image.objects.select_related("condition", "mask_reviewed_by"), pk=object_id)
        if not self.has_change_permission(request, image):
            raise PermissionDenied
        if image.kind != Image.Kind.REAL:
            raise Http404("only real images have masks to review")
        return image

    def mask_queue_view(self, request: HttpRequest) -> HttpResponse:
        """The next real image without a reviewed mask (after ``?after=<id>``, wrapping round)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        after = request.GET.get("after", "")
        following = image_next_unreviewed(after=int(after) if after.isdigit() else None)
        if following is None:
            messages.success(request, "Every real image has a reviewed mask.")
            return HttpResponseRedirect(reverse("admin:library_image_changelist"))
        return HttpResponseRedirect(reverse("admin:library_image_mask", args=[following.pk]))

    def mask_automatic_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """The automatic mask for the editor to show; nothing is saved until the reviewer accepts."""
        image = self._image_for_review(request, object_id)
        return JsonResponse({"mask": mask_data_url(mask_automatic(image=image))})

    def mask_editor_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        image = self._image_for_review(request, object_id)
        form = MaskPostForm(request.POST if request.method == "POST" else None, image=image)
        if request.method == "POST":
            if form.is_valid():
                mask_save(
                    image=image, mask=form.cleaned_data["mask"], source=MaskSource.REVIEWED, user=request.user
                )
                messages.success(
                    request,
                    f"Mask of image {image.pk} saved as reviewed "
                    f"(lesion {image.lesion_area_fraction:.1%} of the image).",
                )
                return HttpResponseRedirect(reverse("admin:library_image_mask_queue") + f"?after={image.pk}")
        stored = mask_load(image=image)
        if stored is None:
            mask_url, shown = (
                mask_data_url(mask_automatic(image=image)),
                "automatic (computed now, not saved yet)",
            )
        else:
            mask_url, shown = mask_data_url(stored), image.get_mask_source_display().lower()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Lesion mask of image {image.pk}",
            "image": image,
            "form": form,
            "photo_url": _data_url(image.file.name),
            "mask_url": mask_url,
            "shown": shown,
            "n_unreviewed": images_unreviewed().count(),
            "next_url": reverse("admin:library_image_mask_queue") + f"?after={image.pk}",
            "automatic_url": reverse("admin:library_image_mask_automatic", args=[image.pk]),
        }
        status = 400 if form.is_bound else 200
        return TemplateResponse(request, "admin/library/image/mask_editor.html", context, status=status)


@admin.register(MaskJob)
class MaskJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "outcome",
        "progress_bar",
        "n_computed",
        "n_skipped",
        "import_job",
        "created_by",
        "created",
    ]
    list_filter = ["status"]
    list_select_related = ["import_job", "created_by"]
    readonly_fields = [
        "outcome",
        "progress_bar",
        "n_total",
        "n_done",
        "n_computed",
        "n_skipped",
        "errors_display",
        "error",
        "import_job",
        "created_by",
        "created",
        "started",
        "finished",
    ]
    exclude = ["errors", "image_pks"]

    class Media:
        js = ["js/batch-progress.js"]
        css = {"all": ["css/library-admin.css"]}

    def get_urls(self):
        progress = self.admin_site.admin_view(never_cache(self.progress_view))
        return [
            path("<int:pk>/progress.json", progress, name="library_maskjob_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(get_object_or_404(MaskJob, pk=pk).progress())

    @admin.display(description="progress")
    def progress_bar(self, obj: MaskJob) -> str:
        return progress_bar(
            url=reverse("admin:library_maskjob_progress", args=[obj.pk]),
            done=obj.n_done,
            total=obj.n_total,
            label=obj.outcome,
        )

    @admin.display(description="status", ordering="status")
    def outcome(self, obj: MaskJob) -> str:
        return obj.outcome

    @admin.display(description="images that failed")
    def errors_display(self, obj: MaskJob) -> str:
        if not obj.errors:
            return "none"
        return format_html(
            "<pre>{}</pre>", "\n".join(f"image {e['image']}: {e['reason']}" for e in obj.errors)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from the image list's action or an import

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
