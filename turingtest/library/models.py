"""The image library: conditions, and every image a study can draw from.

Real images are imported from datasets; synthetic ones are rendered by DermGAN
generation batches (added by the image-library work). Every stored file went
through ``turingtest.images.normalize()``.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone


def finished_outcome(*, status: str, label: str, n_errors: int) -> str:
    """A job's status as a person reads it: a job that finished but rejected rows did not simply succeed.

    ``status`` stays the machine's (queued → running → succeeded | failed); only what is shown differs.
    """
    if status == "succeeded" and n_errors:
        return f"Finished with {n_errors} error{'s' if n_errors != 1 else ''}"
    return label


def new_public_token() -> str:
    """Opaque random token: never derived from kind, condition, index or file."""
    return secrets.token_hex(16)


class Condition(models.Model):
    """A skin condition of the taxonomy (``fixtures/conditions.json``).

    ``map_index`` is the condition's channel in DermGAN semantic maps; checkpoints
    store their own condition code list, so this only orders the default list.
    """

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120, unique=True)
    is_malignant = models.BooleanField(default=False)
    is_rare = models.BooleanField(default=False)
    map_index = models.PositiveSmallIntegerField(unique=True)
    synonyms = models.JSONField(default=list, blank=True, help_text="Other names and dataset codes.")

    class Meta:
        ordering = ["map_index"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


def is_labelled_fitzpatrick(*, fitzpatrick: int | None, source: str | None) -> bool:
    """The one rule of whether a Fitzpatrick type is a label (a dermatologist's or a dataset's)
    rather than an estimate from the photo's skin colour (ARCHITECTURE.md invariant 9). Only a
    type recorded as a label counts: one of unknown origin might be an estimate."""
    return fitzpatrick is not None and source == Image.FitzpatrickSource.LABEL


class ImageQuerySet(models.QuerySet):
    def fitzpatrick_labelled(self) -> ImageQuerySet:
        """Images whose Fitzpatrick type is a label (see ``Image.has_labelled_fitzpatrick``)."""
        return self.filter(fitzpatrick__isnull=False, fitzpatrick_source=Image.FitzpatrickSource.LABEL)


class MaskSource(models.TextChoices):
    """Where an image's lesion mask came from; blank when it has none.

    ``imported``: given with the dataset (or the procedural demo's exact mask);
    ``rendered``: a synthetic image's own semantic map; ``automatic``:
    ``generator.segmentation.segment_lesion``; ``reviewed``: accepted in the mask editor.
    """

    IMPORTED = "imported", "Imported"
    RENDERED = "rendered", "Rendered"
    AUTOMATIC = "automatic", "Automatic"
    REVIEWED = "reviewed", "Reviewed"


class Image(models.Model):
    """One normalized image in the library, real or synthetic.

    ``public_token`` is what rater-facing URLs would use if an image were served
    outside an assignment; studies serve per-presentation tokens instead.
    ``provenance`` holds, for synthetic images, at least seed, batch, index,
    checkpoint_sha256, spec and generator_version; for procedural demo images
    ``{"procedural": true, "seed": ...}``; for imported ones the dataset source.

    ``fitzpatrick_source`` says what ``fitzpatrick`` means: a *label* (a dataset's
    dermatologist-assigned type, or the type a synthetic or procedural image was made
    for) or an *estimate* from the photo's skin colour (ITA°, kept in ``ita_degrees``).
    On PAD-UFES-20 the estimate barely agrees with the labels (README), so analyses by
    skin type use labels only. ``native_width``/``native_height`` are the pixel size
    before ``normalize()`` (a batch's render size, a photo's original size): a study
    warns when real and synthetic images differ in it. Null for rows stored before
    these fields existed.
    """

    class Kind(models.TextChoices):
        REAL = "real", "Real"
        SYNTHETIC = "synthetic", "Synthetic"

    class FitzpatrickSource(models.TextChoices):
        LABEL = "label", "Label"
        ESTIMATE = "estimate", "Estimate (ITA°)"
        NONE = "", "None"

    public_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    condition = models.ForeignKey(Condition, on_delete=models.PROTECT, related_name="images")
    fitzpatrick = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Fitzpatrick skin type 1–6."
    )
    fitzpatrick_source = models.CharField(
        max_length=8,
        choices=FitzpatrickSource.choices,
        default=FitzpatrickSource.NONE,
        blank=True,
        help_text="Whether the Fitzpatrick type is a label or an estimate from the skin colour.",
    )
    skin_rgb = models.JSONField(null=True, blank=True, help_text="Healthy-skin colour [r, g, b], 0–255.")
    ita_degrees = models.FloatField(
        null=True,
        blank=True,
        help_text="Individual typology angle of the skin, estimated from the photo (not a label).",
    )
    lesion_area_fraction = models.FloatField(null=True, blank=True)
    lesion_bbox = models.JSONField(null=True, blank=True, help_text="[x0, y0, x1, y1] as image fractions.")
    file = models.FileField(upload_to="", max_length=200)
    mask = models.FileField(upload_to="", max_length=200, blank=True)
    # Where the mask came from (turingtest.library.masks keeps these and the lesion geometry in step).
    mask_source = models.CharField(max_length=10, choices=MaskSource.choices, blank=True, db_index=True)
    mask_reviewed_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mask_reviewed_at = models.DateTimeField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    native_width = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pixel width before normalization."
    )
    native_height = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pixel height before normalization."
    )
    provenance = models.JSONField(default=dict, blank=True)
    patient_id = models.CharField(
        max_length=64, blank=True, help_text="Dataset patient id, for grouped splits."
    )
    batch = models.ForeignKey(
        "GenerationBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="images"
    )
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["kind", "condition"])]
        constraints = [
            models.UniqueConstraint(fields=["sha256"], name="image_unique_sha256"),
            # A re-run chunk can never store index i of a batch twice.
            models.UniqueConstraint(fields=["batch", "batch_index"], name="image_unique_batch_index"),
            models.CheckConstraint(
                condition=models.Q(fitzpatrick__isnull=True)
                | models.Q(fitzpatrick__gte=1, fitzpatrick__lte=6),
                name="image_fitzpatrick_1_to_6",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} image {self.pk} ({self.condition.code})"

    @property
    def is_synthetic(self) -> bool:
        return self.kind == self.Kind.SYNTHETIC

    @property
    def has_labelled_fitzpatrick(self) -> bool:
        """True when ``fitzpatrick`` is a label, so skin-type breakdowns and matching may use it.

        An estimate from skin colour is not a phototype (it agrees with dermatologists'
        labels little better than chance on PAD-UFES-20), so it never counts here.
        """
        return is_labelled_fitzpatrick(fitzpatrick=self.fitzpatrick, source=self.fitzpatrick_source)

    @property
    def native_side(self) -> int | None:
        """The side of the centred square ``normalize()`` resized: the image's native resolution."""
        if self.native_width is None or self.native_height is None:
            return None
        return min(self.native_width, self.native_height)


def checkpoint_upload_to(instance: GeneratorCheckpoint, filename: str) -> str:
    """Checkpoints are named by content hash: never shown to raters, and re-uploads collide visibly."""
    return f"checkpoints/{instance.sha256}.pt"


class GeneratorCheckpoint(models.Model):
    """A DermGAN checkpoint file, validated by ``generator.checkpoint.load`` on upload.

    ``config`` and ``metadata`` are copied from the file so the admin can show them
    without loading torch; ``sha256`` is what synthetic images' provenance points to.
    """

    name = models.CharField(max_length=120)
    file = models.FileField(upload_to=checkpoint_upload_to, max_length=200)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"

    @property
    def image_size(self) -> int:
        return int(self.config.get("image_size", 0))

    @property
    def conditions(self) -> list[str]:
        return list(self.config.get("conditions", []))

    @property
    def generator_version(self) -> str:
        return str(self.metadata.get("generator_version", ""))


class GenerationBatch(models.Model):
    """N synthetic images rendered from one checkpoint and one spec distribution.

    Image ``i`` of the batch has spec ``spec_for_index(distribution, index=i)`` and
    seed ``image_seed(seed, i)``, so a batch is fully determined by this row; the
    work is split into ``GenerationChunk`` rows that workers claim and may redo.

    A batch matched to real images stores its specs instead (``specs[i]``, derived
    once when it was scheduled, so a re-run chunk renders the same image even if the
    real image's row changed since); ``distribution`` then only records its condition mix.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    checkpoint = models.ForeignKey(GeneratorCheckpoint, on_delete=models.PROTECT, related_name="batches")
    count = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    image_size = models.PositiveIntegerField(help_text="Render size: what the network produces.")
    distribution = models.JSONField(help_text="generator.sampling.SpecDistribution.to_dict()")
    specs = models.JSONField(
        null=True,
        blank=True,
        help_text="Matched batches: per index {mirrors_image_id, fitzpatrick, spec (MapSpec.to_dict())}.",
    )
    chunk_size = models.PositiveIntegerField(default=16)
    start_at = models.DateTimeField(null=True, blank=True, help_text="Do not start before this time.")
    priority = models.PositiveSmallIntegerField(default=0, help_text="0–9, higher runs first.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    n_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    render_seconds = models.FloatField(default=0.0, help_text="Sum of the chunks' network time.")
    failure_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person who scheduled it was e-mailed that it failed."
    )

    class Meta:
        verbose_name_plural = "generation batches"  # Django's default would say "batchs"
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=models.Q(count__gte=1), name="batch_count_positive"),
            models.CheckConstraint(condition=models.Q(priority__lte=9), name="batch_priority_0_to_9"),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.count} × {self.checkpoint.name})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED}

    @property
    def percent(self) -> float:
        return round(100.0 * self.n_done / self.count, 1) if self.count else 0.0

    @property
    def wall_seconds(self) -> float | None:
        if self.started is None:
            return None
        end = self.finished or timezone.now()
        return (end - self.started).total_seconds()

    def progress(self) -> dict:
        """The JSON the admin's progress bar polls (also the CLI's --wait)."""
        wall = self.wall_seconds
        return {
            "id": self.pk,
            "status": self.status,
            "outcome": self.get_status_display(),
            "done": self.n_done,
            "total": self.count,
            "percent": self.percent,
            "error": self.error,
            "created": self.created.isoformat() if self.created else None,
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "wall_seconds": round(wall, 3) if wall is not None else None,
            "render_seconds": round(self.render_seconds, 3),
            "images_per_second": round(self.n_done / wall, 3) if wall else None,
        }


class GenerationChunk(models.Model):
    """Indexes ``[start, stop)`` of a batch: the unit a worker claims, renders and may redo.

    A crash loses at most one chunk's work; a redelivered chunk skips the indexes
    already stored (``unique(batch, batch_index)`` on ``Image``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    batch = models.ForeignKey(GenerationBatch, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="chunk_unique_batch_number"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.number} of batch {self.batch_id} [{self.start}, {self.stop})"


class ImportJob(models.Model):
    """One import of real images (command or admin zip upload): status, progress, bad rows.

    ``errors`` is a list of ``{"line": n, "reason": "..."}``: every bad row is
    reported, the good ones are imported in one transaction.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    format = models.CharField(max_length=16, default="auto")
    archive = models.FileField(
        upload_to="imports/",
        max_length=200,
        blank=True,
        help_text="The uploaded zip; deleted once the import finishes (its sha256 is kept).",
    )
    archive_sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of the uploaded zip.")
    manifest_name = models.CharField(
        max_length=255, blank=True, help_text="Manifest path or name in the zip."
    )
    is_dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    n_rows = models.PositiveIntegerField(default=0)
    n_checked = models.PositiveIntegerField(default=0)
    n_imported = models.PositiveIntegerField(default=0)
    n_already = models.PositiveIntegerField(default=0, help_text="Rows whose pixels are already stored.")
    errors = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    failure_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person who scheduled it was e-mailed that it failed."
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def outcome(self) -> str:
        """ "Succeeded", or "Finished with 3 errors" when rows were rejected (see ``finished_outcome``)."""
        return finished_outcome(
            status=self.status, label=self.get_status_display(), n_errors=len(self.errors)
        )

    def progress(self) -> dict:
        return {
            "id": self.pk,
            "status": self.status,
            "outcome": self.outcome,
            "done": self.n_checked,
            "total": self.n_rows,
            "percent": round(100.0 * self.n_checked / self.n_rows, 1) if self.n_rows else 0.0,
            "imported": self.n_imported,
            "already": self.n_already,
            "n_errors": len(self.errors),
            "error": self.error,
        }


class MaskJob(models.Model):
    """Automatic lesion masks computed in the background for images that have none.

    ``image_pks`` is the selection; left empty it is resolved when the job starts (the
    real images without a mask, created since ``import_job`` began when there is one) and
    stored, so a redelivered task works through the same list. Images that meanwhile got
    a mask are skipped, so running the job twice computes nothing twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    image_pks = models.JSONField(null=True, blank=True)
    import_job = models.ForeignKey(
        ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="mask_jobs"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    n_total = models.PositiveIntegerField(default=0)
    n_done = models.PositiveIntegerField(default=0)
    n_computed = models.PositiveIntegerField(default=0)
    n_skipped = models.PositiveIntegerField(default=0, help_text="Images that already had a mask.")
    errors = models.JSONField(default=list, blank=True, help_text='[{"image": pk, "reason": "..."}]')
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"mask job {self.pk} ({self.status})"

    @property
    def outcome(self) -> str:
        """ "Succeeded", or "Finished with 2 errors" when some images failed (see ``finished_outcome``)."""
        return finished_outcome(
            status=self.status, label=self.get_status_display(), n_errors=len(self.errors)
        )

    def progress(self) -> dict:
        """The JSON the admin's progress bar polls."""
        return {
            "id": self.pk,
            "status": self.status,
            "outcome": self.outcome,
            "done": self.n_done,
            "total": self.n_total,
            "percent": round(100.0 * self.n_done / self.n_total, 1) if self.n_total else 0.0,
            "computed": self.n_computed,
            "skipped": self.n_skipped,
            "n_errors": len(self.errors),
            "error": self.error,
        }
