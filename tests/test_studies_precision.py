"""Precision planning on the study pages and in create_study; unequal pools are allowed."""

from __future__ import annotations

import math
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from tests.factories import ResearcherFactory, library_images
from tests.research_study import build_small_study
from turingtest import reports, stats
from turingtest.studies import precision, services
from turingtest.studies.models import Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def pilot():
    return build_small_study(n_raters=4, n_real=6, n_synthetic=6).study


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_the_plan_uses_the_pilots_headline_components(pilot):
    components = reports.headline(pilot).balanced_accuracy.components
    plan = precision.precision_plan(pilot=pilot, n_raters=20, n_images=80, target=0.05)
    assert plan.half_width == pytest.approx(stats.expected_half_width(components, 20, 80))
    assert f"20 raters × 80 images: expected 95% CI half-width ±{plan.half_width:.3f}" in plan.lines[1]
    assert plan.lines[2].startswith("Target ±0.050: ")
    floor = stats.expected_half_width(components, 20, math.inf)
    assert f"with 20 raters no number of images narrows the CI below ±{floor:.3f}" in plan.lines[-1]
    assert "Raters and images trade off differently" in plan.lines[-1]


def test_a_pilot_without_judgments_says_it_has_nothing_to_plan_from():
    plan = precision.precision_plan(pilot=build_small_study(n_raters=0).study, n_raters=None, n_images=40)
    assert plan.half_width is None and "no reader-study estimate yet" in plan.lines[0]


def test_the_new_study_page_shows_the_plan_for_a_chosen_pilot(pilot):
    client = Client()
    client.force_login(pilot.owner)
    page = client.get("/studies/new/").content.decode()
    assert 'id="plan-h"' in page and f'<option value="{pilot.pk}">{pilot.pk}: {pilot.title}</option>' in page
    answer = client.get(
        "/studies/new/",
        {"plan-pilot": pilot.pk, "plan-n_raters": 30, "plan-n_images": 60, "plan-target": 0.06},
    ).content.decode()
    plan = precision.precision_plan(pilot=pilot, n_raters=30, n_images=60, target=0.06)
    for line in plan.lines:
        assert f"<li>{line}</li>".replace("'", "&#x27;") in answer
    # Another researcher cannot plan from a study they may not see.
    other = Client()
    other.force_login(ResearcherFactory())
    refused = other.get("/studies/new/", {"plan-pilot": pilot.pk, "plan-n_raters": 5, "plan-n_images": 5})
    assert "Select a valid choice" in refused.content.decode()


def test_create_study_prints_the_plan_from_a_pilot_before_its_id(pilot):
    library_images(12, 12)
    lines = run(
        "create_study", "--title", "Main", "--real", "10", "--synthetic", "10",
        "--pilot", str(pilot.pk), "--plan-raters", "25", "--target-half-width", "0.05",
    )  # fmt: skip
    assert lines[-1].startswith("study ")
    plan_lines = [line for line in lines if line.startswith("plan: ")]
    expected = precision.precision_plan(pilot=pilot, n_raters=25, n_images=20, target=0.05)
    assert plan_lines == [f"plan: {line}" for line in expected.lines]
    assert not any(line.startswith("note: ") for line in lines)  # 10 real, 10 synthetic


def test_unequal_real_and_synthetic_counts_are_allowed_and_explained():
    library_images(4, 12)
    ResearcherFactory()
    lines = run("create_study", "--title", "1:3", "--real", "4", "--synthetic", "12", "--open")
    study = Study.objects.get(pk=int(lines[-1].split()[1]))
    assert study.status == Study.Status.OPEN
    assert study.items.filter(image__kind="synthetic").count() == 12
    (note,) = [line for line in lines if line.startswith("note: ")]
    assert "raw accuracy is not comparable to 0.5" in note and "0.75" in note
    # The opened study's report says the same in its headline.
    report = reports.build(study, n_boot=10)
    assert not report.headline.equal_kinds
    assert any("not comparable to 0.5" in n for n in report.headline.notes)


def test_the_service_creates_and_opens_an_unequal_pool():
    library_images(2, 6)
    study = services.study_create(
        owner=ResearcherFactory(), title="U", config={"n_real": 2, "n_synthetic": 6}, seed=1
    )
    assert services.study_open(study=study).status == Study.Status.OPEN
