"""Who may see a study's results: owners, collaborators and admins (``Study.is_visible_to``).

Everything in the research app goes through these helpers, so a study someone may not
see is a 404 everywhere (its existence is not confirmed), and identities are admin-only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from rest_framework.permissions import BasePermission

from turingtest.core import roles
from turingtest.studies.models import Study


def visible_studies(user: Any) -> QuerySet[Study]:
    """The studies ``user`` may read, matching ``Study.is_visible_to`` row for row."""
    if not user.is_authenticated:
        return Study.objects.none()
    if user.is_staff or user.is_superuser:
        return Study.objects.all()
    return Study.objects.filter(Q(owner=user) | Q(collaborators=user)).distinct()


def study_for(user: Any, study_id: int) -> Study:
    """The study, or 404 when it does not exist or ``user`` may not see it."""
    study = Study.objects.select_related("owner").filter(pk=study_id).first()
    if study is None or not study.is_visible_to(user):
        raise Http404("No such study.")
    return study


def may_export_identities(user: Any) -> bool:
    return roles.is_admin(user)


class IsResearcher(BasePermission):
    """The researcher API is for researchers and admins; raters get 403."""

    message = "Researchers only."

    def has_permission(self, request: Any, view: Any) -> bool:
        return roles.is_researcher(request.user)
