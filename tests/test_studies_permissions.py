"""Who may change a study, see every study and export identities (issue 14's access findings).

Personas: owner researcher, collaborator, other researcher, rater, anonymous, superuser,
a member of the ``admins`` group, and a staff account with no permissions. Collaborators
only look; ``is_staff`` alone grants neither "see all studies" nor "export identities".
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import (
    AdminFactory,
    RaterFactory,
    ResearcherFactory,
    UserFactory,
    library_images,
    rater_for,
)
from turingtest import exports
from turingtest.core import roles
from turingtest.studies import services
from turingtest.studies.models import Invitation, LeakAudit, Study

pytestmark = pytest.mark.django_db

FORM = {
    "title": "Pilot",
    "pool_size": "4",
    "synthetic_percent": "50",
    "balance_conditions": "on",
    "n_anchors": "0",
    "n_tutorial": "0",
    "repeat_fraction": "0",
    "repeat_min_gap": "2",
    "ask_confidence": "on",
}


def client_for(user=None) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def admins_member():
    user = UserFactory()
    user.groups.add(Group.objects.get(name="admins"))  # made by the migration, with both permissions
    return user


@pytest.fixture
def draft():
    library_images(4, 4)
    owner = ResearcherFactory()
    study = services.study_create(
        owner=owner, title="Owner's draft", config={"n_real": 2, "n_synthetic": 2}, seed=11
    )
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    return {
        "study": study,
        "owner": owner,
        "collaborator": collaborator,
        "other_researcher": ResearcherFactory(),
        "rater": RaterFactory(),
        "anonymous": None,
        "superuser": AdminFactory(),
        "admins_member": admins_member(),
        "bare_staff": UserFactory(is_staff=True),
    }


def _snapshot(study: Study) -> tuple:
    study = Study.objects.get(pk=study.pk)
    return (
        study.title,
        study.seed,
        study.status,
        sorted(study.items.values_list("image_id", flat=True)),
        sorted(study.collaborators.values_list("pk", flat=True)),
        Invitation.objects.filter(study=study).count(),
        LeakAudit.objects.filter(study=study).count(),
    )


def _changes(study: Study, other_username: str) -> list[tuple[str, str, dict]]:
    base = f"/studies/{study.pk}"
    return [
        ("get", f"{base}/edit/", {}),
        ("post", f"{base}/edit/", {**FORM, "title": "Hijacked", "seed": "999"}),
        ("post", f"{base}/audit/", {}),
        ("post", f"{base}/share/", {"username": other_username}),
        ("post", f"{base}/invite/", {"count": "2"}),
        ("post", f"{base}/open/", {}),
        ("post", f"{base}/close/", {}),
    ]


# What each persona gets on every study-changing page of someone else's draft.
REFUSED = [
    ("collaborator", 403),
    ("other_researcher", 404),
    ("rater", 403),
    ("bare_staff", 403),
    ("anonymous", 302),
]


@pytest.mark.parametrize("who,status", REFUSED)
def test_only_the_owner_and_admins_change_a_draft_collaborators_only_look(draft, who, status):
    study = draft["study"]
    before = _snapshot(study)
    c = client_for(draft[who])
    for method, url, data in _changes(study, draft["other_researcher"].username):
        r = getattr(c, method)(url, data)
        assert r.status_code == status, (method, url)
        if status == 302:
            assert r["Location"].startswith("/accounts/login/"), url
    assert _snapshot(study) == before
    if who == "collaborator":
        assert client_for(draft[who]).get(f"/studies/{study.pk}/").status_code == 200  # it still looks


@pytest.mark.parametrize("who", ["owner", "superuser", "admins_member"])
def test_the_owner_and_admins_edit_the_draft(draft, who):
    study = draft["study"]
    c = client_for(draft[who])
    assert c.get(f"/studies/{study.pk}/edit/").status_code == 200
    r = c.post(f"/studies/{study.pk}/edit/", {**FORM, "title": "Edited", "seed": "5"})
    assert r.status_code == 302
    study.refresh_from_db()
    assert (study.title, study.seed) == ("Edited", 5)
    assert (
        c.post(f"/studies/{study.pk}/share/", {"username": draft["other_researcher"].username}).status_code
        == 302
    )
    assert draft["other_researcher"] in study.collaborators.all()


def test_a_collaborator_copies_into_a_draft_of_their_own_and_the_original_is_untouched(draft):
    study, collaborator = draft["study"], draft["collaborator"]
    before = _snapshot(study)
    r = client_for(collaborator).post(f"/studies/{study.pk}/copy/")
    copy = Study.objects.exclude(pk=study.pk).get()
    assert r.status_code == 302 and copy.owner == collaborator
    assert _snapshot(study) == before


def test_a_collaborator_cannot_close_or_invite_on_an_open_study():
    owner, collaborator = ResearcherFactory(), ResearcherFactory()
    library_images(2, 2)
    study = services.study_open(
        study=services.study_create(owner=owner, title="Open", config={"n_real": 2, "n_synthetic": 2}, seed=1)
    )
    study.collaborators.add(collaborator)
    c = client_for(collaborator)
    assert c.post(f"/studies/{study.pk}/invite/", {"count": "2"}).status_code == 403
    assert c.post(f"/studies/{study.pk}/close/").status_code == 403
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and not Invitation.objects.filter(study=study).exists()


# --- "see all studies" and "export identities" are permissions, not the staff flag ---------


def _token_client(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def test_a_staff_account_without_permissions_sees_no_study_and_exports_no_identities():
    library_images(2, 2)
    study = services.study_create(
        owner=ResearcherFactory(), title="Private", config={"n_real": 2, "n_synthetic": 2}, seed=1
    )
    rater_for(services.study_open(study=study))
    staff = ResearcherFactory(is_staff=True)  # a researcher with the admin-site flag, no permissions
    api = _token_client(staff)
    assert api.get("/api/studies/").json() == []
    assert api.get(f"/api/studies/{study.pk}/judgments.csv?identities=1").status_code == 404
    own = services.study_create(owner=staff, title="Mine", config={"n_real": 2, "n_synthetic": 2}, seed=2)
    r = api.get(f"/api/studies/{own.pk}/judgments.csv?identities=1")
    assert r.status_code == 403 and "export_identities" in r.json()["detail"]
    assert api.get(f"/api/studies/{own.pk}/package.zip?identities=1").status_code == 403
    assert client_for(staff).get(f"/studies/{study.pk}/").status_code == 404
    assert not client_for(staff).get(f"/studies/{own.pk}/results/").context["may_export_identities"]
    bare = UserFactory(is_staff=True)  # not even a researcher: the researcher API refuses it
    assert _token_client(bare).get("/api/studies/").status_code == 403
    assert not study.is_visible_to(bare) and not study.is_managed_by(bare)


def test_the_two_permissions_are_granted_separately_and_the_admins_group_holds_both():
    from django.contrib.auth.models import Permission

    library_images(2, 2)
    study = services.study_open(
        study=services.study_create(
            owner=ResearcherFactory(), title="S", config={"n_real": 2, "n_synthetic": 2}, seed=1
        )
    )
    url = f"/api/studies/{study.pk}/judgments.csv?identities=1"
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_all_studies"))
    assert _token_client(viewer).get("/api/studies/").json()[0]["id"] == study.pk
    assert _token_client(viewer).get(url).status_code == 403
    exporter = ResearcherFactory()
    exporter.user_permissions.add(Permission.objects.get(codename="export_identities"))
    assert _token_client(exporter).get(url).status_code == 404  # may export, but cannot see the study
    group = Group.objects.get(name="admins")
    assert set(group.permissions.values_list("codename", flat=True)) >= {
        "view_all_studies",
        "export_identities",
    }
    for user in (admins_member(), AdminFactory()):
        r = _token_client(user).get(url)
        assert r.status_code == 200, user
        assert b"".join(r.streaming_content).decode().startswith(",".join(exports.header(identities=True)))


def test_the_demo_admin_keeps_its_abilities():
    from turingtest.core.management.commands.seed_demo import Command

    admin = Command()._users()["admin"]  # only the users: the whole demo renders images
    assert roles.may_view_all_studies(admin) and roles.may_export_identities(admin)
    assert roles.is_researcher(admin) and roles.is_admin(admin)
