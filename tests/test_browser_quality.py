"""Rater quality control in a real browser (issue 13): a rater below the tutorial qualification
threshold sees the last feedback, then a polite thank-you page; the researcher excludes a rater
with a reason and sees the headline with and without them side by side.

One test on the shared live server and the shared Chromium, to keep CI lean.
"""

from __future__ import annotations

import pytest

from tests.factories import RaterFactory, ResearcherFactory, open_study, rater_for
from tests.test_browser_rating import build_study, logged_in_page, wait_shown
from tests.test_studies_quality import _answer_all, _client
from turingtest.library.models import Image
from turingtest.studies import services
from turingtest.studies.models import Assignment, Presentation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rater_failing_qualification_is_thanked_and_a_researcher_excludes_a_rater(
    chromium_browser, live_server
):
    # --- the rater: both tutorial answers wrong, against a threshold of 2
    study = build_study(n_items=4, n_tutorial=2, qualification_min_correct=2)
    rater = RaterFactory()
    assignment = services.assignment_create(study=study, rater=rater, seed=3)
    services.assignment_consent(assignment=assignment)
    tutorial = list(Presentation.objects.filter(assignment=assignment, is_tutorial=True).order_by("position"))
    context, page = logged_in_page(chromium_browser, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.pk}/")
    for p in tutorial:
        wait_shown(page, p.public_token)
        page.keyboard.press("r" if p.item.image.kind == Image.Kind.SYNTHETIC else "s")
        page.keyboard.press("Enter")
        page.locator("#feedback-panel").wait_for(state="visible")
        page.keyboard.press("Enter")
    page.locator("#not-qualified-detail").wait_for(state="visible")
    assert "Thank you for taking part" in page.locator("h1").inner_text()
    assert Assignment.objects.get(pk=assignment.pk).qualified is False
    context.close()

    # --- the researcher: three raters answered, one is excluded with a reason
    owner = ResearcherFactory()
    rated = open_study(owner=owner, n_real=3, n_synthetic=3)
    raters = [rater_for(rated, seed=s) for s in range(3)]
    for i, (user, _) in enumerate(raters):
        _answer_all(_client(user), rated.pk, right=i != 2)
    context, page = logged_in_page(chromium_browser, live_server, owner)
    page.goto(f"{live_server.url}/studies/{rated.pk}/results/")
    assert page.locator("#headline-compare").count() == 0
    page.locator("#raters-link").click()
    pseudonym = raters[2][0].rater_profile.pseudonym
    row = page.locator(f'#raters-table tr[data-rater="{pseudonym}"]')
    row.get_by_label("Reason").fill("answered without looking")
    row.get_by_role("button", name="Exclude").click()
    row.get_by_role("button", name="Include again").wait_for()
    assert "yes: answered without looking" in row.inner_text()
    page.goto(f"{live_server.url}/studies/{rated.pk}/results/")
    compare = page.locator("#headline-compare")
    compare.wait_for(state="visible")
    text = compare.inner_text()
    assert "without excluded (2 raters)" in text and "all raters (3 raters)" in text
    assert compare.locator("tbody tr").count() == 4
    context.close()
