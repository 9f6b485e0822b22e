"""JSON progress endpoints polled by the admin's progress bars (staff only)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from turingtest.library.models import GenerationBatch, ImportJob


def _require_staff(request: HttpRequest) -> None:
    if not (request.user.is_authenticated and request.user.is_staff):
        raise PermissionDenied


@require_GET
@never_cache
def batch_progress(request: HttpRequest, pk: int) -> JsonResponse:
    _require_staff(request)
    batch = get_object_or_404(GenerationBatch, pk=pk)
    return JsonResponse(batch.progress())


@require_GET
@never_cache
def import_progress(request: HttpRequest, pk: int) -> JsonResponse:
    _require_staff(request)
    job = get_object_or_404(ImportJob, pk=pk)
    return JsonResponse(job.progress())
