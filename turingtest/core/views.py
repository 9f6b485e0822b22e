from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache

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


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links: send them to the static file.

    Not a permanent redirect: the static URL carries a content hash that changes with the icon.
    """
    return HttpResponseRedirect(static("favicon.ico"))
