"""The audit trail: every listed action leaves its event, where the data changes.

``SCENARIOS`` maps each action the platform performs to a scenario: the setup runs first, then
the returned ``act`` does the one thing under test and says what its event must hold. The one
parametrized test checks that exactly one event of that action appeared, with those values; a
second test checks that every action is either in ``SCENARIOS`` or reserved for an issue that
adds the feature (pause, revoke, exclusion, withdrawal).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image as PILImage

from tests.factories import AdminFactory, ImageFactory, ResearcherFactory, UserFactory, open_study, rater_for
from tests.library_support import checkpoint_fixture, distribution, library_fixture  # noqa: F401
from turingtest.core import roles
from turingtest.studies import invitations, lifecycle, quality, services
from turingtest.studies.models import Invitation, Judgment, Study
from turingtest.trail.models import AuditEvent
from turingtest.trail.services import RESERVED, Action

pytestmark = pytest.mark.django_db

Act = Callable[[], dict]


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def answer(c: Client, study_id: int, token: str, **fields):
    payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": True, **fields}
    return c.post(f"/api/rate/{study_id}/answers", json.dumps(payload), content_type="application/json")


# --- the scenarios, one per action --------------------------------------------------------


def _study_created(request) -> Act:
    owner = ResearcherFactory()
    open_study(owner=ResearcherFactory())  # a library to draw from (its own events come before)

    def act():
        study = services.study_create(
            owner=owner, title="New", config={"n_real": 1, "n_synthetic": 1}, seed=5
        )
        return {"object_id": str(study.pk), "study_id": study.pk, "actor_name": owner.username}

    return act


def _study_updated(request) -> Act:
    owner = ResearcherFactory()
    open_study(owner=ResearcherFactory())
    study = services.study_create(owner=owner, title="Old", config={"n_real": 1, "n_synthetic": 1}, seed=5)

    def act():
        services.study_update(study=study, title="New", seed=6)
        return {
            "study_id": study.pk,
            "before": {"title": "Old", "seed": 5},
            "after": {"title": "New", "seed": 6},
        }

    return act


def _study_opened(request) -> Act:
    study = open_study()
    draft = services.study_copy(study=study, owner=study.owner)

    def act():
        services.study_open(study=draft)
        draft.refresh_from_db()
        return {"study_id": draft.pk, "after": {"config_sha256": draft.config_sha256}}

    return act


def _study_closed(request) -> Act:
    """Through the page: the event carries the request's id, client address and user."""
    study = open_study()
    c = client_for(study.owner)

    def act():
        response = c.post(f"/studies/{study.pk}/close/", HTTP_X_REQUEST_ID="req-close-1")
        assert response.status_code == 302
        return {
            "study_id": study.pk,
            "before": {"status": "open"},
            "after": {"status": "closed"},
            "actor_id": study.owner.pk,
            "actor_name": study.owner.username,
            "request_id": "req-close-1",
            "client_address": "127.0.0.1",
        }

    return act


def _collaborator_added(request) -> Act:
    study = open_study()
    colleague = ResearcherFactory()

    def act():
        services.study_share(study=study, user=colleague)
        services.study_share(study=study, user=colleague)  # already shared: nothing changes, no event
        return {"study_id": study.pk, "after": {"user_id": colleague.pk}}

    return act


def _invitation_created(request) -> Act:
    study = open_study()

    def act():
        tokens = services.invitation_create(study=study, count=3)
        event = AuditEvent.objects.get(action=Action.INVITATION_CREATED, study_id=study.pk)
        assert not any(t in json.dumps(event.after) for t in tokens)  # the links never enter the trail
        return {"study_id": study.pk, "after": {"count": 3}}

    return act


def _study_paused(request) -> Act:
    study = open_study()

    def act():
        lifecycle.study_pause(study=study)
        lifecycle.study_pause(study=study)  # a double click is a no-op: still one event
        return {"study_id": study.pk, "before": {"status": "open"}, "after": {"status": "paused"}}

    return act


def _study_resumed(request) -> Act:
    study = lifecycle.study_pause(study=open_study())

    def act():
        lifecycle.study_resume(study=study)
        return {"study_id": study.pk, "before": {"status": "paused"}, "after": {"status": "open"}}

    return act


def _invitation_revoked(request) -> Act:
    study = open_study()
    services.invitation_create(study=study)
    invitation = Invitation.objects.get(study=study)

    def act():
        invitations.invitation_revoke(invitation=invitation)
        invitations.invitation_revoke(invitation=invitation)  # already revoked: no second event
        return {"study_id": study.pk, "object_id": str(invitation.pk)}

    return act


