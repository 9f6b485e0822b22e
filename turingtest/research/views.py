"""Results dashboard: the headline card, progress, the report's tables and plots, per study.

Only the study's owner, collaborators and admins get anything (others 404, anonymous is
sent to log in, raters 403). Plots are matplotlib figures rendered on the server and cached
until new judgments arrive; the page itself has no inline script or style (strict CSP).
"""

from __future__ import annotations

import mimetypes
from typing import Any

from django.core.cache import cache
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from turingtest.core.roles import researcher_required
from turingtest.research import plots
from turingtest.research.access import may_export_identities, study_for
from turingtest.research.progress import state_key, study_progress, utc_text
from turingtest.research.reporting import study_report
from turingtest.research.tables import headline_card, report_sections, report_warnings
from turingtest.studies.models import StudyItem

PLOT_TIMEOUT_S = 24 * 3600


@require_GET
@researcher_required
def study_results(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_for(request.user, int(study_id))
    report = study_report(study)
    progress = study_progress(study)
    return render(
        request,
        "research/study_results.html",
        {
            "study": study,
            "headline": headline_card(report),
            "progress": progress,
            "last_answered_text": utc_text(progress["last_answered_at"]),
            "plots": plots.available(report),
            "convincing": plots.most_convincing(report, limit=8),
            "sections": report_sections(report),
            "warnings": report_warnings(report),
            "may_export_identities": may_export_identities(request.user),
        },
    )


@never_cache
@require_GET
@researcher_required
def study_results_progress(request: HttpRequest, study_id: int) -> JsonResponse:
    """Polled by static/js/research-results.js to keep the progress numbers live."""
    return JsonResponse(study_progress(study_for(request.user, int(study_id))))


@require_GET
@researcher_required
def study_results_plot(request: HttpRequest, study_id: int, name: str, fmt: str) -> HttpResponse:
    study = study_for(request.user, int(study_id))
    if name not in plots.PLOTS:
        raise Http404("No such plot.")
    key = f"research:plot:v2:{state_key(study)}:{name}:{fmt}"
    cached = cache.get(key)
    if cached is None:
        cached = plots.render_or_reason(name, study_report(study), study, fmt=fmt)
        cache.set(key, cached, PLOT_TIMEOUT_S)
    body, reason = cached
    if reason and request.GET.get("download"):
        raise Http404(reason)  # nothing worth a file yet
    # A plot that cannot be drawn yet is a small image saying why, never a broken image.
    response = HttpResponse(body, content_type=plots.CONTENT_TYPES[fmt])
    response["Cache-Control"] = "private, no-cache"
    if reason:
        response["X-Plot-Unavailable"] = reason
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-{name}.{fmt}"'
    return response


@require_GET
@researcher_required
def study_results_image(request: HttpRequest, study_id: int, token: str) -> FileResponse:
    """A study image by its library token, for the most-convincing thumbnails.

    Researcher-only and limited to images in this study's pool; raters never reach it
    (they see per-presentation tokens through the rating views instead).
    """
    study = study_for(request.user, int(study_id))
    item: Any = (
        StudyItem.objects.select_related("image").filter(study=study, image__public_token=token).first()
    )
    if item is None:
        raise Http404("No such image in this study.")
    content_type = mimetypes.guess_type(item.image.file.name)[0] or "application/octet-stream"
    response = FileResponse(item.image.file.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
