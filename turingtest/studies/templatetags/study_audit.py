"""Template tags for the study page's design checks (computed where the include needs them,
so the page's view stays unchanged)."""

from __future__ import annotations

from django import template

from turingtest.studies.audit import ResolutionParity, resolution_parity
from turingtest.studies.models import Study

register = template.Library()


@register.simple_tag
def study_resolution_parity(study: Study) -> ResolutionParity:
    return resolution_parity(study=study)
