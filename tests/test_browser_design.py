"""The researcher's side of design integrity in a real browser (issue 12): a matched study's
stratum table, an unmatchable design refused until "unmatched" is chosen, and opening a study
over a flagged leak audit only with the explicit override. Uses the shared live server."""

from __future__ import annotations

import re

import pytest

from tests.factories import ConditionFactory, ImageFactory, ResearcherFactory, library_images
from tests.test_browser_rating import logged_in_page
from tests.test_studies_design import leaky_draft
from turingtest.library.models import Image
from turingtest.studies.models import LeakAudit, Study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_researcher_creates_a_matched_study_and_sees_its_stratum_table(chromium_browser, live_server):
    owner = ResearcherFactory()
    library_images(6, 6)
    # LZ has only real images and LY only synthetic ones: nothing there can be matched.
    for code, kind, index in (("LZ", Image.Kind.REAL, 330), ("LY", Image.Kind.SYNTHETIC, 332)):
        condition = ConditionFactory(code=code, name=f"Lopsided {code}", map_index=index)
        for _ in range(3):
            ImageFactory(kind=kind, condition=condition)
    context, page = logged_in_page(chromium_browser, live_server, owner)
    page.goto(f"{live_server.url}/studies/new/")
    page.get_by_label("Title").fill("Matched in the browser")
    page.get_by_label("Pool size").fill("8")
    page.get_by_label("Tutorial examples (with feedback)").fill("0")
    page.get_by_role("button", name="Create draft").click()

    page.wait_for_url("**/studies/*/")
    table = page.locator("#strata")
    table.wait_for(state="visible")
    assert page.get_by_text("matched within condition").count() == 1
    rows = table.locator("tbody tr")
    assert rows.count() == 8  # T0, T1, LY, LZ × real, synthetic
    lz_real = table.locator("tr", has_text="LZ").filter(has_text="real")
    assert lz_real.locator("td").all_inner_texts() == ["LZ", "any", "real", "0", "3", "0"]
    study = Study.objects.get(title="Matched in the browser")
    drawn = {(r["condition"], r["kind"]): r["drawn"] for r in study.pool_summary["strata"]}
    assert drawn[("T0", "real")] == drawn[("T0", "synthetic")] == 2 and drawn[("LZ", "real")] == 0

    # Asking only for LZ and LY cannot be matched: the form names the short strata, until
    # the researcher explicitly chooses an unmatched design.
    page.goto(f"{live_server.url}/studies/new/")
    page.get_by_label("Title").fill("Only lopsided")
    page.get_by_label("Pool size").fill("4")
    page.get_by_label("Tutorial examples (with feedback)").fill("0")
    page.get_by_label("Lopsided LZ (LZ)").check()
    page.get_by_label("Lopsided LY (LY)").check()
    page.get_by_role("button", name="Create draft").click()
    error = page.locator(".errorlist").first
    error.wait_for(state="visible")
    assert "LZ: 0 of 1 synthetic" in error.inner_text() and "LY: 0 of 1 real" in error.inner_text()
    page.get_by_label("Unmatched design (not recommended)").check()
    page.get_by_role("button", name="Create draft").click()
    page.get_by_text("Unmatched design: real and synthetic images are not drawn").wait_for(state="visible")
    assert Study.objects.get(title="Only lopsided").is_unmatched
    context.close()


def test_opening_a_study_with_a_flagged_leak_needs_the_override(chromium_browser, live_server):
    owner = ResearcherFactory()
    study = leaky_draft(owner)
    context, page = logged_in_page(chromium_browser, live_server, owner)
    page.set_default_timeout(60_000)  # the audit runs in the request here (no broker: eager)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    assert page.get_by_text("Not run yet for this draft.").count() == 1
    page.get_by_role("button", name="Run the leak audit").click()
    page.locator("#audit-table").wait_for(state="visible")
    assert LeakAudit.objects.get().status == "succeeded"
    assert page.locator("#audit-status").inner_text() == "Succeeded"
    flagged_row = page.locator("#audit-table tr", has_text="width")
    assert "FLAG" in flagged_row.inner_text()

    # Opening asks for confirmation first (issue 13); the override sits on that page.
    page.get_by_role("link", name="Open the study…").click()
    override = page.get_by_label("Open anyway, although the leak audit flagged a feature")
    assert override.is_visible() and not override.is_checked()
    page.get_by_role("button", name="Yes, open the study and freeze its design").click()
    page.get_by_text(re.compile(r"^the leak audit flagged")).wait_for(state="visible")
    assert Study.objects.get(pk=study.pk).status == Study.Status.DRAFT

    page.get_by_role("link", name="Open the study…").click()
    page.get_by_label("Open anyway, although the leak audit flagged a feature").check()
    page.get_by_role("button", name="Yes, open the study and freeze its design").click()
    page.get_by_text("opened with the override").wait_for(state="visible")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.config["leak_audit"]["overridden"] is True
    assert page.get_by_text("Opened over a flagged leak audit").count() == 1
    context.close()
