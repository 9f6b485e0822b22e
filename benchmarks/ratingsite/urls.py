"""The project's URLs plus the baseline the rating round trip is compared with."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from turingtest.urls import urlpatterns as project_urlpatterns


class TrivialView(APIView):
    """Session-authenticated, CSRF-checked like the rater API (same DRF defaults and permission),
    and returns a fixed small JSON: the cost of the stack with no work in the view."""

    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [path("bench/trivial", TrivialView.as_view(), name="bench-trivial"), *project_urlpatterns]
