"""Design integrity (issue 12): matched pools with their stratum table, the tutorial set kept
apart, and the leak audit run from the study page with an override recorded in the design."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tests.factories import ConditionFactory, ImageFactory, ResearcherFactory, library_images, png_bytes
from turingtest.library.models import Image
from turingtest.studies import services, tasks
from turingtest.studies.models import LeakAudit, Study

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def lopsided_library() -> None:
    """Condition LA has mostly real images, LB mostly synthetic ones (the demo's old problem)."""
    a = ConditionFactory(code="LA", name="Lopsided A", map_index=301)
    b = ConditionFactory(code="LB", name="Lopsided B", map_index=302)
    for cond, n_real, n_syn in ((a, 6, 1), (b, 1, 6)):
        for kind, n in ((Image.Kind.REAL, n_real), (Image.Kind.SYNTHETIC, n_syn)):
            for _ in range(n):
                ImageFactory(kind=kind, condition=cond)


def test_a_design_the_library_cannot_match_fails_naming_the_short_strata():
    lopsided_library()
    with pytest.raises(ValueError) as exc:
        services.study_create(owner=ResearcherFactory(), title="T", config={"n_real": 4, "n_synthetic": 4})
    message = str(exc.value)
    assert "cannot match 4 real : 4 synthetic" in message
    assert "LA: 1 of 2 synthetic" in message and "LB: 1 of 2 real" in message
    assert "unmatched" in message
    assert not Study.objects.exists()


def test_an_unmatched_design_is_an_explicit_choice_recorded_in_the_frozen_design():
    lopsided_library()
    owner = ResearcherFactory()
    config = {"n_real": 4, "n_synthetic": 4, "unmatched": True}
    study = services.study_open(study=services.study_create(owner=owner, title="T", config=config, seed=1))
    assert study.is_unmatched and study.config["unmatched"] is True
    assert any("Unmatched design" in w for w in study.design_warnings())
    matched_twin = services.study_copy(study=study, owner=owner)
    matched_twin.config["unmatched"] = False
    matched_twin.save()
    assert services.study_design(matched_twin)["config"]["unmatched"] is False  # part of the hash
    page = client_for(owner).get(f"/studies/{study.pk}/").content.decode()
    assert "Unmatched design" in page and "<strong>unmatched</strong>" in page


def test_the_study_page_and_create_study_show_the_stratum_table():
    ResearcherFactory()
    library_images(6, 6)
    out = io.StringIO()
    call_command("create_study", "--title", "S", "--real", "4", "--synthetic", "4", "--seed", "3", stdout=out)
    text = out.getvalue()
    assert "matched;" in text and "condition  type  kind" in text
    assert text.strip().splitlines()[-1].startswith("study ")
    study = Study.objects.get()
    rows = study.pool_summary["strata"]
    assert {(r["condition"], r["kind"]): (r["wanted"], r["available"], r["drawn"]) for r in rows} == {
        ("T0", "real"): (2, 3, 2),
        ("T0", "synthetic"): (2, 3, 2),
        ("T1", "real"): (2, 3, 2),
        ("T1", "synthetic"): (2, 3, 2),
    }
    page = client_for(study.owner).get(f"/studies/{study.pk}/").content.decode()
    assert 'id="strata"' in page and "matched within condition" in page
    assert "<td>T0</td><td>any</td><td>synthetic</td><td>2</td><td>3</td><td>2</td>" in page


def test_create_study_refuses_an_unmatchable_design_unless_asked_for_unmatched():
    ResearcherFactory()
    lopsided_library()
    with pytest.raises(CommandError, match="LA: 1 of 2 synthetic"):
        call_command("create_study", "--title", "S", "--real", "4", "--synthetic", "4", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_study", "--title", "S", "--real", "4", "--synthetic", "4", "--unmatched", stdout=out)
    assert "UNMATCHED" in out.getvalue()


def test_tutorial_images_of_one_study_are_never_rated_in_another_and_the_page_says_how_many():
    library_images(8, 8)
    owner = ResearcherFactory()
    first = services.study_create(
        owner=owner, title="A", config={"n_real": 4, "n_synthetic": 4, "n_tutorial": 4}
    )
    tutorial = set(first.items.filter(is_tutorial=True).values_list("image_id", flat=True))
    rated = set(first.items.filter(is_tutorial=False).values_list("image_id", flat=True))
    second = services.study_create(
        owner=owner, title="B", config={"n_real": 4, "n_synthetic": 4, "n_tutorial": 4}, seed=9
    )
    assert not tutorial & set(second.items.filter(is_tutorial=False).values_list("image_id", flat=True))
    assert not rated & set(second.items.filter(is_tutorial=True).values_list("image_id", flat=True))
    assert second.pool_summary["n_removed_shown_with_feedback"] == 4
    page = client_for(owner).get(f"/studies/{second.pk}/").content.decode()
    assert "4 candidate images shown with feedback in another study were kept out of the rated pool" in page


def test_opening_refuses_a_pool_whose_tutorial_images_are_rated_elsewhere():
    library_images(4, 4)
    owner = ResearcherFactory()
    a = services.study_create(owner=owner, title="A", config={"n_real": 2, "n_synthetic": 2, "n_tutorial": 2})
    b = services.study_create(owner=owner, title="B", config={"n_real": 2, "n_synthetic": 2}, seed=4)
    # A pool drawn before the rule existed: B rates A's tutorial images.
    b.items.all().delete()
    for item in a.items.filter(is_tutorial=True):
        b.items.create(image=item.image)
    with pytest.raises(ValueError, match="shown with feedback in one study and rated in another"):
        services.study_open(study=b)


# --- leak audit from the study page -------------------------------------------------------


def leaky_draft(owner) -> Study:
    """A draft whose synthetic images are served at another pixel size: a real leak."""
    cond = ConditionFactory(code="LK", name="Leaky condition", map_index=310)
    for i in range(8):
        for kind, size in ((Image.Kind.REAL, 32), (Image.Kind.SYNTHETIC, 48)):
            ImageFactory(
                kind=kind,
                condition=cond,
                file=ContentFile(png_bytes((20 + i * 9, 90, 120), size=size), name="x.png"),
            )
    return services.study_create(owner=owner, title="Leaky", config={"n_real": 8, "n_synthetic": 8}, seed=2)


def test_a_flagged_leak_audit_blocks_opening_until_the_override_which_the_design_records(
    django_capture_on_commit_callbacks,
):
    owner = ResearcherFactory()
    study = leaky_draft(owner)
    c = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert c.post(f"/studies/{study.pk}/audit/").status_code == 302
    audit = LeakAudit.objects.get()
    assert audit.status == "succeeded" and "width" in audit.flagged, (
        audit.status,
        audit.error,
        audit.flagged,
    )
    page = c.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="audit-table"' in page and "FLAG" in page
    # The override is offered on the confirmation page that opening goes through (issue 13).
    confirm = c.get(f"/studies/{study.pk}/open/confirm/").content.decode()
    assert "Open anyway, although the leak audit flagged a feature" in confirm

    c.post(f"/studies/{study.pk}/open/")
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    with pytest.raises(services.LeakFlagged, match="width"):
        services.study_open(study=study)

    c.post(f"/studies/{study.pk}/open/", {"override_leaks": "on"})
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    assert study.config["leak_audit"] == {
        "status": "flagged",
        "audit": audit.pk,
        "flagged": audit.flagged,
        "overridden": True,
    }
    assert study.leak_audit_overridden and services.study_verify_frozen(study=study)
    assert any("flagged leak audit" in w for w in study.design_warnings())


def test_a_clean_audit_is_recorded_and_an_audit_of_an_earlier_design_is_not_heeded(
    django_capture_on_commit_callbacks,
):
    library_images(8, 8)
    owner = ResearcherFactory()
    study = services.study_create(owner=owner, title="Clean", config={"n_real": 8, "n_synthetic": 8}, seed=1)
    with django_capture_on_commit_callbacks(execute=True):
        client_for(owner).post(f"/studies/{study.pk}/audit/")
    audit = LeakAudit.objects.get()
    assert audit.status == "succeeded" and audit.flagged == [] and len(audit.result) > 5
    LeakAudit.objects.filter(pk=audit.pk).update(design_sha256="0" * 64)  # the design changed since
    assert services.study_open(study=study).config["leak_audit"]["status"] == "not run"


def test_the_leak_audit_task_called_twice_audits_once():
    library_images(2, 2)
    owner = ResearcherFactory()
    study = services.study_create(owner=owner, title="Twice", config={"n_real": 2, "n_synthetic": 2})
    row = LeakAudit.objects.create(study=study, design_sha256=services.study_design_sha256(study))
    assert tasks.run_leak_audit(audit_pk=row.pk) == "succeeded"
    finished = LeakAudit.objects.get(pk=row.pk).finished
    assert tasks.run_leak_audit(audit_pk=row.pk) == "succeeded"
    assert LeakAudit.objects.get(pk=row.pk).finished == finished


def test_a_failed_audit_keeps_its_error_on_the_row():
    owner = ResearcherFactory()
    cond = ConditionFactory(code="ON", name="Only real", map_index=320)
    ImageFactory(kind=Image.Kind.REAL, condition=cond)
    study = services.study_create(
        owner=owner, title="One kind", config={"n_real": 1, "n_synthetic": 0, "pool": {"kinds": ["real"]}}
    )
    row = LeakAudit.objects.create(study=study, design_sha256="x")
    assert tasks.run_leak_audit(audit_pk=row.pk) == "failed"
    assert "both real and synthetic" in LeakAudit.objects.get(pk=row.pk).error
