"""Access in the research app: a study's results are for those who may see the study
(``Study.objects.visible_to``, the one rule), identities for holders of the
``studies.export_identities`` permission only.

Everything in the research app goes through these helpers, so a study someone may not
see is a 404 everywhere (its existence is not confirmed).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.permissions import BasePermission

from turingtest.core import roles
from turingtest.studies.models import Study


def study_for(user: Any, study_id: int) -> Study:
    """The study, or 404 when it does not exist or ``user`` may not see it."""
    study = Study.objects.visible_to(user).select_related("owner").filter(pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def may_export_identities(user: Any) -> bool:
    """The explicit ``studies.export_identities`` permission; ``is_staff`` alone is not enough."""
    return roles.may_export_identities(user)


class IsResearcher(BasePermission):
    """The researcher API is for researchers and admins; raters get 403."""

    message = "Researchers only."

    def has_permission(self, request: Any, view: Any) -> bool:
        return roles.is_researcher(request.user)
