"""Precision planning for a new study, from the variance components of a pilot.

``precision_plan`` turns a pilot (or finished) study's headline variance components into
plain lines: the CI half-width to expect for R raters × I images, and how many raters or
images a target half-width needs (``turingtest.stats.planning`` does the arithmetic). The
new-study and edit pages show it through ``PrecisionPlanForm`` (a GET form beside the
design form, template ``studies/_precision_plan.html``); ``create_study --pilot`` prints it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django import forms
from django.http import HttpRequest

from turingtest import reports, stats
from turingtest.studies.models import Study


@dataclass(frozen=True)
class PrecisionPlan:
    pilot_id: int
    n_raters: int
    n_images: int
    confidence: float
    half_width: float | None  # None: the pilot has no reader-study estimate yet
    target: float | None
    lines: list[str] = field(default_factory=list)


def _hw(value: float) -> str:
    return f"±{value:.3f}"


def precision_plan(
    *,
    pilot: Study,
    n_raters: int | None,
    n_images: int,
    target: float | None = None,
    confidence: float = 0.95,
) -> PrecisionPlan:
    """What ``n_raters`` × ``n_images`` can expect, given ``pilot``'s variance components.

    ``n_images`` is the number each rater judges (the plan assumes a fully crossed design
    with the pilot's real:synthetic mix); ``n_raters=None`` plans for as many raters as the
    pilot had. ``ValueError`` for counts below 2 or a bad target.
    """
    head = reports.headline(pilot, confidence=confidence)
    ba = head.balanced_accuracy
    if n_raters is None:
        n_raters = max(head.n_raters, 2)
    name = f"study {pilot.pk} ({pilot.title!r})"
    if ba is None:
        return PrecisionPlan(
            pilot.pk, n_raters, n_images, confidence, None, target,
            [f"{name} has no reader-study estimate yet, so it has no variance components to plan from: "
             f"{head.sentence}"],
        )  # fmt: skip
    c = ba.components
    level = f"{round(confidence * 100)}%"
    half = stats.expected_half_width(c, n_raters, n_images, confidence)
    lines = [
        f"From the variance components of {name}, {ba.n_raters} raters × {ba.n_images} images: "
        f"σ²_rater {c.rater:.4f}, σ²_image {c.image:.4f}, σ²_residual {c.residual:.4f}.",
        f"{n_raters} raters × {n_images} images: expected {level} CI half-width {_hw(half)} "
        "for the balanced accuracy.",
    ]
    if target is not None:
        more_raters = stats.design_for_half_width(c, target, n_images=n_images, confidence=confidence)
        more_images = stats.design_for_half_width(c, target, n_raters=n_raters, confidence=confidence)
        options = []
        if more_raters is not None:
            options.append(f"{more_raters.n_raters} raters at {n_images} images")
        if more_images is not None:
            options.append(f"{more_images.n_images} images at {n_raters} raters")
        if options:
            lines.append(f"Target {_hw(target)}: " + ", or ".join(options) + ".")
        else:
            lines.append(f"Target {_hw(target)}: out of reach by adding only raters or only images.")
    floor_images = stats.expected_half_width(c, n_raters, math.inf, confidence)
    floor_raters = stats.expected_half_width(c, math.inf, n_images, confidence)
    lines.append(
        f"Raters and images trade off differently: with {n_raters} raters no number of images narrows "
        f"the CI below {_hw(floor_images)} (the between-rater term shrinks only with more raters); "
        f"with {n_images} images no number of raters narrows it below {_hw(floor_raters)}."
    )
    return PrecisionPlan(pilot.pk, n_raters, n_images, confidence, half, target, lines)


class PrecisionPlanForm(forms.Form):
    """Pilot study, planned raters and images, an optional target half-width (GET, plan_ prefix)."""

    pilot = forms.ModelChoiceField(queryset=Study.objects.none(), label="Pilot or finished study")
    n_raters = forms.IntegerField(min_value=2, max_value=10_000, initial=20, label="Raters")
    n_images = forms.IntegerField(min_value=2, max_value=1_000_000, initial=80, label="Images per rater")
    target = forms.FloatField(
        min_value=0.001, max_value=0.5, required=False, label="Target half-width", help_text="e.g. 0.05"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, prefix="plan", **kwargs)
        pilot = self.fields["pilot"]
        pilot.queryset = Study.objects.visible_to(user).order_by("-pk")  # type: ignore[attr-defined]
        pilot.label_from_instance = lambda s: f"{s.pk}: {s.title}"  # type: ignore[attr-defined]


def plan_from_request(request: HttpRequest) -> tuple[PrecisionPlanForm, PrecisionPlan | None]:
    """The plan form of the study pages, bound when the page was asked for a plan."""
    asked = any(key.startswith("plan-") for key in request.GET)
    form = PrecisionPlanForm(request.GET if asked else None, user=request.user)
    if not (asked and form.is_valid()):
        return form, None
    d = form.cleaned_data
    return form, precision_plan(
        pilot=d["pilot"], n_raters=d["n_raters"], n_images=d["n_images"], target=d["target"]
    )
