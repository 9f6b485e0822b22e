"""Admin screens for training jobs: schedule one, follow it live (step, losses, time left, the
latest sample grid), cancel or resume it, and reach the checkpoint it registered.

The progress JSON and the sample grid are admin views of this ModelAdmin (``get_urls``), so
they sit behind the admin's staff check like the page that polls them.
"""

from __future__ import annotations

import json
import shlex

from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from turingtest.core.admin_messages import job_message
from turingtest.training.forms import TrainingJobForm
from turingtest.training.models import TrainingJob
from turingtest.training.runs import job_argv
from turingtest.training.selection import TrainingError
from turingtest.training.services import training_job_cancel, training_job_create, training_job_resume


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "status",
        "progress_bar",
        "n_images",
        "image_size",
        "ngf",
        "checkpoint",
        "created",
    ]
    list_filter = ["status"]
    list_select_related = ["checkpoint"]
    fields = [
        "name",
        "status",
        "progress_bar",
        "sample_grid",
        "error",
        "checkpoint",
        "data_display",
        "options_display",
        "command_display",
        "chain_display",
        "created_by",
        "created",
        "started",
        "finished",
    ]
    readonly_fields = fields
    actions = ["cancel_jobs", "resume_jobs"]

    class Media:
        js = ["js/batch-progress.js", "js/training-progress.js"]  # the poller, then the page
        css = {"all": ["css/library-admin.css"]}

    def get_urls(self):
        view = self.admin_site.admin_view  # staff only, and never cached
        return [
            path("<int:pk>/progress.json", view(self.progress_view), name="training_trainingjob_progress"),
            path("<int:pk>/sample.png", view(self.sample_view), name="training_trainingjob_sample"),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(get_object_or_404(TrainingJob, pk=pk).progress())

    def sample_view(self, request: HttpRequest, pk: int) -> FileResponse:
        job = get_object_or_404(TrainingJob, pk=pk)
        if not job.sample_name:
            raise Http404("no sample grid yet")
        return FileResponse(default_storage.open(job.sample_name, "rb"), content_type="image/png")

    @admin.display(description="progress")
    def progress_bar(self, job: TrainingJob) -> str:
        losses = " · ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in job.progress()["losses"].items())
        return format_html(
            '<progress class="library-progress" data-training-progress="{}" value="{}" max="{}"></progress> '
            '<span class="library-progress-label" data-training-label>step {} / {} · {}{}</span>',
            reverse("admin:training_trainingjob_progress", args=[job.pk]),
            job.step,
            max(job.steps, 1),
            job.step,
            job.steps,
            job.get_status_display(),
            f" · {losses}" if losses else "",
        )

    @admin.display(description="latest sample grid (map | real | generated)")
    def sample_grid(self, job: TrainingJob) -> str:
        url = reverse("admin:training_trainingjob_sample", args=[job.pk])
        shown = job.sample_name.rsplit("/", 1)[-1] if job.sample_name else ""
        if not shown:  # hidden until there is one; training-progress.js swaps in each new grid
            return format_html('<img data-training-sample="{}" data-shown="" alt="sample grid" hidden>', url)
        return format_html(
            '<img data-training-sample="{}" data-shown="{}" src="{}?v={}" alt="sample grid {}">',
            url,
            shown,
            url,
            shown,
            shown,
        )

    @admin.display(description="images")
    def n_images(self, job: TrainingJob) -> int:
        return len(job.image_ids)

    @admin.display(description="data")
    def data_display(self, job: TrainingJob) -> str:
        selection = {
            "conditions": job.conditions or "all",
            "skin_types": job.skin_types or "all",
            "masks": job.masks,
        }
        return format_html(
            "{} real photos with masks, selected by <code>{}</code>; manifest: <code>{}</code>",
            len(job.image_ids),
            json.dumps(selection),
            job.manifest_name or "written by the first segment",
        )

    @admin.display(description="options")
    def options_display(self, job: TrainingJob) -> str:
        keys = [
            "image_size",
            "ngf",
            "steps",
            "batch_size",
            "lr",
            "seed",
            "checkpoint_every",
            "segment_seconds",
        ]
        return format_html("<pre>{}</pre>", json.dumps({k: getattr(job, k) for k in keys}, indent=2))

    @admin.display(description="the same run from the command line")
    def command_display(self, job: TrainingJob) -> str:
        argv = job_argv(job, manifest="manifest.csv", out="run/")
        return format_html("<code>python -m generator.train {}</code>", shlex.join(argv))

    @admin.display(description="segments")
    def chain_display(self, job: TrainingJob) -> str:
        step = "none yet" if job.state_step is None else f"step {job.state_step}"
        return f"{job.next_segment} finished, {job.n_claims} started; last stored checkpoint: {step}"

    @admin.action(description="Cancel selected training jobs")
    def cancel_jobs(self, request: HttpRequest, queryset) -> None:
        n = sum(training_job_cancel(job=job) for job in queryset)
        self.message_user(request, f"Cancelled {n} job(s).")

    @admin.action(description="Resume selected failed or cancelled jobs from their last checkpoint")
    def resume_jobs(self, request: HttpRequest, queryset) -> None:
        for job in queryset:
            try:
                training_job_resume(job=job)
            except TrainingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                job.refresh_from_db()
                url = reverse("admin:training_trainingjob_change", args=[job.pk])
                job_message(request, job=job, label="Training job", url=url)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a record: jobs change only through their services

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = TrainingJobForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            data["conditions"] = [c.code for c in data["conditions"]]
            try:
                job = training_job_create(**data, user=request.user)
            except TrainingError as exc:
                form.add_error(None, f"Not scheduled: {exc}")
            else:
                url = reverse("admin:training_trainingjob_change", args=[job.pk])
                job_message(
                    request, job=job, label="Training job", url=url, summary=f"{len(job.image_ids)} photos"
                )
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Schedule a DermGAN training job",
            "form": form,
        }
        return TemplateResponse(request, "admin/training/trainingjob/schedule.html", context)
