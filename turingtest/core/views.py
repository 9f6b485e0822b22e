from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from turingtest.core import roles
from turingtest.core.health import health


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report, serving = health()
    return JsonResponse(report, status=200 if serving else 503)


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
