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

from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from turingtest.evaluation import services
from turingtest.evaluation.forms import AugmentationRunForm, FidelityRunForm
from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.evaluation.selection import EvaluationError


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _progress(run) -> str:
    return format_html(
        '<progress value="{}" max="1"></progress> {} {}', run.progress, run.status, run.progress_message
    )


def fidelity_results_html(run: FidelityRun) -> str:
    """The results table (overall + per condition) of a finished run; used by both admins."""
    if not run.results:
        return run.error or f"{run.status} ({round(100 * run.progress)}%)"
    result = run.results
    rows = [{"name": "overall", "m": result["overall"]}] + [
        {"name": code, "m": m} for code, m in sorted(result["per_condition"].items())
    ]
    return render_to_string("evaluation/fidelity_results.html", {"result": result, "rows": rows})


def compute_fidelity_link(batch) -> str:
    """A "Compute fidelity metrics" link for a batch's admin page (a readonly field there)."""
    url = reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}"
    return format_html('<a class="button" href="{}">Compute fidelity metrics</a>', url)


@admin.action(description="Compute fidelity metrics (classifier:auto) for the selected batches")
def compute_fidelity_for_batches(modeladmin, request: HttpRequest, queryset) -> None:
    """Admin action for the generation-batch list: one queued FidelityRun per batch."""
    created, refused = 0, []
    for batch in queryset:
        try:
            run = services.fidelity_run_create(batch=batch, user=request.user)
        except EvaluationError as exc:
            refused.append(f"batch {batch.pk}: {exc}")
            continue
        if run.status == FidelityRun.Status.FAILED:
            refused.append(f"batch {batch.pk}: {run.error}")
        else:
            created += 1
    if created:
        modeladmin.message_user(request, f"Queued {created} fidelity run(s).", messages.SUCCESS)
    for text in refused:
        modeladmin.message_user(request, text, messages.ERROR)


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

    @admin.display(description="FID")
    def fid(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("fid"))

    @admin.display(description="KID ± std")
    def kid(self, run: FidelityRun) -> str:
        o = run.overall()
        return "–" if o.get("kid_mean") is None else f"{o['kid_mean']:.3g} ± {o['kid_std']:.2g}"

    @admin.display(description="precision")
    def precision(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("precision"), 3)

    @admin.display(description="recall")
    def recall(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("recall"), 3)

    @admin.display(description="diversity ratio")
    def diversity(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("diversity_ratio"), 3)


class _RunAdmin(admin.ModelAdmin):
    """Runs are records: nothing is edited after creation; "add" starts a computation."""

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
    list_display = ["id", "batch", "status", "extractor_name", "fid_display", "kid_display", "created"]
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

    @admin.display(description="KID")
    def kid_display(self, run: FidelityRun) -> str:
        return _fmt(run.overall().get("kid_mean"), 3)

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
                services.fidelity_run_create(
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
        self.message_user(request, "Queued.")

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
            "overall and per condition. Runs in the background; this page's record shows progress.",
        )


@admin.register(AugmentationRun)
class AugmentationRunAdmin(_RunAdmin):
    list_display = ["id", "status", "conditions", "ratio", "seed", "top1_display", "created"]
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

    @admin.display(description="top-1 real → augmented")
    def top1_display(self, run: AugmentationRun) -> str:
        if not run.results:
            return "–"
        arms = run.results["arms"]
        return f"{arms['real_only']['test']['top1']['value']:.3f} → {arms['augmented']['test']['top1']['value']:.3f}"

    @admin.display(description="report")
    def report_display(self, run: AugmentationRun) -> str:
        report = run.results
        if not report:
            return run.error or f"{run.status} ({round(100 * run.progress)}%)"
        arms, diff = report["arms"], report["comparison"]["augmented_minus_real_only"]
        rows = [
            {
                "label": "top-1 accuracy",
                "cells": [arms["real_only"]["test"]["top1"], arms["augmented"]["test"]["top1"], diff["top1"]],
            },
            {
                "label": "top-3 accuracy",
                "cells": [arms["real_only"]["test"]["top3"], arms["augmented"]["test"]["top3"], diff["top3"]],
            },
        ]
        for code in report["classes"]:
            tags = [
                t
                for t, on in (
                    ("rare", code in report["rare_conditions"]),
                    ("malignant", code in report["malignant_conditions"]),
                )
                if on
            ]
            label = f"sensitivity {code}" + (f" ({', '.join(tags)})" if tags else "")
            rows.append(
                {
                    "label": label,
                    "cells": [
                        arms["real_only"]["test"]["sensitivity"][code],
                        arms["augmented"]["test"]["sensitivity"][code],
                        diff["sensitivity"][code],
                    ],
                }
            )
        links = [
            (rel, default_storage.url(run.file_name(rel)))
            for rel in ("report.html", "report.json", "model_real_only.pt", "model_augmented.pt")
        ]
        return render_to_string(
            "evaluation/augmentation_results.html", {"report": report, "rows": rows, "links": links}
        )

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
                config={"epochs": data["epochs"], "image_size": data["image_size"]},
                user=request.user,
            )

        return _run_add_view(
            self,
            request,
            form,
            create,
            label="Augmentation run",
            title="Run the augmentation experiment",
            explanation="Trains the compact classifier twice (real only; real + synthetic images of the chosen "
            "conditions) on a patient-grouped split and compares both on the same held-out real images.",
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
            if run.status == run.Status.FAILED:  # the broker refused it (or, eager, it ran and failed)
                messages.error(request, f"{label} {run.pk} failed: {run.error}")
            else:
                messages.success(request, f"{label} {run.pk} queued.")
            opts = modeladmin.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[run.pk])
            )
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