def _invitation_used(request) -> Act:
    study = open_study()
    token = services.invitation_create(study=study)[0]
    rater = UserFactory()

    def act():
        assignment = services.invitation_accept(token=token, user=rater)
        pseudonym = rater.rater_profile.pseudonym
        return {
            "study_id": study.pk,
            "actor_id": rater.pk,
            "actor_name": pseudonym,
            "after": {"assignment": assignment.pk},
        }

    return act


def _consent_given(request) -> Act:
    study = open_study()
    rater, assignment = rater_for(study, consent=False)
    c = client_for(rater)

    def act():
        assert c.post(f"/rate/{study.pk}/consent/", {"agree": "on"}).status_code == 302
        services.assignment_consent(assignment=assignment)  # consented already: no second event
        return {
            "study_id": study.pk,
            "object_id": str(assignment.pk),
            "actor_name": rater.rater_profile.pseudonym,
        }

    return act


def _rater_excluded(request) -> Act:
    study = open_study()
    owner = study.owner
    _, assignment = rater_for(study)

    def act():
        quality.assignment_exclude(assignment=assignment, by=owner, reason="answered in 2 s each")
        # The same reason again is a no-op: still one event.
        quality.assignment_exclude(assignment=assignment, by=owner, reason="answered in 2 s each")
        return {
            "study_id": study.pk,
            "object_id": str(assignment.pk),
            "actor_name": owner.username,
            "before": {"excluded": False, "reason": ""},
            "after": {"excluded": True, "reason": "answered in 2 s each"},
        }

    return act


def _rater_included(request) -> Act:
    study = open_study()
    owner = study.owner
    _, assignment = rater_for(study)
    quality.assignment_exclude(assignment=assignment, by=owner, reason="straight-lined")

    def act():
        quality.assignment_include(assignment=assignment, by=owner)
        quality.assignment_include(assignment=assignment, by=owner)  # not excluded any more: no-op
        return {
            "study_id": study.pk,
            "object_id": str(assignment.pk),
            "before": {"excluded": True, "reason": "straight-lined"},
            "after": {"excluded": False, "reason": ""},
        }

    return act


def _judgment_changed(request) -> Act:
    study = open_study(answers_editable=True)
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    assert answer(c, study.pk, token, says_synthetic=True, confidence=2).status_code == 201

    def act():
        assert answer(c, study.pk, token, says_synthetic=False, confidence=5).status_code == 200
        judgment = Judgment.objects.get()
        return {
            "study_id": study.pk,
            "object_type": "studies.judgment",
            "object_id": str(judgment.pk),
            "actor_name": rater.rater_profile.pseudonym,
            "before": {"says_synthetic": True, "confidence": 2, "revision": 1},
            "after": {"says_synthetic": False, "confidence": 5, "revision": 2},
        }

    return act


def _image_ground_truth_changed(request) -> Act:
    from django.contrib.admin.sites import site
    from django.forms.models import model_to_dict
    from django.test import RequestFactory

    from turingtest.library.models import Condition, Image

    image = ImageFactory(fitzpatrick=2)
    other = Condition.objects.create(code="ZZ", name="Other", map_index=999)
    admin = AdminFactory()
    model_admin = site._registry[Image]
    http = RequestFactory().post("/admin/")
    http.user = admin
    old_condition = image.condition_id  # the form writes the new values onto ``image``

    def act():
        form_class = model_admin.get_form(http, image, change=True)
        data = {k: v for k, v in model_to_dict(image, fields=form_class.base_fields).items() if v is not None}
        data.update(condition=other.pk, fitzpatrick=5)
        form = form_class(data, instance=image)
        assert form.is_valid(), form.errors
        obj = form.save(commit=False)
        model_admin.save_model(http, obj, form, change=True)
        return {
            "object_type": "library.image",
            "object_id": str(image.pk),
            "study_id": None,
            "actor_id": admin.pk,
            "before": {"condition": old_condition, "fitzpatrick": 2},
            "after": {"condition": other.pk, "fitzpatrick": 5},
        }

    return act


def _checkpoint_uploaded(request) -> Act:
    from tests.library_support import tiny_checkpoint
    from turingtest.library import checkpoints

    path = tiny_checkpoint(request.getfixturevalue("library") / "t.pt")

    def act():
        first = checkpoints.checkpoint_register(path=path, name="t")
        assert checkpoints.checkpoint_register(path=path).pk == first.pk  # the same file again: no event
        return {
            "object_type": "library.generatorcheckpoint",
            "object_id": str(first.pk),
            "after": {"sha256": first.sha256},
        }

    return act


