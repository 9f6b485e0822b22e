"""Admin screens: the library, checkpoint upload, batch scheduling with preview and live progress, zip imports.

The "add" pages of checkpoints, batches and imports are small custom views because
each one calls a service (validation with the generator's loader, enqueue after
commit, a preview render) instead of saving a ModelForm.
"""

from __future__ import annotations

import base64
import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from turingtest.core.admin_messages import job_message
from turingtest.evaluation.admin import (
    FidelityRunInline,
    checkpoint_fidelity_html,
    compute_fidelity_for_batches,
    compute_fidelity_link,
)
from turingtest.library.admin_widgets import progress_bar as _progress_bar
from turingtest.library.checkpoints import checkpoint_register
from turingtest.library.forms import (
    BatchScheduleForm,
    CheckpointUploadForm,
    ImportUploadForm,
    MatchScheduleForm,
    upload_to_temp,
)
from turingtest.library.image_admin import ImageGroundTruthMixin
from turingtest.library.mask_admin import MaskEditorMixin
from turingtest.library.models import (
    Condition,
    GenerationBatch,
    GenerationChunk,
    GeneratorCheckpoint,
    Image,
    ImportJob,
)
from turingtest.library.rendering import batch_preview
from turingtest.library.scheduling import (
    batch_cancel,
    batch_schedule,
    batch_schedule_matched,
    import_job_create,
)
from turingtest.library.store import LibraryError
from turingtest.trail.services import Action, event_record_form


def _pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_malignant", "is_rare", "map_index"]
    list_filter = ["is_malignant", "is_rare"]
    search_fields = ["code", "name"]


@admin.register(Image)
class ImageAdmin(ImageGroundTruthMixin, MaskEditorMixin, admin.ModelAdmin):
    # Thumbnails and the ground-truth lock: image_admin.py; the mask editor, queue and filter: mask_admin.py
    list_display = [
        "id",
        "kind",
        "condition",
        "fitzpatrick",
        "fitzpatrick_source",
        "ita_display",
        "native_display",
        "batch",
        "created",
    ]
    list_filter = ["kind", "condition", "fitzpatrick", "fitzpatrick_source"]
    search_fields = ["public_token", "sha256", "patient_id"]
    readonly_fields = [
        "public_token",
        "sha256",
        "width",
        "height",
        "native_display",
        "provenance",
        "created",
        "batch",
        "batch_index",
        "lesion_area_fraction",
        "lesion_bbox",
        "skin_rgb",
        "fitzpatrick_source",
        "ita_display",
    ]
    exclude = ["native_width", "native_height", "ita_degrees"]
    list_select_related = ["condition", "batch"]
    actions = ["generate_matched", "compute_automatic_masks"]

    class Media:
        css = {"all": ["css/library-admin.css"]}

    def save_model(self, request: HttpRequest, obj: Image, form, change: bool) -> None:
        # A type a person enters here is their label, not the importer's estimate any more.
        if "fitzpatrick" in form.changed_data:
            obj.fitzpatrick_source = (
                Image.FitzpatrickSource.LABEL if obj.fitzpatrick is not None else Image.FitzpatrickSource.NONE
            )
        super().save_model(request, obj, form, change)
        event_record_form(
            action=Action.IMAGE_GROUND_TRUTH_CHANGED,
            form=form,
            fields=("kind", "condition", "fitzpatrick"),
            request=request,
        )

    def has_generate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("library.add_generationbatch")

    @admin.action(description="Generate matched to these real images", permissions=["generate"])
    def generate_matched(self, request: HttpRequest, queryset) -> HttpResponse | None:
        """A small form (checkpoint, mirrors per image, seed), then one matched batch.

        The form posts back to this action with the same selection (Django's
        delete-confirmation pattern), so filters and "select all" carry over.
        """
        reals = queryset.filter(kind=Image.Kind.REAL).select_related("condition").order_by("pk")
        n_synthetic = queryset.exclude(kind=Image.Kind.REAL).count()
        if not reals.exists():
            self.message_user(
                request, "Select real images: only real images can be mirrored.", level=messages.ERROR
            )
            return None
        form = MatchScheduleForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                batch = batch_schedule_matched(
                    checkpoint=data["checkpoint"],
                    images=reals,
                    seed=data["seed"],
                    per_real=data["per_real"],
                    chunk_size=data["chunk_size"],
                    created_by=request.user,
                )
            except LibraryError as exc:
                form.add_error(None, f"Not scheduled: {exc}")
            else:
                url = reverse("admin:library_generationbatch_change", args=[batch.pk])
                job_message(
                    request,
                    job=batch,
                    label="Batch",
                    url=url,
                    summary=f"{batch.n_done} synthetic images mirroring {reals.count()} real images",
                )
                return HttpResponseRedirect(url)
        by_condition = reals.values("condition__code").annotate(n=Count("pk")).order_by("condition__code")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Generate synthetic images matched to these real images",
            "form": form,
            "by_condition": by_condition,
            "n_real": reals.count(),
            "n_synthetic": n_synthetic,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/library/image/generate_matched.html", context)

    @admin.display(description="estimated ITA°", ordering="ita_degrees")
    def ita_display(self, obj: Image) -> str:
        return "–" if obj.ita_degrees is None else f"{obj.ita_degrees:.1f}"

    @admin.display(description="native resolution")
    def native_display(self, obj: Image) -> str:
        if obj.native_width is None or obj.native_height is None:
            return "unknown"
        return f"{obj.native_width} × {obj.native_height}"


