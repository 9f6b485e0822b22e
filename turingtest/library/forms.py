"""Admin forms: checkpoint upload, batch scheduling (with preview), zip import.

Forms only parse and validate input; the services do the work (STYLE 7).
"""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from turingtest.library.imports import IMPORT_FORMATS
from turingtest.library.models import GeneratorCheckpoint
from turingtest.library.rendering import distribution_validate
from turingtest.library.scheduling import DEFAULT_CHUNK_SIZE, MAX_PER_REAL
from turingtest.library.store import LibraryError


def parse_weights(text: str, *, key_type: type = str, field: str = "weights") -> dict[Any, float]:
    """``"MEL=2, NEV=1"`` → ``{"MEL": 2.0, "NEV": 1.0}``; a bare ``"MEL, NEV"`` weighs each 1."""
    weights: dict[Any, float] = {}
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        key, _, value = part.partition("=")
        try:
            weights[key_type(key.strip())] = float(value) if value else 1.0
        except ValueError:
            raise forms.ValidationError(f"{field}: cannot read {part!r} (use CODE=weight, …)") from None
    return weights


def parse_codes(text: str, *, field: str) -> list[str]:
    """``"MEL, bcc"`` → ``["MEL", "BCC"]``: a filter list, where weights (``MEL=2``) mean nothing."""
    codes = [p.strip().upper() for p in re.split(r"[,;\s]+", text.strip()) if p.strip()]
    weighted = [c for c in codes if "=" in c]
    if weighted:
        raise forms.ValidationError(
            f"{field} filters the real images to mirror: give a list such as 'MEL,BCC' or '1,2', "
            f"not weights ({', '.join(weighted)})"
        )
    return codes


def parse_numbers(text: str, n: int, *, field: str, cast: type = float) -> tuple:
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    try:
        values = tuple(cast(p) for p in parts)
    except ValueError:
        raise forms.ValidationError(f"{field}: {text!r} is not {n} numbers") from None
    if len(values) != n:
        raise forms.ValidationError(f"{field}: expected {n} numbers, got {len(values)}")
    return values


def parse_colours(text: str) -> list[tuple[int, int, int]] | None:
    colours = []
    for part in re.split(r"[;\n]+", text.strip()):
        if part.strip():
            colours.append(parse_numbers(part, 3, field="skin colours", cast=int))
    return colours or None


def distribution_from_options(
    *,
    conditions: str,
    default_conditions: list[str],
    area_range: str = "0.01,0.08",
    location: str = "anywhere",
    lesions: str = "1,1",
    fitzpatrick: str = "",
    skin_rgbs: str = "",
) -> dict[str, Any]:
    """Build a ``SpecDistribution`` dict from the text options shared by the admin and the CLI."""
    condition_weights = parse_weights(conditions, field="conditions") if conditions.strip() else {}
    if not condition_weights:
        condition_weights = {code: 1.0 for code in default_conditions}
    location_value: Any = location.strip() or "anywhere"
    if location_value not in ("anywhere", "centre", "center"):
        location_value = list(parse_numbers(location_value, 4, field="location box"))
    elif location_value == "center":
        location_value = "centre"
    return {
        "condition_weights": condition_weights,
        "area_fraction_range": list(parse_numbers(area_range, 2, field="lesion area range")),
        "location": location_value,
        "lesions_per_image": list(parse_numbers(lesions, 2, field="lesions per image", cast=int)),
        "fitzpatrick_weights": (
            {str(k): v for k, v in parse_weights(fitzpatrick, key_type=int, field="Fitzpatrick mix").items()}
            if fitzpatrick.strip()
            else None
        ),
        "skin_rgbs": [list(c) for c in parse_colours(skin_rgbs)] if skin_rgbs.strip() else None,
    }


def upload_to_temp(upload: UploadedFile, suffix: str) -> Path:
    """A local path for an upload (large uploads already are temp files; small ones are copied)."""
    path = getattr(upload, "temporary_file_path", None)
    if path is not None:
        return Path(path())
    tmp = Path(tempfile.gettempdir()) / f"dermgan-upload-{secrets.token_hex(8)}{suffix}"
    with open(tmp, "wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    return tmp


class CheckpointUploadForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, help_text="Defaults to the file name.")
    file = forms.FileField(help_text="A DermGAN checkpoint (.pt) written by generator.checkpoint.save.")


