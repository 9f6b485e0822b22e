"""Rows for the objective evaluations: fidelity metrics and the augmentation experiment.

Each run is a unit of background work (status, progress, error, visible in the
admin) and, once finished, a record of everything needed to reproduce it: the
exact image ids it used (resolved when the run was created, so later imports do
not change it), the feature extractor's name and sha256, seeds, the full config
and the results JSON. The numbers come from pure functions in ``generator``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class EvaluationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0–1")
    progress_message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    seed = models.BigIntegerField(default=0)
    config = models.JSONField(default=dict, blank=True, help_text="Every setting the computation used.")
    results = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created"]

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class FidelityRun(EvaluationRun):
    """FID / KID / precision-recall / diversity between a real and a synthetic image set.

    ``extractor_sha256`` identifies the feature space: results with different
    extractors are never compared (``FidelityResult.difference`` refuses).
    """

    batch = models.ForeignKey(
        "library.GenerationBatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fidelity_runs",
        help_text="The synthetic set, when it is one generation batch.",
    )
    real_filter = models.JSONField(default=dict, blank=True, help_text="How the real set was chosen.")
    synthetic_filter = models.JSONField(
        default=dict, blank=True, help_text="How the synthetic set was chosen."
    )
    real_image_ids = models.JSONField(default=list, blank=True)
    synthetic_image_ids = models.JSONField(default=list, blank=True)
    inputs_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 over both sets' image sha256s (order-independent)."
    )
    extractor_spec = models.CharField(
        max_length=300,
        default="classifier:auto",
        help_text="classifier:auto | classifier:PATH | inception[:PATH]",
    )
    extractor_name = models.CharField(max_length=100, blank=True)
    extractor_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    extractor_file = models.CharField(
        max_length=300,
        blank=True,
        help_text="Storage name of the auto-trained classifier, when one was trained.",
    )

    def __str__(self) -> str:
        target = f"batch {self.batch_id}" if self.batch_id else "image sets"
        return f"fidelity run {self.pk} ({target}, {self.status})"

    def result(self):
        """The stored ``generator.metrics.FidelityResult`` (None until the run succeeded)."""
        from generator.metrics import FidelityResult  # torch stays out of Django's start-up

        return FidelityResult.from_dict(self.results) if self.results else None

    def overall(self) -> dict:
        return (self.results or {}).get("overall", {})

    def baseline_overall(self) -> dict | None:
        """The real-vs-real metrics over all images; None for results stored before baselines."""
        baseline = (self.results or {}).get("baseline")
        return baseline["overall"] if baseline else None

    def n_warnings(self) -> int:
        """Rows (synthetic or baseline, overall or per condition) computed from too few images."""
        results = self.results or {}
        blocks = [results, results.get("baseline") or {}]
        return sum(
            1
            for block in blocks
            for m in [block.get("overall") or {}, *(block.get("per_condition") or {}).values()]
            if m.get("warning")
        )


class AugmentationRun(EvaluationRun):
    """The augmentation experiment: a classifier trained in several arms (baseline, oversample,
    reweight, + DermGAN images of chosen conditions, the "copies" null check), each with several
    training seeds, on one patient-grouped split.

    The report files (JSON, HTML, plots) and the kept classifiers live in storage under
    ``report_prefix``; ``results`` holds the report JSON itself (``version`` 2: arms, seeds,
    ``headline``, ``null_check``, ``comparisons``, ``statistics``, ``files``).
    """

    real_filter = models.JSONField(default=dict, blank=True)
    real_image_ids = models.JSONField(default=list, blank=True)
    synthetic_batches = models.ManyToManyField(
        "library.GenerationBatch", blank=True, related_name="augmentation_runs"
    )
    synthetic_image_ids = models.JSONField(
        default=list, blank=True, help_text="The pool synthetic images come from."
    )
    checkpoint = models.ForeignKey(
        "library.GeneratorCheckpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="augmentation_runs",
        help_text="Render synthetic images on the fly from this checkpoint instead of using batches.",
    )
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    conditions = models.JSONField(
        default=list, blank=True, help_text="Chosen conditions; empty = the rarest."
    )
    ratio = models.FloatField(
        default=1.0, help_text="Synthetic images per real training image of a chosen condition."
    )
    report_prefix = models.CharField(
        max_length=200, blank=True, help_text="Storage folder of the report files."
    )

    def __str__(self) -> str:
        return f"augmentation run {self.pk} ({self.status})"

    def file_name(self, relative: str) -> str:
        return f"{self.report_prefix}/{relative}" if self.report_prefix else ""

    def null_check_passed(self) -> bool | None:
        """Whether copies showed no significant gain over oversampling; None without a v2 report.

        A failed null check means the setup credits noise, so the headline is not to be trusted.
        """
        null = (self.results or {}).get("null_check")
        return None if null is None else bool(null["passed"])
