"""The audit trail as a record: read-only admin, append-only table, values that outlive users,
request ids, and the study package's ``audit.csv``."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import AdminFactory, ResearcherFactory, open_study
from turingtest import exports
from turingtest.studies import services
from turingtest.trail.models import AuditEvent
from turingtest.trail.services import Action, event_record

pytestmark = pytest.mark.django_db


def admin_client() -> tuple[Client, object]:
    admin = AdminFactory()
    c = Client()
    c.force_login(admin)
    return c, admin


def test_superusers_browse_and_filter_events_but_cannot_add_change_or_delete_them():
    c, admin = admin_client()
    study = open_study()
    event = AuditEvent.objects.filter(study_id=study.pk).first()
    original = (event.action, event.actor_name, event.after)
    changelist = reverse("admin:trail_auditevent_changelist")
    response = c.get(changelist, {"action__exact": Action.STUDY_OPENED, "study_id": study.pk})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == list(
        AuditEvent.objects.filter(action=Action.STUDY_OPENED, study_id=study.pk)
    )
    assert response.context["action_form"] is None  # no actions: the bulk delete is gone
    assert c.get(reverse("admin:trail_auditevent_add")).status_code == 403
    assert c.get(reverse("admin:trail_auditevent_delete", args=[event.pk])).status_code == 403
    change = reverse("admin:trail_auditevent_change", args=[event.pk])
    assert c.get(change).status_code == 200  # view only
    c.post(change, {"action": Action.LOGIN, "actor_name": "mallory"})
    c.post(changelist, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    event.refresh_from_db()
    assert (event.action, event.actor_name, event.after) == original
    model_admin = site._registry[AuditEvent]
    http = RequestFactory().get("/")
    http.user = admin
    assert not any(
        (
            model_admin.has_add_permission(http),
            model_admin.has_change_permission(http, event),
            model_admin.has_delete_permission(http, event),
        )
    )


@pytest.mark.postgres
def test_postgresql_refuses_updating_or_deleting_an_event():
    event = event_record(action=Action.LOGIN, obj=("auth.user", 1))
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(actor_name="mallory"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: event.delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    event.refresh_from_db()
    assert event.actor_name == "" and AuditEvent.objects.filter(pk=event.pk).exists()


def test_events_are_values_that_survive_deleting_the_users_and_the_study():
    owner = ResearcherFactory(username="olga")
    study = open_study(owner=owner)
    colleague = ResearcherFactory(username="carl")
    c = Client()
    c.force_login(owner)
    assert c.post(f"/studies/{study.pk}/share/", {"username": "carl"}).status_code == 302
    shared = AuditEvent.objects.get(action=Action.COLLABORATOR_ADDED)
    assert (shared.actor_id, shared.actor_name, shared.after) == (owner.pk, "olga", {"user_id": colleague.pk})
    kept = list(AuditEvent.objects.order_by("id").values())
    study.delete()
    colleague.delete()
    owner.delete()
    assert list(AuditEvent.objects.order_by("id").values()) == kept


def test_a_request_id_is_honoured_and_echoed_when_plain_and_made_up_otherwise():
    c, _ = admin_client()
    study = open_study()
    response = c.post(f"/studies/{study.pk}/close/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert AuditEvent.objects.get(action=Action.STUDY_CLOSED).request_id == "abc-123"
    copy = services.study_copy(study=study, owner=study.owner)
    response = c.post(f"/studies/{copy.pk}/close/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert "X-Request-ID" not in response  # a made-up id is not sent back (identical image headers)
    made = AuditEvent.objects.get(action=Action.STUDY_CLOSED, study_id=copy.pk).request_id
    assert len(made) == 32 and made.isalnum()


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="unknown audit action"):
        event_record(action="made_up")


def _audit_rows(package: bytes) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        return list(csv.DictReader(io.StringIO(zf.read("audit.csv").decode())))


def test_the_study_package_holds_that_studys_audit_events_only():
    study = open_study()
    other = open_study()
    services.invitation_create(study=other, count=2)
    c, admin = admin_client()
    response = c.get(f"/api/studies/{study.pk}/package.zip", REMOTE_ADDR="10.1.2.3")
    rows = _audit_rows(b"".join(response.streaming_content))
    assert [r["event_id"] for r in rows] == [
        str(pk)
        for pk in AuditEvent.objects.filter(study_id=study.pk)
        .order_by("at", "id")
        .values_list("id", flat=True)
    ]
    assert {r["study_id"] for r in rows} == {str(study.pk)}
    assert [r["action"] for r in rows] == ["study_created", "study_opened", "export"]
    assert rows[-1]["actor_name"] == admin.username and '"export":"package"' in rows[-1]["after"]
    assert list(rows[0]) == [c.name for c in exports.AUDIT_COLUMNS if not c.identities_only]
    assert "client_address" not in rows[0]  # a client's address is personal data: identities only
    named = _audit_rows(
        b"".join(c.get(f"/api/studies/{study.pk}/package.zip?identities=1").streaming_content)
    )
    assert named[-1]["client_address"] == "127.0.0.1"
    with zipfile.ZipFile(
        io.BytesIO(b"".join(c.get(f"/api/studies/{study.pk}/package.zip").streaming_content))
    ) as zf:
        assert "audit.csv" in zf.read("README.txt").decode()
        assert all(
            f"| `{col.name}` |" in zf.read("data_dictionary.md").decode()
            for col in exports.AUDIT_COLUMNS[:-1]
        )
