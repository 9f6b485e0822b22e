from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import cache_control, never_cache

from turingtest.core import ops as ops_status
from turingtest.core import roles
from turingtest.core.health import liveness, readiness_cached


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Public liveness: one ``SELECT 1``, so anyone may call it as often as they like."""
    report, alive = liveness()
    return JsonResponse(report, status=200 if alive else 503)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness for load balancers and operators: deep probes, cached; details only for operators.

    Anonymous callers get the status and the HTTP code; probe details (error messages,
    paths, worker counts) go to staff or a request carrying ``READINESS_TOKEN``.
    """
    report, ready = readiness_cached()
    body = report if _may_see_readiness_details(request) else {"status": report["status"]}
    return JsonResponse(body, status=200 if ready else 503)


def _may_see_readiness_details(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.READINESS_TOKEN
    return bool(token) and constant_time_compare(request.headers.get("X-Readiness-Token", ""), token)


@never_cache
@login_required
def ops(request: HttpRequest) -> HttpResponse:
    """Staff only: workers and their queues, tasks waiting, the latest failure of each kind of work."""
    if not roles.is_admin(request.user):
        raise PermissionDenied
    return render(
        request,
        "ops.html",
        {
            "workers": ops_status.workers_alive(),
            "queues": ops_status.queue_lengths(),
            "failures": ops_status.failures_latest(),
        },
    )


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "is_researcher": roles.is_researcher(request.user),
            "is_rater": roles.is_rater(request.user),
            "is_admin": roles.is_admin(request.user),
        },
    )


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links: send them to the static file.

    Not a permanent redirect: the static URL carries a content hash that changes with the icon.
    """
    return HttpResponseRedirect(static("favicon.ico"))
