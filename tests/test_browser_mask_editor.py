"""The mask editor in a real browser: a mouse stroke, undo, a second stroke, a finger stroke
(touch events, so the pointer-event path a tablet takes), then Enter accepts and the queue
moves on. The saved mask holds the imported box and the two kept strokes, not the undone one."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests import browser_conftest
from tests.factories import AdminFactory
from tests.library_support import library_fixture  # noqa: F401  (fixture)
from tests.mask_support import SIZE, box, real_image
from tests.test_browser_rating import session_cookie
from turingtest.library.masks import mask_load
from turingtest.library.models import MaskSource

SCREENSHOT = os.environ.get("MASK_EDITOR_SCREENSHOT", "")  # a path: look at the page by eye
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
chromium_browser = browser_conftest.chromium_browser


def test_a_reviewer_draws_undoes_draws_with_a_finger_and_accepts(chromium_browser, live_server, library):
    image = real_image(1, mask=box(0, 0, 6, 6))
    reviewer = AdminFactory(username="dr.pen")
    context = chromium_browser.new_context(viewport={"width": 900, "height": 1000}, has_touch=True)
    context.add_cookies([session_cookie(live_server, reviewer)])
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # CSP refusals show up as console errors; a missing favicon is not the editor's business.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "favicon" not in m.location.get("url", "")
            else None
        ),
    )
    page.goto(f"{live_server.url}/admin/library/image/{image.pk}/mask/")
    page.wait_for_selector('#mask-editor[data-ready="true"]')
    editor = page.locator("#mask-editor")
    area = page.locator("#mask-canvas").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:  # image pixel → page coordinates
        return area["x"] + (x + 0.5) * area["width"] / SIZE, area["y"] + (y + 0.5) * area["height"] / SIZE

    def mouse_stroke(start, end) -> None:
        page.mouse.move(*at(*start))
        page.mouse.down()
        page.mouse.move(*at(*end), steps=8)
        page.mouse.up()

    mouse_stroke((2, 16), (14, 16))  # A: undone below
    assert editor.get_attribute("data-undo-depth") == "1"
    page.keyboard.press("Control+z")
    assert editor.get_attribute("data-undo-depth") == "0"
    mouse_stroke((24, 2), (24, 12))  # B: kept
    assert editor.get_attribute("data-last-pointer") == "mouse"

    cdp = context.new_cdp_session(page)  # C: a finger, as a tablet sends it
    y = at(0, 28)[1]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": at(16, 0)[0], "y": y}]})
    for x in range(17, 31):
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": at(x, 0)[0], "y": y}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_function("document.getElementById('mask-editor').dataset.strokes === '3'")
    assert editor.get_attribute("data-last-pointer") == "touch"

    page.keyboard.press("p")  # D: a polygon; the first Enter closes and fills it
    for corner in ((2, 20), (10, 20), (2, 30)):
        page.mouse.click(*at(*corner))
    page.keyboard.press("Enter")
    assert editor.get_attribute("data-undo-depth") == "3"
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT)

    page.keyboard.press("Enter")  # accept → the queue → no other image → the image list
    page.wait_for_url("**/admin/library/image/")
    assert "saved as reviewed" in page.content()
    assert errors == []
    context.close()

    image.refresh_from_db()
    assert image.mask_source == MaskSource.REVIEWED and image.mask_reviewed_by == reviewer
    mask = mask_load(image=image)
    assert mask[:6, :6].all()  # the imported box is still there
    assert mask[2:13, 24].all()  # stroke B
    assert mask[28, 17:30].all()  # stroke C (touch)
    assert not mask[16, 4:13].any()  # stroke A was undone
    assert mask[21:25, 3:6].all() and not mask[29, 8]  # polygon D, filled inside its outline
    assert image.lesion_area_fraction == pytest.approx(float(np.mean(mask)))
