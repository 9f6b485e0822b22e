"""Admin screens for evaluation runs: read-only records, "add" pages that start a run, and
pieces for the generation-batch admin (``FidelityRunInline``, ``compute_fidelity_for_batches``).

The batch admin lives in ``turingtest/library/admin.py``; wire these in there with::

    from turingtest.evaluation.admin import FidelityRunInline, compute_fidelity_for_batches
    inlines = [GenerationChunkInline, FidelityRunInline]
    actions = ["cancel_batches", compute_fidelity_for_batches]
    # and, for a button on the page, a readonly field:
    @admin.display(description="fidelity")
    def fidelity(self, obj): return compute_fidelity_link(obj)
"""

from __future__ import annotations

import json
import mimetypes

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from turingtest.core.admin_messages import job_message
from turingtest.evaluation import services
from turingtest.evaluation.forms import AugmentationRunForm, FidelityRunForm
from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.evaluation.presentation import (
    augmentation_report_html,
    fidelity_results_html,
    headline_text,
    kid_text,
    report_files,
)
from turingtest.evaluation.selection import EvaluationError

__all__ = [
    "AugmentationRunAdmin",
    "FidelityRunAdmin",
    "FidelityRunInline",
    "compute_fidelity_for_batches",
    "compute_fidelity_link",
    "fidelity_results_html",
]


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _beside_baseline(run: FidelityRun, key: str, digits: int = 4) -> str:
    """``12.3 (4.56)``: the overall value with the real-vs-real baseline's in brackets."""
    if not run.results:
        return "–"
    baseline = run.baseline_overall()
    return f"{_fmt(run.overall().get(key), digits)} ({_fmt(baseline.get(key), digits) if baseline else 'no baseline'})"


def _pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _progress(run) -> str:
    # "Succeeded · 100%"; the step message ("computing features…") only while it means something.
    step = run.progress_message if run.status == run.Status.RUNNING and run.progress_message else ""
    return format_html(
        '<progress class="library-progress" value="{}" max="1"></progress> '
        '<span class="library-progress-label">{} · {}%{}</span>',
        run.progress,
        run.get_status_display(),
        round(100 * run.progress),
        f" · {step}" if step else "",
    )


def _run_url(run) -> str:
    opts = run._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[run.pk])


def compute_fidelity_link(batch) -> str:
    """A "Compute fidelity metrics" link for a batch's admin page (a readonly field there)."""
    url = reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}"
    return format_html('<a class="button" href="{}">Compute fidelity metrics</a>', url)


@admin.action(description="Compute fidelity metrics (classifier:auto) for the selected batches")
def compute_fidelity_for_batches(modeladmin, request: HttpRequest, queryset) -> None:
    """Admin action for the generation-batch list: one FidelityRun per batch, each reported as it stands."""
    for batch in queryset:
        try:
            run = services.fidelity_run_create(batch=batch, user=request.user)
        except EvaluationError as exc:
            modeladmin.message_user(request, f"batch {batch.pk}: {exc}", messages.ERROR)
            continue
        job_message(request, job=run, label=f"Fidelity run (batch {batch.pk})", url=_run_url(run))


class FidelityRunInline(admin.TabularInline):
    """Fidelity results on a generation batch's admin page (read-only)."""

    model = FidelityRun
    fk_name = "batch"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "status",
        "extractor_name",
        "extractor_short",
        "n_sets",
        "fid",
        "kid",
        "precision",
        "recall",
        "diversity",
        "warnings",
        "created",
    ]
    readonly_fields = fields
    ordering = ["-created"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="extractor sha256")
    def extractor_short(self, run: FidelityRun) -> str:
        return run.extractor_sha256[:12]

    @admin.display(description="real / synthetic")
    def n_sets(self, run: FidelityRun) -> str:
        return f"{len(run.real_image_ids)} / {len(run.synthetic_image_ids)}"

    @admin.display(description="FID (real vs real)")
    def fid(self, run: FidelityRun) -> str:
        return _beside_baseline(run, "fid")

    @admin.display(description="KID ± std (real vs real)")
    def kid(self, run: FidelityRun) -> str:
        if not run.results:
            return "–"
        baseline = run.baseline_overall()
        return f"{kid_text(run.overall())} ({kid_text(baseline) if baseline else 'no baseline'})"

    @admin.display(description="precision (real vs real)")
    def precision(self, run: FidelityRun) -> str:
        return _beside_baseline(run, "precision", 3)

    @admin.display(description="recall (real vs real)")
    def recall(self, run: FidelityRun) -> str:
        return _beside_baseline(run, "recall", 3)

    @admin.display(description="diversity ratio (real vs real)")
    def diversity(self, run: FidelityRun) -> str:
        return _beside_baseline(run, "diversity_ratio", 3)

    @admin.display(description="warnings")
    def warnings(self, run: FidelityRun) -> str:
        return str(run.n_warnings()) if run.results else "–"


