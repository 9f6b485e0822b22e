"""The image library: conditions, and every image a study can draw from.

Real images are imported from datasets; synthetic ones are rendered by DermGAN
generation batches (added by the image-library work). Every stored file went
through ``turingtest.images.normalize()``.
"""

from __future__ import annotations

import secrets

from django.db import models


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


class Image(models.Model):
    """One normalized image in the library, real or synthetic.

    ``public_token`` is what rater-facing URLs would use if an image were served
    outside an assignment; studies serve per-presentation tokens instead.
    ``provenance`` holds, for synthetic images, at least seed, batch, index,
    checkpoint_sha256, spec and generator_version; for procedural demo images
    ``{"procedural": true, "seed": ...}``; for imported ones the dataset source.
    """

    class Kind(models.TextChoices):
        REAL = "real", "Real"
        SYNTHETIC = "synthetic", "Synthetic"

    public_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    condition = models.ForeignKey(Condition, on_delete=models.PROTECT, related_name="images")
    fitzpatrick = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Fitzpatrick skin type 1–6."
    )
    skin_rgb = models.JSONField(null=True, blank=True, help_text="Healthy-skin colour [r, g, b], 0–255.")
    ita_degrees = models.FloatField(null=True, blank=True, help_text="Individual typology angle of the skin.")
    lesion_area_fraction = models.FloatField(null=True, blank=True)
    lesion_bbox = models.JSONField(null=True, blank=True, help_text="[x0, y0, x1, y1] as image fractions.")
    file = models.FileField(upload_to="", max_length=200)
    mask = models.FileField(upload_to="", max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    provenance = models.JSONField(default=dict, blank=True)
    patient_id = models.CharField(
        max_length=64, blank=True, help_text="Dataset patient id, for grouped splits."
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "condition"])]
        constraints = [
            models.UniqueConstraint(fields=["sha256"], name="image_unique_sha256"),
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