@admin.register(GeneratorCheckpoint)
class GeneratorCheckpointAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "short_sha",
        "image_size_display",
        "conditions_display",
        "size_bytes",
        "created",
    ]
    readonly_fields = [
        "name",
        "sha256",
        "size_bytes",
        "file",
        "config_display",
        "metadata_display",
        "fidelity",
        "created",
    ]
    exclude = ["config", "metadata"]

    @admin.display(description="fidelity of its batches")
    def fidelity(self, obj: GeneratorCheckpoint) -> str:
        return checkpoint_fidelity_html(obj)

    @admin.display(description="sha256")
    def short_sha(self, obj: GeneratorCheckpoint) -> str:
        return obj.sha256[:12]

    @admin.display(description="render size")
    def image_size_display(self, obj: GeneratorCheckpoint) -> int:
        return obj.image_size

    @admin.display(description="conditions")
    def conditions_display(self, obj: GeneratorCheckpoint) -> str:
        return ", ".join(obj.conditions)

    @admin.display(description="config")
    def config_display(self, obj: GeneratorCheckpoint) -> str:
        return _pretty_json(obj.config)

    @admin.display(description="metadata")
    def metadata_display(self, obj: GeneratorCheckpoint) -> str:
        return _pretty_json(obj.metadata)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = CheckpointUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            path = upload_to_temp(upload, ".pt")
            try:
                before = GeneratorCheckpoint.objects.count()
                checkpoint = checkpoint_register(
                    path=path, name=form.cleaned_data["name"] or upload.name.rsplit(".", 1)[0]
                )
            except LibraryError as exc:
                form.add_error("file", f"Rejected: {exc}")
            else:
                if GeneratorCheckpoint.objects.count() == before:
                    messages.warning(request, f"This file is already registered as “{checkpoint}”.")
                else:
                    messages.success(request, f"Checkpoint “{checkpoint}” validated and registered.")
                return HttpResponseRedirect(
                    reverse("admin:library_generatorcheckpoint_change", args=[checkpoint.pk])
                )
            finally:
                if not hasattr(upload, "temporary_file_path"):
                    path.unlink(missing_ok=True)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload a generator checkpoint",
            "form": form,
        }
        return TemplateResponse(request, "admin/library/generatorcheckpoint/upload.html", context)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Read-only after upload: the sha256 in every synthetic image's provenance points here.
        return False