class _RunAdmin(admin.ModelAdmin):
    """Runs are records: nothing is edited after creation; "add" starts a computation."""

    class Media:
        css = {"all": ["css/evaluation-admin.css"]}

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress_display(self, run) -> str:
        return _progress(run)

    @admin.display(description="config")
    def config_display(self, run) -> str:
        return _pretty_json(run.config)


@admin.register(FidelityRun)
class FidelityRunAdmin(_RunAdmin):
    list_display = [
        "id",
        "batch",
        "status",
        "extractor_name",
        "fid_display",
        "baseline_fid_display",
        "kid_display",
        "created",
    ]
    list_filter = ["status", "extractor_name"]
    list_select_related = ["batch"]
    readonly_fields = [
        "batch",
        "status",
        "progress_display",
        "error",
        "extractor_spec",
        "extractor_name",
        "extractor_sha256",
        "extractor_file",
        "seed",
        "config_display",
        "real_filter",
        "synthetic_filter",
        "inputs_sha256",
        "n_real",
        "n_synthetic",
        "results_display",
        "created_by",
        "created",
        "started",
        "finished",
    ]
    exclude = ["config", "results", "real_image_ids", "synthetic_image_ids", "progress", "progress_message"]
    actions = ["rerun"]

    @admin.display(description="FID")
    def fid_display(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("fid"))

    @admin.display(description="FID real vs real")
    def baseline_fid_display(self, run: FidelityRun) -> str:
        return _fmt((run.baseline_overall() or {}).get("fid"))

    @admin.display(description="KID ± std")
    def kid_display(self, run: FidelityRun) -> str:
        return kid_text(run.overall())

    @admin.display(description="real images")
    def n_real(self, run: FidelityRun) -> int:
        return len(run.real_image_ids)

    @admin.display(description="synthetic images")
    def n_synthetic(self, run: FidelityRun) -> int:
        return len(run.synthetic_image_ids)

    @admin.display(description="results")
    def results_display(self, run: FidelityRun) -> str:
        return fidelity_results_html(run)

    @admin.action(description="Compute again with the same inputs (a new run)")
    def rerun(self, request: HttpRequest, queryset) -> None:
        for run in queryset:
            try:
                again = services.fidelity_run_create(
                    batch=run.batch,
                    real_filter={"ids": run.real_image_ids},
                    synthetic_filter={"ids": run.synthetic_image_ids},
                    extractor=run.extractor_spec,
                    seed=run.seed,
                    config=run.config,
                    user=request.user,
                )
            except EvaluationError as exc:
                self.message_user(request, f"run {run.pk}: {exc}", messages.ERROR)
            else:
                job_message(
                    request, job=again, label=f"Fidelity run (again of {run.pk})", url=_run_url(again)
                )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        # ?batch=ID preselects the batch: the "compute fidelity" link on a batch's page points here
        form = FidelityRunForm(request.POST or None, initial={"batch": request.GET.get("batch")})

        def create(data: dict) -> FidelityRun:
            return services.fidelity_run_create(
                batch=data["batch"],
                real_filter=data["real_filter"],
                extractor=data["extractor"],
                seed=data["seed"],
                user=request.user,
            )

        return _run_add_view(
            self,
            request,
            form,
            create,
            label="Fidelity run",
            title="Compute fidelity metrics for a batch",
            explanation="FID, KID, precision/recall and diversity between the batch and real images, "
            "overall and per condition. Runs in the background (or at once, without a worker); "
            "the run's page shows progress and results.",
        )


