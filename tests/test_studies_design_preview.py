"""The design form's live preview: counts per condition × kind from the pool draw's own query.

Personas: anonymous, rater, owner researcher, other researcher. The numbers are checked
against the stratum table ``study_create`` stores after drawing the same design.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import RaterFactory, ResearcherFactory, library_images
from turingtest.library.models import Image
from turingtest.studies import services
from turingtest.studies.forms import StudyForm

pytestmark = pytest.mark.django_db

URL = "/studies/new/candidates.json"
DESIGN = {
    "title": "",  # the preview ignores the texts: typing the design first is fine
    "pool_size": "8",
    "synthetic_percent": "50",
    "balance_conditions": "on",
    "n_anchors": "0",
    "n_tutorial": "2",
    "repeat_fraction": "0.1",
    "repeat_min_gap": "5",
}


def client_for(user=None) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def test_only_researchers_get_counts_and_only_the_owner_for_an_existing_draft():
    library_images(6, 6)
    assert client_for().post(URL, DESIGN).status_code == 302  # to the login page
    study = services.study_create(
        owner=ResearcherFactory(), title="T", config={"n_real": 2, "n_synthetic": 2}
    )
    assert client_for(RaterFactory()).post(URL, DESIGN).status_code == 403
    assert client_for(ResearcherFactory()).get(URL).status_code == 405  # POST only: it reads a form
    edit_url = f"/studies/{study.pk}/edit/candidates.json"
    assert client_for(ResearcherFactory()).post(edit_url, DESIGN).status_code == 404  # no existence oracle
    assert client_for(study.owner).post(edit_url, DESIGN).status_code == 200


def test_the_counts_are_those_the_draw_meets_and_the_draw_then_succeeds():
    library_images(6, 6)  # 3 real and 3 synthetic in each of two conditions
    owner = ResearcherFactory()
    data = client_for(owner).post(URL, DESIGN).json()
    assert data["ok"] and data["problems"] == [] and data["errors"] == {}
    assert (data["n_real"], data["n_synthetic"]) == (6, 6)
    form = StudyForm({**DESIGN, "title": "Same design"})
    assert form.is_valid(), form.errors
    study = services.study_create(owner=owner, **form.service_kwargs())
    stored = {
        (r["condition"], r["kind"]): (r["available"], r["wanted"]) for r in study.pool_summary["strata"]
    }
    shown = {(r["condition"], r["kind"]): (r["available"], r["wanted"]) for r in data["strata"]}
    assert shown == stored and sum(a for a, _ in shown.values()) == 12


def test_it_says_which_stratum_or_kind_runs_short_and_which_field_is_wrong():
    images = library_images(6, 6)
    # Left: T0 1 real, 3 synthetic; T1 3 real, 1 synthetic. 4 of each kind, 2 matched pairs.
    drop = [i.pk for i in images if (i.kind, i.condition.code) in {("real", "T0"), ("synthetic", "T1")}]
    Image.objects.filter(pk__in=drop[:2] + drop[3:5]).delete()
    c = client_for(ResearcherFactory())
    short = c.post(URL, {**DESIGN, "pool_size": "8", "n_tutorial": "0"}).json()
    assert not short["ok"]
    assert short["problems"] == [
        "T0: 1 of 2 real wanted is available",
        "T1: 1 of 2 synthetic wanted is available",
    ]
    assert (short["n_real"], short["n_synthetic"]) == (4, 4)
    totals = c.post(URL, {**DESIGN, "pool_size": "10", "n_tutorial": "0"}).json()
    assert totals["problems"] == ["Only 4 real images match the pool filters, 5 needed."]
    assert totals["n_real"] == 4  # the counts still show what there is
    tutorial = c.post(URL, {**DESIGN, "pool_size": "4", "n_tutorial": "6"}).json()
    assert tutorial["problems"] == [
        "Only 2 more synthetic (tutorial) images match the pool filters, 3 needed."
    ]
    bad = c.post(URL, {**DESIGN, "synthetic_percent": "120"}).json()
    assert list(bad["errors"]) == ["synthetic_percent"] and bad["strata"] is None
    anchors = c.post(URL, {**DESIGN, "n_anchors": "9"}).json()
    assert anchors["problems"] == ["n_anchors is larger than the pool"]


def test_the_form_page_groups_every_field_and_loads_the_preview_script_without_inline_code():
    names = [n for _, group in StudyForm.FIELDSETS for n in group]
    assert sorted(names) == sorted(StudyForm.base_fields) and len(names) == len(set(names))
    html = client_for(ResearcherFactory()).get("/studies/new/").content.decode()
    assert f'data-candidates-url="{URL}"' in html and "js/study-form.js" in html
    assert "<script>" not in html and "style=" not in html
