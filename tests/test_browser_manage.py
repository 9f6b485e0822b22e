"""The researcher runs a study in a real browser (issue 13): the pool page before opening,
the confirmation before opening, the invitations page (links refused for a draft, created,
copied, revoked), pause with a rater mid-study (the page says paused; the answer given
meanwhile is kept and sent after the resume), and the confirmation before closing.

One test, on the shared live server, so the browser starts once for the whole journey.
"""

from __future__ import annotations

import pytest

from tests.factories import RaterFactory, ResearcherFactory, library_images
from tests.test_browser_rating import logged_in_page, wait_shown
from turingtest.studies import services
from turingtest.studies.models import Invitation, Judgment, Presentation, Study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_researcher_checks_the_pool_opens_invites_pauses_resumes_and_closes(chromium_browser, live_server):
    library_images(4, 4)
    owner = ResearcherFactory()
    study = services.study_create(
        owner=owner,
        title="Run in the browser",
        config={"n_real": 3, "n_synthetic": 3, "questions": {"confidence": False}},
        seed=5,
    )
    context, page = logged_in_page(chromium_browser, live_server, owner)
    base = f"{live_server.url}/studies/{study.pk}"

    # --- the pool, before opening: thumbnails through the researchers' view, filters, strata
    page.goto(f"{base}/")
    page.locator("#pool-link").click()
    page.wait_for_url(f"{base}/pool/")
    grid = page.locator("#pool-grid .pool-card")
    assert grid.count() == 6
    page.wait_for_function(
        "() => [...document.querySelectorAll('#pool-grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert all(
        "/pool/" in src for src in page.locator("#pool-grid img").evaluate_all("l => l.map(i => i.src)")
    )
    page.get_by_label("Kind").select_option("synthetic")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/pool/?*")
    assert page.locator("#pool-grid .pool-card").count() == 3
    assert page.locator("#pool-grid .pool-kind").all_inner_texts() == ["Synthetic"] * 3
    assert page.locator("#strata tbody tr").count() >= 2
    assert "No leak audit has run" in page.locator("#pool-audit").inner_text()

    # --- a draft takes no invitation links: the button says why
    page.goto(f"{base}/invitations/")
    create = page.get_by_role("button", name="Create links")
    assert create.is_disabled()
    assert "once the study is open" in page.locator("#invite-refusal").inner_text()

    # --- opening asks first
    page.goto(f"{base}/")
    page.locator("#open-study").click()
    page.wait_for_url(f"{base}/open/confirm/")
    assert "The design is frozen" in page.locator("#open-consequences").inner_text()
    assert Study.objects.get(pk=study.pk).status == "draft"
    page.get_by_role("button", name="Yes, open the study and freeze its design").click()
    page.wait_for_url(f"{base}/")
    assert "(Open)" in page.locator("h1").inner_text()

    # --- invitations: create, copy, revoke
    page.goto(f"{base}/invitations/")
    page.get_by_label("Number of links").fill("2")
    page.get_by_role("button", name="Create links").click()
    links = page.locator("#new-links [data-link]")
    links.first.wait_for(state="visible")
    assert links.count() == 2
    urls = links.all_inner_texts()
    assert page.locator("#links-csv").count() == 1
    copy = page.locator("#new-links button.copy").first
    copy.click()
    page.wait_for_function("b => b.textContent !== 'Copy'", arg=copy.element_handle())
    assert copy.inner_text() in {"Copied", "Selected: press Ctrl+C"}
    first_row = page.locator("#invitations tbody tr").last  # oldest last
    first_row.get_by_role("button", name="Revoke").click()
    page.locator("#invitations .state-revoked").wait_for(state="visible")
    assert Invitation.objects.filter(revoked_at__isnull=False).count() == 1

    # --- a rater joins with the other link and starts
    live = next(
        u
        for u in urls
        if Invitation.objects.get(
            token_sha256=services.invitation_token_sha256(u.rstrip("/").rsplit("/", 1)[1])
        ).revoked_at
        is None
    )
    rater = RaterFactory()
    assignment = services.invitation_accept(token=live.rstrip("/").rsplit("/", 1)[1], user=rater)
    services.assignment_consent(assignment=assignment)
    first = Presentation.objects.filter(assignment=assignment).order_by("position").first()
    rater_context, rater_page = logged_in_page(chromium_browser, live_server, rater)
    rater_page.goto(f"{live_server.url}/rate/{study.pk}/")
    wait_shown(rater_page, first.public_token)

    # --- pause: the rater's answer meets "paused", is kept, and goes through after the resume
    page.goto(f"{base}/")
    page.get_by_role("button", name="Pause the study").click()
    page.get_by_role("button", name="Resume the study").wait_for(state="visible")
    rater_page.keyboard.press("s")
    rater_page.keyboard.press("Enter")
    rater_page.locator("#error-heading").wait_for(state="visible")
    assert rater_page.locator("#error-heading").inner_text() == "This study is paused"
    assert Judgment.objects.count() == 0
    rater_page.reload()
    assert "come back later" in rater_page.locator("#paused-detail").inner_text()
    page.get_by_role("button", name="Resume the study").click()
    page.get_by_role("button", name="Pause the study").wait_for(state="visible")
    rater_page.goto(f"{live_server.url}/rate/{study.pk}/")
    rater_page.wait_for_function("() => document.getElementById('rate-app').dataset.shownToken")
    assert Judgment.objects.get().presentation_id == first.pk  # the answer given while paused

    # --- closing asks first and says who is cut off
    page.locator("#close-study").click()
    page.wait_for_url(f"{base}/close/confirm/")
    consequences = " ".join(page.locator("#close-consequences").inner_text().split())
    assert "Raters can no longer answer." in consequences
    assert "1 of 1 rater who joined has not finished (1 of them mid-way)" in consequences
    page.get_by_role("button", name="Yes, close the study").click()
    page.wait_for_url(f"{base}/")
    assert Study.objects.get(pk=study.pk).status == "closed"
    rater_context.close()
    context.close()
