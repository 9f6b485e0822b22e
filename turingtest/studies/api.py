"""Rater JSON API: the rating page's state and answers (contract: ``turingtest/studies/API.md``).

Session-authenticated (the rating page), so POSTs need the CSRF header. Errors are
``{"detail", "code"}`` with 403/404/409/410, or DRF field errors with 400. The rating
services raise ``RatingError`` with a reason; the HTTP status for each reason is chosen here.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from turingtest.studies import rating
from turingtest.studies.serializers import (
    AnswerResultSerializer,
    AnswerSerializer,
    ErrorSerializer,
    StateSerializer,
)

STATUS = {
    "invalid": 400,
    "not_authenticated": 403,
    "consent_required": 403,
    "not_found": 404,
    "out_of_order": 409,
    "already_answered": 409,
    "not_editable": 409,
    "finished": 409,
    "key_reused": 409,
    "closed": 410,
    # Gone for this rater: below the tutorial qualification threshold (the page thanks them).
    "not_qualified": 410,
    # 423 Locked: the study is paused, for a while. Not 409 (the page reads that as "answered
    # elsewhere") nor 5xx (the answer queue would retry it as a connection problem).
    "paused": 423,
}

_ERRORS = {
    403: OpenApiResponse(ErrorSerializer, description="Not logged in, or consent not given yet."),
    404: OpenApiResponse(ErrorSerializer, description="No assignment for this study, or not your token."),
    410: OpenApiResponse(
        ErrorSerializer, description="The study is closed, or ended for this rater (code 'not_qualified')."
    ),
    423: OpenApiResponse(
        ErrorSerializer, description="The study is paused (code 'paused'): come back later, nothing is lost."
    ),
}


def _error(exc: rating.RatingError) -> Response:
    status = STATUS[exc.reason]
    if exc.errors:
        return Response(exc.errors, status=status)
    return Response({"detail": exc.detail, "code": exc.reason}, status=status)


class _RaterView(APIView):
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, rating.RatingError):
            return _error(exc)
        response = super().handle_exception(exc)
        # DRF's own errors (not logged in, no such study, bad JSON) say only "detail"; the
        # contract is {"detail", "code"} for every non-field error, so the page can branch on it.
        if (
            isinstance(exc, APIException)
            and isinstance(response.data, dict)
            and set(response.data) == {"detail"}
        ):
            response.data["code"] = exc.get_codes()
        return response


class RateStateView(_RaterView):
    @extend_schema(
        operation_id="rate_state",
        summary="The rater's current state: progress, current item, next image to prefetch.",
        responses={200: StateSerializer, **_ERRORS},
    )
    def get(self, request: Request, study_id: int) -> Response:
        turn = rating.turn_for_rater(study_id=study_id, user=request.user)
        with transaction.atomic():
            rating.presentation_mark_shown(turn=turn)
            state = rating.assignment_state(turn=turn)
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
            409: OpenApiResponse(
                ErrorSerializer,
                description="Not the current item, already answered, an edit of anything but the "
                "previous item (not_editable), or an edit after the last answer (finished).",
            ),
            **_ERRORS,
        },
    )
    def post(self, request: Request, study_id: int) -> Response:
        turn = rating.turn_for_rater(study_id=study_id, user=request.user)
        serializer = AnswerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        answer = rating.Answer(
            says_synthetic=data["says_synthetic"],
            confidence=data["confidence"],
            diagnosis=data["diagnosis"] or None,
            comment=data["comment"],
            response_ms=data["response_ms"],
        )
        recorded = rating.judgment_record(
            turn=turn, token=data["token"], answer=answer, client_key=data["client_key"]
        )
        return Response(recorded.body, status=201 if recorded.created else 200)
