"""Researcher API (Django REST framework): studies, progress, report and streamed exports.

Token (``Authorization: Token <key>``, rest_framework.authtoken) or session auth; researchers
and admins only (raters 403, anonymous 401/403); a study the user may not see is a 404.
Documented in the OpenAPI schema at ``/api/schema/``.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from turingtest import exports
from turingtest.research.access import IsResearcher, may_export_identities, study_for
from turingtest.research.reporting import study_report
from turingtest.research.serializers import StudyDetailSerializer, StudySummarySerializer
from turingtest.studies.models import Study

IDENTITIES_PARAM = OpenApiParameter(
    "identities",
    OpenApiTypes.BOOL,
    description="Needs the export_identities permission: add rater usernames and e-mails (audited). "
    "Others get 403.",
)


_DETAIL = inline_serializer("ResearchError", fields={"detail": serializers.CharField()})
# Documented so clients (and schemathesis) know every answer the views give, not only 200.
_DENIED = {403: OpenApiResponse(_DETAIL, description="Not logged in, not a researcher, or no permission.")}
_ERRORS = {**_DENIED, 404: OpenApiResponse(_DETAIL, description="No such study, or not yours to see.")}


def _identities(request: Request) -> bool:
    wanted = request.query_params.get("identities", "").lower() in {"1", "true", "yes"}
    if wanted and not may_export_identities(request.user):
        raise PermissionDenied("Exporting rater identities needs the export_identities permission.")
    return wanted


def _mark_identities(response: Any, identities: bool, request: Request) -> None:
    response["X-Export-Identities"] = (
        f"included; requested-by={request.user.get_username()}" if identities else "pseudonymous"
    )
    response["Cache-Control"] = "private, no-store"


class TokenView(ObtainAuthToken):
    """DRF's ``obtain_auth_token``, documented with the answers it really gives."""

    @extend_schema(
        responses={
            200: inline_serializer("TokenResponse", fields={"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong or missing username/password (field errors)."),
            429: OpenApiResponse(description="Locked out after too many failed logins (django-axes)."),
        },
        summary="Exchange a username and password for an API token",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class StudyListView(generics.ListAPIView):
    """Studies the user owns or collaborates on (holders of view_all_studies: all)."""

    permission_classes = [IsResearcher]
    serializer_class = StudySummarySerializer
    pagination_class = None

    @extend_schema(responses={200: StudySummarySerializer(many=True), **_DENIED})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return Study.objects.visible_to(self.request.user).select_related("owner").order_by("-created")


class StudyDetailView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={200: StudyDetailSerializer, **_ERRORS},
        summary="A study with its frozen config and live progress",
    )
    def get(self, request: Request, study_id: int) -> Response:
        return Response(StudyDetailSerializer(study_for(request.user, study_id)).data)


class StudyReportView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="reports.build(study).to_dict()"),
            **_ERRORS,
        },
        summary="The study report (headline first, then detection, agreement, diagnosis, per image, response times)",
    )
    def get(self, request: Request, study_id: int) -> Response:
        return Response(study_report(study_for(request.user, study_id)))


class StudyJudgmentsView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        parameters=[
            IDENTITIES_PARAM,
            # The URL regex's "csv|jsonl" became an unanchored JSON-schema pattern ("xcsvy"
            # matched it, then Django's HTML 404 answered): name the two formats exactly.
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=sorted(exports.CONTENT_TYPES)),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
            **_ERRORS,
        },
        summary="All judgments, one row per judgment, streamed (csv or jsonl)",
    )
    def get(self, request: Request, study_id: int, fmt: str) -> StreamingHttpResponse:
        study = study_for(request.user, study_id)
        identities = _identities(request)
        chunks = exports.iter_export(
            study, fmt=fmt, identities=identities, requested_by=request.user.get_username()
        )
        response = StreamingHttpResponse(chunks, content_type=exports.CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-judgments.{fmt}"'
        _mark_identities(response, identities, request)
        return response


class StudyPackageView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        parameters=[IDENTITIES_PARAM],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **_ERRORS},
        summary="Study package ZIP: judgments CSV, report JSON, frozen config + hash, data dictionary",
    )
    def get(self, request: Request, study_id: int) -> FileResponse:
        study: Study = study_for(request.user, study_id)
        identities = _identities(request)
        package = exports.build_package_file(
            study,
            identities=identities,
            requested_by=request.user.get_username(),
            report_builder=study_report,
        )
        response = FileResponse(
            package,
            as_attachment=True,
            filename=f"study-{study.pk}-package.zip",
            content_type="application/zip",
        )
        _mark_identities(response, identities, request)
        return response
