"""Rater JSON API: the rating page's state and answers (contract: ``turingtest/studies/API.md``).

Session-authenticated (the rating page), so POSTs need the CSRF header. Errors are
``{"detail", "code"}`` with 403/404/409/410, or DRF field errors with 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from turingtest.studies import services
from turingtest.studies.serializers import (
    AnswerResultSerializer,
    AnswerSerializer,
    ErrorSerializer,
    StateSerializer,
)

_ERRORS = {
    403: OpenApiResponse(ErrorSerializer, description="Not logged in, or consent not given yet."),
    404: OpenApiResponse(ErrorSerializer, description="No assignment for this study, or not your token."),
    410: OpenApiResponse(ErrorSerializer, description="The study is closed."),
}


# The answer body is checked by AnswerSerializer's own field objects, built once: the same
# rules and messages as ``AnswerSerializer(data=...).is_valid()``, without the per-request
# deep copy of the fields that made the serializer the largest cost of the answer path.
# Fields are not mutated by validation, so threads can share them.
_ANSWER_FIELDS = tuple(AnswerSerializer().fields.items())
for _name, _field in _ANSWER_FIELDS:
    _field.validators  # noqa: B018 - built lazily on first use; build it before threads share it


def _answer_data(data: Any) -> dict:
    """Validated answer fields, or ``RatingError`` 400 with DRF-shaped field errors."""
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise services.RatingError(
            400,
            "invalid",
            "Invalid data.",
            errors={"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]},
        )
    out: dict = {}
    errors: dict = {}
    for name, field in _ANSWER_FIELDS:
        try:
            out[name] = field.run_validation(field.get_value(data))
        except ValidationError as exc:
            errors[name] = exc.detail
        except SkipField:
            pass
    if errors:
        raise services.RatingError(400, "invalid", "Invalid answer.", errors=errors)
    return out


def _error(exc: services.RatingError) -> Response:
    if exc.errors:
        return Response(exc.errors, status=exc.status)
    return Response({"detail": exc.detail, "code": exc.code}, status=exc.status)


class _RaterView(APIView):
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.RatingError):
            return _error(exc)
        return super().handle_exception(exc)


class RateStateView(_RaterView):
    @extend_schema(
        operation_id="rate_state",
        summary="The rater's current state: progress, current item, next image to prefetch.",
        responses={200: StateSerializer, **_ERRORS},
    )
    def get(self, request: Request, study_id: int) -> Response:
        assignment = services.assignment_for_rater(study_id=study_id, user=request.user)
        with transaction.atomic():
            state = services.assignment_state(assignment=assignment)
        return Response(state)


class RateAnswerView(_RaterView):
    @extend_schema(
        operation_id="rate_answer",
        summary="Record an answer and return the next state in one round trip (idempotent on client_key).",
        request=AnswerSerializer,
        responses={
            201: AnswerResultSerializer,
            200: OpenApiResponse(
                AnswerResultSerializer, description="Replay of an already recorded client_key."
            ),
            400: OpenApiResponse(description="Field errors."),
            409: OpenApiResponse(ErrorSerializer, description="Not the current item, or already answered."),
            **_ERRORS,
        },
    )
    def post(self, request: Request, study_id: int) -> Response:
        assignment = services.assignment_for_rater(study_id=study_id, user=request.user, with_upcoming=True)
        data = _answer_data(request.data)
        answer = services.Answer(
            says_synthetic=data["says_synthetic"],
            confidence=data["confidence"],
            diagnosis=data["diagnosis"] or None,
            comment=data["comment"],
            response_ms=data["response_ms"],
        )
        status, body = services.judgment_record(
            assignment=assignment, token=data["token"], answer=answer, client_key=data["client_key"]
        )
        return Response(body, status=status)
