"""Give every request an id and make it reachable from services (``services.current_request``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from turingtest.trail.services import request_bind, request_unbind

# An id a proxy or client sent is kept only if it is short and plain (it lands in logs and CSVs).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    """``request.request_id``: the ``X-Request-ID`` header when sane (echoed back), else a new uuid4.

    A made-up id is not sent back: every image response must carry identical headers (the
    blinding tests compare them), and a random per-response header would break that.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.META.get("HTTP_X_REQUEST_ID", "")
        honoured = bool(_REQUEST_ID.fullmatch(sent))
        request.request_id = sent if honoured else uuid.uuid4().hex  # type: ignore[attr-defined]
        token = request_bind(request)
        try:
            response = self.get_response(request)
        finally:
            request_unbind(token)
        if honoured:
            response["X-Request-ID"] = sent
        return response