def _batch_scheduled(request) -> Act:
    from turingtest.library import scheduling

    checkpoint = request.getfixturevalue("checkpoint")
    admin = AdminFactory()

    def act():
        batch = scheduling.batch_schedule(
            checkpoint=checkpoint, count=4, seed=11, distribution=distribution(), created_by=admin
        )
        return {"object_id": str(batch.pk), "actor_id": admin.pk, "after": {"count": 4, "seed": 11}}

    return act


def _batch_cancelled(request) -> Act:
    from turingtest.library import scheduling

    batch = scheduling.batch_schedule(
        checkpoint=request.getfixturevalue("checkpoint"), count=4, seed=12, distribution=distribution()
    )

    def act():
        scheduling.batch_cancel(batch=batch)
        scheduling.batch_cancel(batch=batch)  # finished already: a no-op, no event
        return {"object_type": "library.generationbatch", "object_id": str(batch.pk)}

    return act


def _import_zip() -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        png = io.BytesIO()
        PILImage.new("RGB", (40, 40), (180, 120, 100)).save(png, "PNG")
        zf.writestr("one.png", png.getvalue())
        zf.writestr("manifest.csv", "image,condition,fitzpatrick\none.png,MEL,2\n")
    return SimpleUploadedFile("set.zip", buf.getvalue())


def _import_created(request) -> Act:
    from turingtest.library import scheduling

    request.getfixturevalue("library")
    admin = AdminFactory()

    def act():
        job = scheduling.import_job_create(archive=_import_zip(), user=admin)
        return {"object_type": "library.importjob", "object_id": str(job.pk), "actor_id": admin.pk}

    return act


def _import_finished(request) -> Act:
    from turingtest.library import scheduling

    request.getfixturevalue("library")
    capture = request.getfixturevalue("django_capture_on_commit_callbacks")
    admin = AdminFactory()

    def act():
        with capture(execute=True):  # the eager task runs the import on commit
            job = scheduling.import_job_create(archive=_import_zip(), user=admin)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        return {
            "object_id": str(job.pk),
            "actor_id": admin.pk,
            "after": {"status": "succeeded", "n_imported": 1},
        }

    return act


def _export(request) -> Act:
    study = open_study()
    admin = AdminFactory()
    c = client_for(admin)

    def act():
        response = c.get(f"/api/studies/{study.pk}/judgments.csv?identities=1")
        assert response.status_code == 200
        b"".join(response.streaming_content)
        return {
            "study_id": study.pk,
            "actor_id": admin.pk,
            "after": {"export": "judgments", "format": "csv", "identities": True},
        }

    return act


def _role_changed(request) -> Act:
    user = UserFactory()

    def act():
        roles.add_to_role(user, roles.RESEARCHERS)
        return {"object_type": "auth.user", "object_id": str(user.pk), "after": {"added": ["researchers"]}}

    return act


def _permission_changed(request) -> Act:
    user = UserFactory()
    perm = Permission.objects.get(codename="view_auditevent")

    def act():
        user.user_permissions.add(perm)
        return {"object_id": str(user.pk), "after": {"added": ["trail.view_auditevent"]}}

    return act


def _login(request) -> Act:
    user = UserFactory(username="alice")

    def act():
        response = Client().post(
            "/accounts/login/", {"username": "alice", "password": "correct horse battery"}
        )
        assert response.status_code == 302
        return {
            "actor_id": user.pk,
            "actor_name": "alice",
            "object_id": str(user.pk),
            "client_address": "127.0.0.1",
        }

    return act


def _login_failed(request) -> Act:
    UserFactory(username="bob")

    def act():
        response = Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})
        assert response.status_code == 200
        event = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
        assert "wrong" not in json.dumps(event.after)
        return {"actor_id": None, "after": {"username": "bob"}, "client_address": "127.0.0.1"}

    return act


def _lockout(request) -> Act:
    settings = request.getfixturevalue("settings")
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(username="carol")
    c = Client()
    c.post("/accounts/login/", {"username": "carol", "password": "wrong"})

    def act():
        c.post("/accounts/login/", {"username": "carol", "password": "wrong again"})
        return {"after": {"username": "carol"}}

    return act


def _consent_withdrawn(request) -> Act:
    study = open_study()
    Study.objects.filter(pk=study.pk).update(withdrawal_policy="delete")
    rater, assignment = rater_for(study)
    c = client_for(rater)
    token = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    assert answer(c, study.pk, token).status_code in (200, 201)
    pseudonym = rater.rater_profile.pseudonym

    def act():
        r = c.post(f"/rate/{study.pk}/withdraw/", {"confirm": "on", "erase_identity": "on"})
        assert r.status_code == 302
        return {
            "study_id": study.pk,
            "object_type": "studies.assignment",
            "object_id": str(assignment.pk),
            "actor_id": rater.pk,
            "actor_name": pseudonym,  # never the erased username
            "after": {
                "policy": "delete",
                "n_judgments": 1,
                "judgments_deleted": True,
                "identity_erased": True,
            },
            "before": None,
        }

    return act


