"""The rater on a phone and the shortcut list on a desktop, in a real browser (issue 13).

Phone (390×844, touch, no pointer that hovers): no keyboard hints anywhere, a large consent
box with its words after it, the sticky Submit bar clear of the confidence buttons, a zoom
that magnifies at least twofold, a landscape phone that fits the image, tutorial feedback
that names the true diagnosis, and an end page that counts images, not answers. Desktop:
"?" brings the shortcut list into view with only the keys the study uses, and the image is
drawn at a whole-number scale. Uses the shared live server and test_browser_rating's helpers.
"""

from __future__ import annotations

import pytest

from tests import browser_conftest
from tests.factories import RaterFactory
from tests.test_browser_rating import DESKTOP, build_study, logged_in_page, session_cookie, wait_shown
from turingtest.studies import services
from turingtest.studies.models import Presentation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
chromium_browser = browser_conftest.chromium_browser

PHONE = {"width": 390, "height": 844}
VISIBLE_KBD = "els => els.filter(e => e.getClientRects().length > 0).map(e => e.textContent)"


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
        or a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
    )


def test_on_a_phone_the_rater_sees_no_key_hints_and_every_control_is_reachable(chromium_browser, live_server):
    study = build_study(n_items=4, n_tutorial=1, repeat_fraction=0.5, repeat_min_gap=2)
    rater = RaterFactory()
    [invite_token] = services.invitation_create(study=study, count=1)
    assignment = services.invitation_accept(token=invite_token, user=rater)
    order = list(Presentation.objects.filter(assignment=assignment).select_related("item__image__condition"))
    order.sort(key=lambda p: p.position)
    n_answers = sum(not p.is_tutorial for p in order)
    assert n_answers == 6, "4 images, 2 of them repeated"
    phone = chromium_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3
    )
    phone.add_cookies([session_cookie(live_server, rater)])
    page = phone.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # --- consent: a large box, its words after it; pinch zoom is not blocked
    page.goto(f"{live_server.url}/rate/{study.pk}/consent/")
    viewport_meta = page.get_attribute("meta[name=viewport]", "content")
    assert "user-scalable=no" not in viewport_meta and "maximum-scale" not in viewport_meta
    box = page.locator("input[type=checkbox]").bounding_box()
    label = page.locator(".consent-agree label").bounding_box()
    assert box["width"] >= 28 and box["height"] >= 28, box
    assert label["x"] > box["x"] + box["width"], "the label comes after the box"
    page.tap(".consent-agree label")
    page.get_by_role("button", name="Continue").tap()

    # --- instructions: the number of images and the expected time, no keys
    page.wait_for_url("**/instructions/")
    size = page.locator("#study-size").inner_text()
    assert "6 images to rate" in size and "1 practice example" in size and "minute" in size, size
    assert page.locator("kbd").evaluate_all(VISIBLE_KBD) == []
    page.get_by_role("link", name="Start rating").tap()

    # --- the tutorial item: no hints, the bar clear of the confidence buttons
    tutorial = order[0]
    wait_shown(page, tutorial.public_token)
    assert page.locator("kbd").evaluate_all(VISIBLE_KBD) == []
    assert page.locator("#keys-help").is_hidden()
    bar = page.locator(".submit-row").bounding_box()
    for i in range(1, 6):
        scale = page.locator(f"label:has(input[name=confidence][value='{i}'])").bounding_box()
        assert scale["y"] + scale["height"] <= bar["y"], f"confidence {i} is above the Submit bar"
    page.tap("#choose-synthetic")
    assert "Enter" not in page.locator("#form-status").inner_text()

    # --- zoom: a tap magnifies at least twofold, at no less than one CSS pixel per image pixel
    before = page.locator("#item-image").bounding_box()
    page.tap("#zoom-button")
    assert "zoomed" in page.get_attribute("#stage", "class")
    zoomed = page.locator("#item-image").bounding_box()
    natural = page.evaluate("document.getElementById('item-image').naturalWidth")
    assert zoomed["width"] >= 2 * before["width"] - 1 and zoomed["width"] >= natural
    page.tap("#stage")
    assert "zoomed" not in page.get_attribute("#stage", "class")

    # --- tutorial feedback names the true diagnosis (the study asks for one)
    page.tap("label:has(input[name=confidence][value='3'])")
    page.get_by_role("button", name="Submit").tap()
    page.locator("#feedback-panel").wait_for(state="visible")
    condition = tutorial.item.image.condition
    assert f"Diagnosis: {condition.name}." in page.locator("#feedback-text").inner_text()
    page.get_by_role("button", name="Continue").tap()

    # --- a landscape phone fits the image
    items = [p for p in order if not p.is_tutorial]
    wait_shown(page, items[0].public_token)
    page.set_viewport_size({"width": PHONE["height"], "height": PHONE["width"]})
    page.wait_for_timeout(100)
    image = page.locator("#item-image").bounding_box()
    assert image["y"] >= 0 and image["y"] + image["height"] <= PHONE["width"], image
    assert image["x"] + image["width"] <= PHONE["height"] and image["height"] >= 200, image
    page.set_viewport_size(PHONE)

    # --- answered by touch to the end: the end page counts images, not answers
    for p in items:
        wait_shown(page, p.public_token)
        page.tap("#choose-real")
        page.get_by_role("button", name="Submit").tap()
    page.locator("#view-finished").wait_for(state="visible")
    finished = page.locator("#finished-text").inner_text()
    assert "all 4 images (6 answers: 2 images were shown twice" in finished, finished
    assert page.get_attribute("#finished-back", "href") == "/rate/"
    assert page.locator("#keys-note").is_hidden(), "no 'resume later' on the end page"
    assert errors == []
    phone.close()


def test_on_a_desktop_question_mark_shows_only_the_keys_the_study_uses(chromium_browser, live_server):
    study = build_study(
        n_items=2, n_tutorial=0, questions={"confidence": False, "diagnosis": False, "comment": False}
    )
    rater = RaterFactory()
    [invite_token] = services.invitation_create(study=study, count=1)
    assignment = services.invitation_accept(token=invite_token, user=rater)
    services.assignment_consent(assignment=assignment)
    # Read before the browser starts writing: SQLite's shared in-memory database locks tables.
    first, second = Presentation.objects.filter(assignment=assignment).order_by("position")[:2]
    context, page = logged_in_page(chromium_browser, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.pk}/")
    wait_shown(page, first.public_token)

    # Crisp: a whole number of pixels per stored pixel, drawn nearest-neighbour.
    width = page.locator("#item-image").bounding_box()["width"]
    natural = page.evaluate("document.getElementById('item-image').naturalWidth")
    assert width >= 2 * natural and width % natural == 0, (width, natural)
    rendering = page.evaluate("getComputedStyle(document.getElementById('item-image')).imageRendering")
    assert rendering == "pixelated"

    assert page.locator("#keys-list").is_hidden()
    page.keyboard.press("?")
    keys = page.locator("#keys-list")
    keys.wait_for(state="visible")
    listed = keys.inner_text()
    assert "Real" in listed and "Synthetic" in listed and "Zoom" in listed
    for absent in ("Confidence", "diagnosis", "comment", "previous answer"):
        assert absent not in listed, absent
    box = keys.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"], "in view"
    assert page.evaluate("document.activeElement.id") == "keys-summary"
    page.keyboard.press("?")
    assert keys.is_hidden()
    # The keyboard still answers: R, Enter.
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    wait_shown(page, second.public_token)
    context.close()
