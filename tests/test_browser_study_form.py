"""The new-study form in a real browser (issue 13): the library's counts per condition × kind
update as a filter changes, and a design the library cannot fill says which stratum is short."""

from __future__ import annotations

import os

import pytest

from tests.factories import ResearcherFactory, library_images
from tests.test_browser_rating import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_counts_follow_the_filters_as_the_researcher_types(chromium_browser, live_server):
    library_images(4, 4)  # T0 and T1: 2 real and 2 synthetic each
    context, page = logged_in_page(chromium_browser, live_server, ResearcherFactory())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/studies/new/")
    real_total = page.locator('[data-preview-total="real"]')
    page.wait_for_function("() => !document.querySelector('[data-preview-table]').hidden")
    assert (real_total.inner_text(), page.locator("[data-preview-rows] tr").count()) == ("4", 2)

    page.get_by_label("Test condition 0").check()  # narrow the pool to one condition
    page.wait_for_function("() => document.querySelectorAll('[data-preview-rows] tr').length === 1")
    assert real_total.inner_text() == "2"
    assert page.locator('[data-stratum="T0|"]').count() == 1

    page.get_by_label("Pool size").fill("4")  # 2:2 from one condition fits exactly
    page.get_by_label("Tutorial examples (with feedback)").fill("0")
    page.wait_for_selector("#pool-preview[data-state=ok]")
    page.get_by_label("Pool size").fill("6")  # 3:3 does not: the panel names the short kind
    problem = page.locator("[data-preview-problems] li").first
    problem.wait_for()
    assert "only 2 real images match the pool filters, 3 needed" in problem.inner_text().lower()
    assert page.locator("#pool-preview").get_attribute("data-state") == "problem"

    page.get_by_label("Synthetic share (%)").fill("150")  # validated as typed, beside the field
    page.locator('[data-error-for="synthetic_percent"]:not(:empty)').wait_for()
    if os.environ.get("DASH13_SHOTS"):  # a look at the page while developing
        page.screenshot(path=os.environ["DASH13_SHOTS"] + "/study-form.png", full_page=True)
    assert errors == []
    context.close()
