"""Study services: freezing and hashing the design, copying, assignments, invitations, visibility."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from tests.factories import RaterFactory, ResearcherFactory, library_images, open_study, rater_for
from turingtest.core import roles
from turingtest.studies import services
from turingtest.studies.models import Assignment, Presentation, Study

pytestmark = pytest.mark.django_db


def test_opening_hashes_the_design_and_freezes_it():
    library_images(4, 4)
    study = services.study_create(
        owner=ResearcherFactory(), title="S", config={"n_real": 3, "n_synthetic": 3}, seed=4
    )
    assert study.config_sha256 == ""
    services.study_open(study=study)
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.opened_at is not None
    digest = study.config_sha256
    assert len(digest) == 64 and services.study_verify_frozen(study=study)
    assert services.study_open(study=study).config_sha256 == digest  # no-op
    with pytest.raises(services.StudyFrozen):
        services.study_update(study=study, title="changed")
    with pytest.raises(services.StudyFrozen):
        services.study_build_pool(study=study)
    # A change behind the services' back is detected.
    study.items.filter(is_tutorial=False).first().delete()
    assert not services.study_verify_frozen(study=study)


def test_the_hash_covers_config_and_the_item_list():
    library_images(6, 6)
    owner = ResearcherFactory()
    a = services.study_create(owner=owner, title="A", config={"n_real": 3, "n_synthetic": 3}, seed=1)
    b = services.study_create(owner=owner, title="B", config={"n_real": 3, "n_synthetic": 3}, seed=1)
    c = services.study_create(owner=owner, title="C", config={"n_real": 3, "n_synthetic": 3}, seed=2)
    d = services.study_create(
        owner=owner, title="D", config={"n_real": 3, "n_synthetic": 3, "show_score": True}, seed=1
    )
    ha, hb, hc, hd = (services.study_design_sha256(s) for s in (a, b, c, d))
    assert ha == hb  # same design, same items (titles are not part of the analysis)
    assert len({ha, hc, hd}) == 3


def test_a_closed_study_cannot_reopen_and_copying_gives_an_editable_draft():
    study = open_study()
    services.study_close(study=study)
    with pytest.raises(services.StudyFrozen):
        services.study_open(study=study)
    copy = services.study_copy(study=study, owner=study.owner)
    assert copy.status == Study.Status.DRAFT and copy.config_sha256 == ""
    assert "diagnosis_choices" not in copy.config
    assert sorted(copy.items.values_list("image_id", "is_tutorial")) == sorted(
        study.items.values_list("image_id", "is_tutorial")
    )
    services.study_update(study=copy, title="Second round", rebuild_pool=False)
    services.study_open(study=copy)


def test_an_assignment_is_reproducible_from_its_seed_and_idempotent():
    study = open_study(n_real=6, n_synthetic=6, repeat_fraction=0.25, repeat_min_gap=3, n_tutorial=2)
    r1, a1 = rater_for(study, seed=42)
    r2, a2 = rater_for(study, seed=42)
    order1 = list(
        a1.presentations.order_by("position").values_list("item_id", "is_tutorial", "repeat_of__position")
    )
    order2 = list(
        a2.presentations.order_by("position").values_list("item_id", "is_tutorial", "repeat_of__position")
    )
    assert order1 == order2
    assert len(order1) == 2 + 12 + 3
    assert services.assignment_create(study=study, rater=r1) == a1
    assert Assignment.objects.count() == 2
    tokens = set(Presentation.objects.values_list("public_token", flat=True))
    assert len(tokens) == Presentation.objects.count()  # repeats get their own token


def test_an_invitation_for_a_rater_already_in_the_study_stays_unused():
    study = open_study()
    rater, assignment = rater_for(study)
    (token,) = services.invitation_create(study=study)
    assert services.invitation_accept(token=token, user=rater) == assignment
    services.invitation_lookup(token=token)  # still valid for someone else
    other = RaterFactory()
    services.invitation_accept(token=token, user=other)
    with pytest.raises(services.InvitationInvalid) as exc:
        services.invitation_accept(token=token, user=RaterFactory())
    assert exc.value.reason == "used"


def test_visibility_queryset_matches_is_visible_to_and_only_owner_and_admins_manage():
    owner, collaborator, stranger = ResearcherFactory(), ResearcherFactory(), ResearcherFactory()
    admin = ResearcherFactory()
    roles.add_to_role(admin, roles.ADMINS)  # the admins group holds view_all_studies
    study = open_study(owner=owner)
    study.collaborators.add(collaborator)
    cases = ((owner, True, True), (collaborator, True, False), (stranger, False, False), (admin, True, True))
    for user, visible, manages in cases:
        assert (study in Study.objects.visible_to(user)) is visible
        assert study.is_visible_to(user) is visible
        assert study.is_managed_by(user) is manages
    assert not Study.objects.visible_to(AnonymousUser()).exists()
    assert not study.is_visible_to(AnonymousUser()) and not study.is_managed_by(AnonymousUser())