@admin.register(AugmentationRun)
class AugmentationRunAdmin(_RunAdmin):
    list_display = [
        "id",
        "status",
        "conditions",
        "ratio",
        "seed",
        "headline_display",
        "null_check_display",
        "created",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "status",
        "progress_display",
        "error",
        "checkpoint",
        "checkpoint_sha256",
        "synthetic_batches",
        "conditions",
        "ratio",
        "seed",
        "config_display",
        "real_filter",
        "report_display",
        "created_by",
        "created",
        "started",
        "finished",
    ]
    exclude = [
        "config",
        "results",
        "real_image_ids",
        "synthetic_image_ids",
        "progress",
        "progress_message",
        "report_prefix",
    ]

    @admin.display(description="headline Δ balanced accuracy [95% CI]")
    def headline_display(self, run: AugmentationRun) -> str:
        return headline_text(run.results) if run.results else "–"

    @admin.display(description="null check", boolean=True)
    def null_check_display(self, run: AugmentationRun) -> bool | None:
        return run.null_check_passed()

    @admin.display(description="report")
    def report_display(self, run: AugmentationRun) -> str:
        return augmentation_report_html(
            run, lambda rel: reverse("admin:evaluation_augmentationrun_file", args=[run.pk, rel])
        )

    def get_urls(self):
        # report files (plots, report.html, models) through the admin: media is not served by
        # Django, and these are for staff who may view the run, not for anyone with the URL
        view = self.admin_site.admin_view(self.file_view)
        return [
            path("<int:pk>/files/<path:name>", view, name="evaluation_augmentationrun_file"),
            *super().get_urls(),
        ]

    def file_view(self, request: HttpRequest, pk: int, name: str) -> FileResponse:
        run = get_object_or_404(AugmentationRun, pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        if name not in report_files(run) or not default_storage.exists(run.file_name(name)):
            raise Http404("not a file of this run's report")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = FileResponse(default_storage.open(run.file_name(name), "rb"), content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = AugmentationRunForm(request.POST or None)

        def create(data: dict) -> AugmentationRun:
            return services.augmentation_run_create(
                real_filter=data["real_filter"],
                synthetic_batches=list(data["synthetic_batches"]),
                checkpoint=data["checkpoint"],
                conditions=[c.strip() for c in data["conditions"].split(",") if c.strip()],
                ratio=data["ratio"],
                seed=data["seed"],
                config={
                    "n_seeds": data["n_seeds"],
                    "epochs": data["epochs"],
                    "image_size": data["image_size"],
                },
                user=request.user,
            )

        return _run_add_view(
            self,
            request,
            form,
            create,
            label="Augmentation run",
            title="Run the augmentation experiment",
            explanation="Trains the compact classifier in every arm (baseline, oversampling, class-reweighting, "
            "+ synthetic images of the chosen conditions, and the 'copies' null check), each with several training "
            "seeds, on one patient-grouped split, and compares them on the same held-out real images. The headline "
            "is synthetic vs the best non-synthetic arm, with CIs over test patients and training seeds.",
        )


def _run_add_view(
    modeladmin, request: HttpRequest, form, create, *, label: str, title: str, explanation: str
):
    """The add page of a run: validate, start the run, and say whether the broker took it."""
    if request.method == "POST" and form.is_valid():
        try:
            run = create(form.cleaned_data)
        except EvaluationError as exc:
            form.add_error(None, str(exc))
        else:
            # Failed: the broker refused it, or (eager) it ran and failed; finished: it ran eagerly.
            url = _run_url(run)
            job_message(request, job=run, label=label, url=url)
            return HttpResponseRedirect(url)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "explanation": explanation,
        "form": form,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "evaluation/admin_run_add.html", context)


def _beside_real_baseline(run: FidelityRun, key: str) -> str:
    """``value (real vs real: value)``: a fidelity number means little without the same metric
    between two sets of real photos in the same feature space (stored as ``results["baseline"]``)."""
    baseline = ((run.results or {}).get("baseline") or {}).get("overall") or {}
    value = _fmt(run.overall().get(key), 3)
    return f"{value} (real vs real: {_fmt(baseline.get(key), 3)})" if baseline else f"{value} (no baseline)"


def checkpoint_fidelity_html(checkpoint) -> str:
    """The fidelity runs of a checkpoint's batches, newest first, with a compute link per batch:
    a readonly field of the checkpoint's admin page (the runs belong to batches, not checkpoints)."""
    batches = checkpoint.batches.order_by("-pk").prefetch_related("fidelity_runs")
    rows = []
    for batch in batches:
        batch_url = reverse("admin:library_generationbatch_change", args=[batch.pk])
        runs = sorted(batch.fidelity_runs.all(), key=lambda run: run.created, reverse=True)
        cells = [
            format_html(
                '<a href="{}">run {}</a> {}: FID {}, KID {}; {} real / {} synthetic',
                reverse("admin:evaluation_fidelityrun_change", args=[run.pk]),
                run.pk,
                run.status,
                _beside_real_baseline(run, "fid"),
                _beside_real_baseline(run, "kid_mean"),
                len(run.real_image_ids),
                len(run.synthetic_image_ids),
            )
            for run in runs
        ] or ["no fidelity run yet"]
        rows.append(
            format_html(
                '<tr><td><a href="{}">batch {}</a> ({} images)</td><td>{}</td><td>{}</td></tr>',
                batch_url,
                batch.pk,
                batch.count,
                format_html_join("", "<div>{}</div>", ((cell,) for cell in cells)),
                compute_fidelity_link(batch),
            )
        )
    if not rows:
        return "no batch rendered from this checkpoint yet"
    return format_html(
        "<table><thead><tr><th>batch</th><th>fidelity runs (newest first)</th><th></th></tr></thead>"
        "<tbody>{}</tbody></table>",
        format_html_join("", "{}", ((row,) for row in rows)),
    )