class _BatchFormBase(forms.Form):
    """What every batch needs: a checkpoint (the only one preselected), a seed (random), chunks."""

    checkpoint = forms.ModelChoiceField(queryset=GeneratorCheckpoint.objects.all())
    seed = forms.IntegerField(min_value=0, max_value=2**62, help_text="Same seed, same images.")
    chunk_size = forms.IntegerField(min_value=1, max_value=1024, initial=DEFAULT_CHUNK_SIZE)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["seed"].initial = secrets.randbelow(2**31)
            only = list(GeneratorCheckpoint.objects.values_list("pk", flat=True)[:2])
            if len(only) == 1:
                self.fields["checkpoint"].initial = only[0]


class MatchScheduleForm(_BatchFormBase):
    """The admin's "Generate matched to these real images": the selection is the real images."""

    per_real = forms.IntegerField(
        min_value=1,
        max_value=MAX_PER_REAL,
        initial=1,
        label="Mirrors per real image",
        help_text="Synthetic images rendered for each real image; repeats move the lesion slightly (≤ 0.04 of the image, ≤ 20°, ±10% area).",
    )
    field_order = ["checkpoint", "per_real", "seed", "chunk_size"]


class BatchScheduleForm(_BatchFormBase):
    count = forms.IntegerField(min_value=1, max_value=100_000, initial=64)
    conditions = forms.CharField(
        required=False,
        help_text="Condition weights, e.g. 'MEL=2, NEV=1, SEK=1'. Blank: every condition of the checkpoint, equally.",
    )
    area_range = forms.CharField(
        initial="0.01, 0.08", help_text="Lesion area as a fraction of the image: low, high."
    )
    location = forms.CharField(
        initial="anywhere",
        help_text="'anywhere', 'centre', or a box 'x0, y0, x1, y1' (fractions) for lesion centres.",
    )
    lesions = forms.CharField(initial="1, 1", help_text="Lesions per image: min, max.")
    fitzpatrick = forms.CharField(
        required=False,
        initial="1=1, 2=1, 3=1, 4=1, 5=1, 6=1",
        help_text="Fitzpatrick mix, e.g. '1=1, 2=1, 5=2'. Leave blank to use explicit colours below.",
    )
    skin_rgbs = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Explicit skin colours 'r, g, b', one per line (instead of a Fitzpatrick mix).",
    )
    start_at = forms.DateTimeField(required=False, help_text="Optional: do not start before (UTC).")
    priority = forms.IntegerField(min_value=0, max_value=9, initial=0)
    field_order = ["checkpoint", "count", "seed", "chunk_size"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        checkpoint = data.get("checkpoint")
        if checkpoint is None or self.errors:
            return data
        data["distribution"] = distribution_from_options(
            conditions=data.get("conditions", ""),
            default_conditions=checkpoint.conditions,
            area_range=data.get("area_range", ""),
            location=data.get("location", ""),
            lesions=data.get("lesions", ""),
            fitzpatrick=data.get("fitzpatrick", "") if not data.get("skin_rgbs", "").strip() else "",
            skin_rgbs=data.get("skin_rgbs", ""),
        )
        try:
            distribution_validate(checkpoint=checkpoint, distribution=data["distribution"])
        except LibraryError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class ImportUploadForm(forms.Form):
    archive = forms.FileField(help_text="A .zip holding the images and one manifest CSV.")
    format = forms.ChoiceField(choices=[(f, f) for f in IMPORT_FORMATS], initial="auto")
    manifest_name = forms.CharField(
        required=False, help_text="The manifest's file name inside the zip, when it holds several CSV files."
    )
    dry_run = forms.BooleanField(required=False, help_text="Validate only; import nothing.")
    auto_masks = forms.BooleanField(
        required=False,
        label="Compute automatic masks",
        help_text="After the import, compute lesion masks in the background for imported images that "
        "came without one (review them in the mask editor).",
    )