class GenerationChunkInline(admin.TabularInline):
    model = GenerationChunk
    extra = 0
    can_delete = False
    fields = ["number", "start", "stop", "status", "attempts", "started", "finished", "error", "task_id"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "checkpoint", "count", "seed", "status", "progress_bar", "priority", "created"]
    list_filter = ["status", "checkpoint"]
    list_select_related = ["checkpoint"]
    readonly_fields = [
        "checkpoint",
        "count",
        "seed",
        "image_size",
        "chunk_size",
        "distribution_display",
        "start_at",
        "priority",
        "status",
        "progress_bar",
        "error",
        "created_by",
        "created",
        "started",
        "finished",
        "render_seconds",
        "fidelity",
        "mirrors",
    ]
    exclude = ["distribution", "specs", "n_done"]
    # Fidelity metrics (turingtest.evaluation) are computed per batch and listed on its page.
    inlines = [GenerationChunkInline, FidelityRunInline]
    actions = ["cancel_batches", compute_fidelity_for_batches]

    class Media:
        js = ["js/batch-progress.js"]
        css = {"all": ["css/library-admin.css"]}

    @admin.display(description="fidelity metrics")
    def fidelity(self, obj: GenerationBatch) -> str:
        return compute_fidelity_link(obj)

    @admin.display(description="progress")
    def progress_bar(self, obj: GenerationBatch) -> str:
        return _progress_bar(
            url=reverse("library-batch-progress", args=[obj.pk]),
            done=obj.n_done,
            total=obj.count,
            label=obj.get_status_display(),
        )

    @admin.display(description="mirrors real images")
    def mirrors(self, obj: GenerationBatch) -> str:
        if obj.specs is None:
            return "no (drawn from the spec distribution)"
        ids = sorted({entry["mirrors_image_id"] for entry in obj.specs})
        url = reverse("admin:library_image_changelist") + "?id__in=" + ",".join(map(str, ids))
        return format_html(
            '<a href="{}">{} real images</a>, {} synthetic each', url, len(ids), obj.count // max(len(ids), 1)
        )

    @admin.display(description="spec distribution")
    def distribution_display(self, obj: GenerationBatch) -> str:
        return _pretty_json(obj.distribution)

    @admin.action(description="Cancel selected batches (revokes chunks not yet started)")
    def cancel_batches(self, request: HttpRequest, queryset) -> None:
        n_batches = 0
        for batch in queryset:
            if batch_cancel(batch=batch) or batch.status == GenerationBatch.Status.CANCELLED:
                n_batches += 1
        self.message_user(request, f"Cancelled {n_batches} batch(es).")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Schedule a batch: the first submit previews the first renders, the second commits."""
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = BatchScheduleForm(request.POST or None)
        previews: list[tuple[str, str]] = []  # (data URL, caption)
        preview_error = ""
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if request.POST.get("action") == "schedule":
                try:
                    batch = batch_schedule(
                        checkpoint=data["checkpoint"],
                        count=data["count"],
                        seed=data["seed"],
                        distribution=data["distribution"],
                        chunk_size=data["chunk_size"],
                        start_at=data["start_at"],
                        priority=data["priority"],
                        created_by=request.user,
                    )
                except LibraryError as exc:
                    messages.error(request, f"Not scheduled: {exc}")
                else:
                    url = reverse("admin:library_generationbatch_change", args=[batch.pk])
                    job_message(request, job=batch, label="Batch", url=url, summary=f"{batch.n_done} images")
                    return HttpResponseRedirect(url)
            try:
                rendered = batch_preview(
                    checkpoint=data["checkpoint"],
                    distribution=data["distribution"],
                    seed=data["seed"],
                    n=min(4, data["count"]),
                )
                previews = [
                    ("data:image/png;base64," + base64.b64encode(p.png).decode(), p.caption) for p in rendered
                ]
            except Exception as exc:  # a preview failure must be shown, not a 500
                preview_error = f"{type(exc).__name__}: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Schedule a generation batch",
            "form": form,
            "previews": previews,
            "preview_error": preview_error,
        }
        return TemplateResponse(request, "admin/library/generationbatch/schedule.html", context)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "format",
        "manifest_name",
        "is_dry_run",
        "outcome",
        "progress_bar",
        "n_imported",
        "created",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "format",
        "archive",
        "archive_sha256",
        "manifest_name",
        "is_dry_run",
        "outcome",
        "progress_bar",
        "n_rows",
        "n_checked",
        "n_imported",
        "n_already",
        "errors_display",
        "error",
        "created_by",
        "created",
        "finished",
    ]
    exclude = ["errors"]

    class Media:
        js = ["js/batch-progress.js"]
        css = {"all": ["css/library-admin.css"]}

    @admin.display(description="progress")
    def progress_bar(self, obj: ImportJob) -> str:
        return _progress_bar(
            url=reverse("library-import-progress", args=[obj.pk]),
            done=obj.n_checked,
            total=obj.n_rows,
            label=obj.outcome,
        )

    @admin.display(description="status", ordering="status")
    def outcome(self, obj: ImportJob) -> str:
        return obj.outcome

    @admin.display(description="bad rows")
    def errors_display(self, obj: ImportJob) -> str:
        if not obj.errors:
            return "none"
        return format_html("<pre>{}</pre>", "\n".join(f"line {e['line']}: {e['reason']}" for e in obj.errors))

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                job = import_job_create(
                    archive=data["archive"],
                    format=data["format"],
                    manifest_name=data["manifest_name"],
                    dry_run=data["dry_run"],
                    user=request.user,
                    auto_masks=data["auto_masks"],
                )
            except LibraryError as exc:
                messages.error(request, f"Not started: {exc}")
            else:
                url = reverse("admin:library_importjob_change", args=[job.pk])
                verb = "would import" if job.is_dry_run else "imported"
                job_message(
                    request, job=job, label="Import", url=url, summary=f"{job.n_imported} images {verb}"
                )
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import images from a zip",
            "form": form,
        }
        return TemplateResponse(request, "admin/library/importjob/upload.html", context)
