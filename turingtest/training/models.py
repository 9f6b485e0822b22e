"""Training jobs: "train a DermGAN on these library photos", run as a chain of short segments.

A job is one ``python -m generator.train`` run (the same code path, ``generator.train.train``)
split into segments: each segment is one Celery task on queue ``gpu`` that claims the job
(a lease, taken with a conditional UPDATE), resumes from the last checkpoint in storage,
trains for a bounded time, saves, and sends the next segment. So a long run never outlives a
broker's delivery timeout and never runs twice at once; a killed worker's segment is
redelivered and resumes from the last checkpoint once the lease has expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class TrainingJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Masks(models.TextChoices):
        ANY = "any", "Any mask (imported or automatic)"
        REVIEWED = "reviewed", "Reviewed masks only"

    name = models.CharField(max_length=120, blank=True, help_text="Name of the registered checkpoint.")
    # What it learns from: the selection, and the images it resolved to when the job was created.
    conditions = models.JSONField(default=list, blank=True, help_text="Condition codes; empty = all.")
    skin_types = models.JSONField(default=list, blank=True, help_text="Fitzpatrick types; empty = all.")
    masks = models.CharField(max_length=10, choices=Masks.choices, default=Masks.ANY)
    image_ids = models.JSONField(default=list, blank=True)
    image_sha256 = models.JSONField(default=list, blank=True, help_text="Same order as image_ids.")
    # How: generator.train options.
    image_size = models.PositiveIntegerField(default=256)
    ngf = models.PositiveIntegerField(default=16, help_text="Network width (generator and discriminator).")
    steps = models.PositiveIntegerField(default=10_000)
    batch_size = models.PositiveIntegerField(default=4)
    lr = models.FloatField(default=2e-4)
    seed = models.BigIntegerField(default=0)
    checkpoint_every = models.PositiveIntegerField(default=500)
    segment_seconds = models.PositiveIntegerField(
        default=600, help_text="Training time per segment (well under the broker's delivery timeout)."
    )
    segment_steps = models.PositiveIntegerField(null=True, blank=True, help_text="Optional step bound too.")
    lease_seconds = models.PositiveIntegerField(
        default=120, help_text="A segment silent this long is presumed dead and another may take over."
    )
    # Progress.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    step = models.PositiveIntegerField(default=0)
    losses = models.JSONField(default=dict, blank=True, help_text="The latest metrics record.")
    seconds_per_step = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The chain and its lease.
    next_segment = models.PositiveIntegerField(default=0, help_text="Segments finished so far.")
    n_claims = models.PositiveIntegerField(default=0, help_text="Segment starts, resumptions included.")
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Files, in Django storage under work_prefix.
    work_prefix = models.CharField(max_length=100, blank=True)
    manifest_name = models.CharField(max_length=200, blank=True)
    state_name = models.CharField(
        max_length=200, blank=True, help_text="Storage folder of the checkpoint the next segment resumes."
    )
    state_step = models.PositiveIntegerField(null=True, blank=True)
    sample_name = models.CharField(max_length=200, blank=True, help_text="The latest sample grid.")
    checkpoint = models.ForeignKey(
        "library.GeneratorCheckpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_jobs",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    failure_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person who scheduled it was e-mailed that it failed."
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=models.Q(steps__gte=1), name="training_steps_positive"),
            models.CheckConstraint(condition=models.Q(batch_size__gte=1), name="training_batch_positive"),
        ]

    def __str__(self) -> str:
        return f"training job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED}

    @property
    def percent(self) -> float:
        return round(100.0 * self.step / self.steps, 1) if self.steps else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Training time still to go at the latest speed (queue waits between segments not included)."""
        if self.is_finished or self.seconds_per_step is None:
            return None
        return round((self.steps - self.step) * self.seconds_per_step, 1)

    def lease_expiry(self) -> datetime:
        """Until when a segment that shows signs of life now keeps the job."""
        return timezone.now() + timedelta(seconds=self.lease_seconds)

    def progress(self) -> dict:
        """The JSON the admin's progress bar polls."""
        return {
            "id": self.pk,
            "status": self.status,
            "done": self.step,
            "total": self.steps,
            "percent": self.percent,
            "losses": {k: round(v, 4) for k, v in self.losses.items() if k.startswith("loss")},
            "seconds_left": self.seconds_left,
            "segments": self.next_segment,
            "checkpoint_step": self.state_step,
            "sample": self.sample_name.rsplit("/", 1)[-1] if self.sample_name else "",
            "error": self.error,
        }