SCENARIOS: dict[str, Callable[..., Act]] = {
    Action.STUDY_CREATED: _study_created,
    Action.STUDY_UPDATED: _study_updated,
    Action.STUDY_OPENED: _study_opened,
    Action.STUDY_CLOSED: _study_closed,
    Action.STUDY_PAUSED: _study_paused,
    Action.STUDY_RESUMED: _study_resumed,
    Action.INVITATION_REVOKED: _invitation_revoked,
    Action.COLLABORATOR_ADDED: _collaborator_added,
    Action.INVITATION_CREATED: _invitation_created,
    Action.INVITATION_USED: _invitation_used,
    Action.CONSENT_GIVEN: _consent_given,
    Action.CONSENT_WITHDRAWN: _consent_withdrawn,
    Action.JUDGMENT_CHANGED: _judgment_changed,
    Action.RATER_EXCLUDED: _rater_excluded,
    Action.RATER_INCLUDED: _rater_included,
    Action.IMAGE_GROUND_TRUTH_CHANGED: _image_ground_truth_changed,
    Action.CHECKPOINT_UPLOADED: _checkpoint_uploaded,
    Action.BATCH_SCHEDULED: _batch_scheduled,
    Action.BATCH_CANCELLED: _batch_cancelled,
    Action.IMPORT_CREATED: _import_created,
    Action.IMPORT_FINISHED: _import_finished,
    Action.EXPORT: _export,
    Action.ROLE_CHANGED: _role_changed,
    Action.PERMISSION_CHANGED: _permission_changed,
    Action.LOGIN: _login,
    Action.LOGIN_FAILED: _login_failed,
    Action.LOCKOUT: _lockout,
}


def _matches(expected, actual) -> bool:
    """``expected`` is a subset of ``actual`` (dicts compared key by key, recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _matches(v, actual[k]) for k, v in expected.items()
        )
    return expected == actual


@pytest.mark.parametrize("action", list(SCENARIOS), ids=str)
def test_each_action_leaves_exactly_one_event_with_its_values(action, request):
    act = SCENARIOS[action](request)
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    expected = act()
    new = list(AuditEvent.objects.filter(id__gt=last, action=action))
    assert len(new) == 1, [(e.action, e.object_type, e.object_id) for e in new]
    event = new[0]
    actual = {f.name: getattr(event, f.name) for f in AuditEvent._meta.fields}
    wrong = {k: (v, actual.get(k)) for k, v in expected.items() if not _matches(v, actual.get(k))}
    assert not wrong, wrong


def test_every_action_has_a_scenario_or_is_reserved_for_a_feature_not_built_yet():
    assert set(SCENARIOS) | RESERVED == set(Action.values)
    assert not set(SCENARIOS) & RESERVED


def test_a_first_answer_writes_no_audit_event():
    study = open_study()
    rater, _ = rater_for(study)
    c = client_for(rater)
    token = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    before = AuditEvent.objects.count()
    assert answer(c, study.pk, token).status_code == 201
    assert Judgment.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_a_study_package_records_one_export_event_naming_the_package():
    study = open_study()
    admin = AdminFactory()
    response = client_for(admin).get(f"/api/studies/{study.pk}/package.zip")
    assert response.status_code == 200
    (event,) = AuditEvent.objects.filter(action=Action.EXPORT)
    assert event.after["export"] == "package" and event.after["identities"] is False
    assert (event.study_id, event.actor_id) == (study.pk, admin.pk)


def test_staff_flags_and_reverse_and_cleared_memberships_are_recorded():
    user = UserFactory()
    user.is_staff = True
    user.save()
    flags = AuditEvent.objects.get(action=Action.ROLE_CHANGED, object_id=str(user.pk))
    assert (flags.before, flags.after) == (
        {"is_staff": False, "is_superuser": False},
        {"is_staff": True, "is_superuser": False},
    )
    group = Group.objects.create(name="auditors")
    group.user_set.add(user)  # from the group's side
    group.permissions.add(Permission.objects.get(codename="view_auditevent"))
    user.groups.clear()
    events = list(AuditEvent.objects.order_by("id").values_list("action", "object_type", "after"))[1:]
    assert events == [
        (Action.ROLE_CHANGED, "auth.user", {"added": ["auditors"]}),
        (Action.PERMISSION_CHANGED, "auth.group", {"added": ["trail.view_auditevent"]}),
        (Action.ROLE_CHANGED, "auth.user", {"removed": ["auditors"]}),
    ]
    user.save(update_fields=["last_login"])  # not a flag: no event, no extra query
    assert AuditEvent.objects.count() == 4
