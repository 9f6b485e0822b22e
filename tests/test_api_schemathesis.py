"""schemathesis against ``/api/schema/``: generated requests to every documented operation,
authenticated as the API's real users, get no 5xx and answers that match the schema.

The WSGI app runs in-process on the test database (``schemathesis.openapi.from_wsgi``), so the
study, the rater's session and the researcher's token made here are the ones the requests use.
Each operation gets a bounded number of examples (hypothesis, no deadline): half of them aim at
the real study, so the checks also cover the 200 paths, not only 404s for random ids.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import open_study, rater_for
from turingtest.core import roles

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25
CSRF = "c" * 32


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, minus the per-request connection closing: the test's transaction
    must outlive each request (Django's test Client disconnects the same handlers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _identities(study) -> dict[str, dict[str, dict[str, str]]]:
    """Headers and cookies per API: the researcher's token, the rater's session (+ CSRF pair).

    Cookies go through schemathesis' ``cookies`` (its WSGI client keeps its own jar and would
    drop a hand-made ``Cookie`` header)."""
    from rest_framework.authtoken.models import Token

    roles.add_to_role(study.owner, roles.RESEARCHERS)
    token = Token.objects.create(user=study.owner)
    rater, _ = rater_for(study)
    browser = Client()
    browser.force_login(rater)
    session = browser.cookies["sessionid"].value
    return {
        "researcher": {"headers": {"Authorization": f"Token {token.key}"}, "cookies": {}},
        "rater": {
            "headers": {"X-CSRFToken": CSRF},
            "cookies": {"sessionid": session, "csrftoken": CSRF},
        },
    }


def _run_operation(operation, study_id: int, auth: dict[str, dict[str, str]]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), aim_at_study=st.booleans())
    def check(case, aim_at_study: bool) -> None:
        if aim_at_study and case.path_parameters and "study_id" in case.path_parameters:
            case.path_parameters["study_id"] = study_id
        response = case.call(headers=auth["headers"], cookies=auth["cookies"])
        case.validate_response(response, checks=CHECKS)

    check()


def test_the_api_answers_generated_requests_without_server_errors_and_as_documented(wsgi_app):
    study = open_study(
        n_real=4, n_synthetic=4, questions={"confidence": True, "diagnosis": True, "comment": True}
    )
    identities = _identities(study)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/rate/{study_id}/answers", "/api/studies/{study_id}/"}
    for operation in operations:
        who = "rater" if operation.path.startswith("/api/rate/") else "researcher"
        _run_operation(operation, study.pk, identities[who])


# Regression tests for what schemathesis found (each failed before its fix).


def _schema() -> dict:
    return Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()


def test_a_rater_api_error_raised_by_drf_carries_a_code_like_the_rating_errors():
    response = Client().post("/api/rate/1/answers", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"


def test_the_schema_offers_no_negative_ids_because_the_url_patterns_take_digits_only():
    params = [
        p
        for item in _schema()["paths"].values()
        for op in item.values()
        for p in op.get("parameters", [])
        if p["in"] == "path" and p["schema"].get("type") == "integer"
    ]
    assert params and all(p["schema"]["minimum"] == 0 for p in params)


def test_the_schema_names_the_two_export_formats_exactly():
    op = _schema()["paths"]["/api/studies/{study_id}/judgments.{fmt}"]["get"]
    (fmt,) = [p for p in op["parameters"] if p["name"] == "fmt"]
    assert fmt["schema"]["enum"] == ["csv", "jsonl"]


def test_the_schema_documents_the_researcher_apis_refusals_and_the_token_endpoints_400():
    paths = _schema()["paths"]
    assert {"403", "404"} <= set(paths["/api/studies/{study_id}/"]["get"]["responses"])
    assert {"403", "404"} <= set(paths["/api/studies/{study_id}/package.zip"]["get"]["responses"])
    assert "403" in paths["/api/studies/"]["get"]["responses"]
    assert {"200", "400", "429"} <= set(paths["/api/token/"]["post"]["responses"])


def test_the_schema_generates_and_validates_without_warnings(tmp_path):
    # A clashing component name (the token response was once "AuthToken", like DRF's request
    # serializer) is only a warning here, but it fails `check --deploy --fail-level WARNING`.
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").read_text().startswith("openapi:")
