"""Study services: freezing and hashing the design, copying, assignments, recording judgments."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from tests.factories import RaterFactory, ResearcherFactory, library_images, open_study, rater_for
from turingtest.studies import services
from turingtest.studies.models import Assignment, Judgment, Presentation, Study

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


def test_judgment_record_twice_with_one_key_writes_once():
    study = open_study()
    _, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    key = uuid.uuid4()
    answer = services.Answer(says_synthetic=True, confidence=3)
    first = services.judgment_record(assignment=assignment, token=token, answer=answer, client_key=key)
    again = services.judgment_record(assignment=assignment, token=token, answer=answer, client_key=key)
    assert (first[0], again[0]) == (201, 200) and first[1] == again[1]
    assert Judgment.objects.count() == 1


def test_a_client_key_reused_for_another_item_is_a_conflict_and_rolls_back():
    study = open_study()
    _, assignment = rater_for(study)
    p0, p1 = assignment.presentations.order_by("position")[:2]
    key = uuid.uuid4()
    services.judgment_record(
        assignment=assignment, token=p0.public_token, answer=services.Answer(True), client_key=key
    )
    with pytest.raises(services.RatingError) as exc:
        services.judgment_record(
            assignment=assignment, token=p1.public_token, answer=services.Answer(True), client_key=key
        )
    assert exc.value.status == 409
    p1.refresh_from_db()
    assert p1.answered_at is None and Judgment.objects.count() == 1


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
    assert exc.value.status == 410


def test_visibility_queryset_matches_is_visible_to():
    owner, collaborator, stranger = ResearcherFactory(), ResearcherFactory(), ResearcherFactory()
    study = open_study(owner=owner)
    study.collaborators.add(collaborator)
    for user, visible in ((owner, True), (collaborator, True), (stranger, False)):
        assert (study in services.studies_visible_to(user)) is visible
        assert study.is_visible_to(user) is visible


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("as_the_api_does", "same_key"),
    [(False, True), (True, True), (True, False)],
    ids=["orm", "api", "api-2keys"],
)
def test_concurrent_double_submits_record_one_judgment_on_postgresql(as_the_api_does, same_key):
    """Two threads, two connections, same answer at once: the claim lets exactly one write.

    "api": the assignment as the answer API loads it (with the next items), which takes the
    one-statement write outside any transaction block; with two keys the loser gets a 409.
    """
    study = open_study()
    rater, assignment = rater_for(study)
    token = assignment.presentations.order_by("position")[0].public_token
    keys = [uuid.uuid4()] * 2 if same_key else [uuid.uuid4(), uuid.uuid4()]
    barrier = threading.Barrier(2)
    results: list = []

    def submit(key) -> None:
        try:
            barrier.wait()
            if as_the_api_does:
                a = services.assignment_for_rater(study_id=study.pk, user=rater, with_upcoming=True)
            else:
                a = Assignment.objects.select_related("study").get(pk=assignment.pk)
            results.append(
                services.judgment_record(
                    assignment=a, token=token, answer=services.Answer(True), client_key=key
                )[0]
            )
        except services.RatingError as exc:
            results.append(exc.status)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results.append(exc)
        finally:
            connection.close()

    for _ in range(10):  # the interleavings differ from run to run: try several
        results.clear()
        threads = [threading.Thread(target=submit, args=(key,)) for key in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results, key=str) == ([200, 201] if same_key else [201, 409]), results
        assert Judgment.objects.count() == 1
        Judgment.objects.all().delete()
        Presentation.objects.filter(public_token=token).update(answered_at=None)
        Assignment.objects.filter(pk=assignment.pk).update(finished_at=None)
