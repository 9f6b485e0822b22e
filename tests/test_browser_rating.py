"""The rater's whole journey in a real browser (Debian's Chromium, headless, through Playwright).

Invitation → registration → consent → instructions → tutorial with feedback → a 12-item
study answered with the keyboard only, including: a reload mid-way (resumes at the right
item), the same rater opening the study on a phone (resumes there too; screenshot and layout
checks), double Enters (one judgment each), a connection dropped after the server recorded the
answer (the retry carries the same client_key) and a connection that is down (the answer waits
in localStorage and is sent after a reload). Every response the browser received is then
scanned for ground truth (tests/browser_conftest.py; the scanner is unit-tested on leaks).
Shorter tests cover the exposure limit, a refused diagnosis, an ended session, a study closing
mid-way, and touch, double click and "change previous answer" on a tablet.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from tests.browser_conftest import Captured, scan, study_truth
from tests.factories import ConditionFactory, ImageFactory, RaterFactory, ResearcherFactory, png_bytes
from turingtest.library.models import Image
from turingtest.studies import services
from turingtest.studies.models import Judgment, Presentation, TutorialAnswer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long enough pass phrase 42"
EMAIL = "dr.rater@example.org"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}


class Recorder:
    """Every request (in order) and every response (with body) the browser saw."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, url, post data)
        self.responses: list[Captured] = []

    def attach(self, page) -> None:
        page.on("request", lambda r: self.requests.append((r.method, r.url, r.post_data or "")))
        page.on("response", self._response)

    def _response(self, response) -> None:
        try:
            body = response.body()
        except Exception:  # redirects carry no body
            body = b""
        self.responses.append(
            Captured(
                url=response.url,
                status=response.status,
                headers=response.all_headers(),
                body=body,
                method=response.request.method,
                request_body=response.request.post_data or "",
            )
        )

    def answer_posts(self) -> list[dict]:
        return [
            json.loads(body) for method, url, body in self.requests if method == "POST" and "/answers" in url
        ]


def build_study(*, n_items: int = 12, n_tutorial: int = 2, **config):
    quokka = ConditionFactory(code="QZA", name="Quokka dermatosis")
    wombat = ConditionFactory(code="WBN", name="Wombat naevus")
    per_kind = (n_items + n_tutorial) // 2 + 1
    for i in range(per_kind):
        for kind, shade in ((Image.Kind.REAL, 40), (Image.Kind.SYNTHETIC, 160)):
            ImageFactory(
                kind=kind,
                condition=quokka if i % 2 else wombat,
                width=64,
                height=64,
                file=ContentFile(png_bytes((shade + i * 5, 120, 200 - i * 7), size=64), name="x.png"),
                # What the leak scan looks for: none of it may reach the browser.
                provenance={
                    "batch": 7,
                    "index": i,
                    "seed": 90210 + i,
                    "checkpoint_sha256": f"{i:02d}c0ffee" * 8,
                    "generator_version": "dermgan-0.1",
                }
                if kind == Image.Kind.SYNTHETIC
                else {"dataset": "pad-ufes-20", "source_file": f"PAT_{1500 + i}_1765_530.png"},
            )
    study = services.study_create(
        owner=ResearcherFactory(),
        title="Browser study",
        config={
            "n_real": n_items // 2,
            "n_synthetic": n_items // 2,
            "n_tutorial": n_tutorial,
            "repeat_fraction": 0.0,
            "show_score": True,
            "questions": {"confidence": True, "diagnosis": True, "comment": True},
            **config,
        },
    )
    services.study_open(study=study)
    return study


def wait_shown(page, token: str) -> None:
    """Wait until the page has painted the image of presentation ``token``."""
    page.wait_for_function(
        "want => document.getElementById('rate-app').dataset.shownToken === want", arg=token
    )


def judgments(assignment) -> int:
    return Judgment.objects.filter(presentation__assignment=assignment).count()


def test_a_rater_joins_does_the_tutorial_and_rates_a_study_with_the_keyboard_only(
    chromium_browser, live_server, tmp_path: Path
):
    study = build_study()
    [invite_token] = services.invitation_create(study=study, count=1)
    recorder = Recorder()
    desktop = chromium_browser.new_context(viewport=DESKTOP)
    page = desktop.new_page()
    page.set_default_timeout(10_000)
    recorder.attach(page)
    page.on("console", lambda m: print("CONSOLE", m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", e))

    # --- invitation, registration, consent, instructions
    page.goto(f"{live_server.url}/invite/{invite_token}/")
    page.get_by_label("Name").fill("Dr Rater")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Role").select_option("dermatologist")
    page.get_by_label("Years of clinical experience").fill("12")
    page.get_by_role("button", name="Create account and continue").click()
    page.get_by_label("I have read the text above and agree to take part.").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Start rating").click()
    page.wait_for_url(f"**/rate/{study.pk}/")

    assignment = study.assignments.get(rater__email=EMAIL)
    assert assignment.rater.rater_profile.role == "dermatologist"
    order = list(Presentation.objects.filter(assignment=assignment).order_by("position"))
    tutorial = [p for p in order if p.is_tutorial]
    items = [p for p in order if not p.is_tutorial]
    assert (len(tutorial), len(items)) == (2, 12)
    assert order[:2] == tutorial, "the tutorial comes first"

    wait_shown(page, tutorial[0].public_token)
    # Every control is labelled: these role+name lookups are what assistive technology uses.
    for role, name in [
        ("button", "Real"),
        ("button", "Synthetic"),
        ("button", "Zoom the image (Z)"),
        ("combobox", "Diagnosis"),
        ("textbox", "Comment"),
        ("button", "Submit"),
        ("radio", "3"),
    ]:
        assert page.get_by_role(role, name=name).count() == 1, (role, name)

    # --- tutorial: answer, see the truth, continue with Enter
    for p in tutorial:
        wait_shown(page, p.public_token)
        assert page.locator("#progress-text").inner_text().startswith("Tutorial example")
        page.keyboard.press("s")
        page.keyboard.press("Enter")
        page.locator("#feedback-panel").wait_for(state="visible")
        truth = "synthetic" if p.item.image.kind == Image.Kind.SYNTHETIC else "real"
        assert f"This image is {truth}" in page.locator("#feedback-text").inner_text()
        page.keyboard.press("Enter")
    assert TutorialAnswer.objects.filter(presentation__assignment=assignment).count() == 2
    assert judgments(assignment) == 0, "tutorial answers stay out of the study data"

    expected: dict[str, dict] = {}

    def answer(index: int, keys: list[str], *, says_synthetic: bool, **fields) -> None:
        """Wait for item ``index``, check the progress line, press ``keys`` ("type:..." types text)."""
        wait_shown(page, items[index].public_token)
        assert page.locator("#progress-text").inner_text() == f"{index + 1} of 12"
        for key in keys:
            if key.startswith("type:"):
                page.keyboard.type(key[5:])
            else:
                page.keyboard.press(key)
        expected[items[index].public_token] = {"says_synthetic": says_synthetic, **fields}

    # --- study items, keyboard only
    wait_shown(page, items[0].public_token)
    page.keyboard.press("d")
    page.keyboard.type("n")
    page.screenshot(path=str(tmp_path / "rating-desktop.png"))
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")  # closes the list
    page.keyboard.press("Escape")  # leaves the field
    answer(0, ["r", "Shift+Digit4", "Enter"], says_synthetic=False, confidence=4)
    answer(1, ["2", "d", "type:quok", "Enter", "Enter"], says_synthetic=True, diagnosis="QZA")
    answer(
        2,
        ["s", "Shift+Digit1", "/", "type:uns", "Enter", "Escape", "c", "type:blurry edge", "Enter"],
        says_synthetic=True,
        confidence=1,
        unsure=True,
        comment="blurry edge",
    )
    answer(3, ["1", "s", "Enter"], says_synthetic=True)  # changed its mind: the last choice counts
    answer(4, ["r", "Enter"], says_synthetic=False)

    # --- reload mid-way: resumes at item 6
    wait_shown(page, items[5].public_token)
    page.reload()
    wait_shown(page, items[5].public_token)
    assert page.locator("#progress-text").inner_text() == "6 of 12"
    assert judgments(assignment) == 5

    # --- the same rater on a phone: resumes there, the layout fits, touch works
    phone = chromium_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    mobile = phone.new_page()
    mobile.set_default_timeout(10_000)
    recorder.attach(mobile)
    mobile.goto(f"{live_server.url}/accounts/login/?next=/rate/{study.pk}/")
    mobile.get_by_label("Username").fill(EMAIL)
    mobile.get_by_label("Password").fill(PASSWORD)
    mobile.get_by_role("button", name="Log in").click()
    wait_shown(mobile, items[5].public_token)
    screenshot = tmp_path / "rating-phone.png"
    mobile.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000, "a real rendering, not a blank page"
    assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    image_box = mobile.locator("#item-image").bounding_box()
    assert image_box["width"] >= 0.6 * PHONE["width"], "the image uses the phone's width"
    for selector in ("#choose-real", "#choose-synthetic", "#submit-button"):
        box = mobile.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (
            f"{selector} is on the first screen"
        )
        assert box["height"] >= 44, f"{selector} is a comfortable touch target"
    phone.close()  # (touch answering is covered on the tablet below; this rater stays on the keyboard)

    answer(5, ["s", "Enter"], says_synthetic=True)

    # --- double Enter: one judgment
    answer(6, ["s", "Enter", "Enter"], says_synthetic=True)
    wait_shown(page, items[7].public_token)
    assert judgments(assignment) == 7
    # --- Enter pressed twice from the comment field: one judgment
    answer(7, ["r", "c", "type:twice", "Enter", "Enter"], says_synthetic=False, comment="twice")
    wait_shown(page, items[8].public_token)
    assert judgments(assignment) == 8

    # --- the connection drops after the server recorded the answer: the retry replays it
    dropped = []

    def drop_first_response(route) -> None:
        if not dropped:
            dropped.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/answers", drop_first_response)
    answer(8, ["s", "Enter"], says_synthetic=True)
    wait_shown(page, items[9].public_token)
    page.unroute("**/answers")
    assert dropped == [201]
    assert judgments(assignment) == 9
    posts = [p for p in recorder.answer_posts() if p["token"] == items[8].public_token]
    assert len(posts) == 2 and posts[0]["client_key"] == posts[1]["client_key"]

    # --- the connection is down: the answer waits in localStorage, survives a reload, is sent
    page.route("**/answers", lambda route: route.abort("internetdisconnected"))
    answer(9, ["r", "Enter"], says_synthetic=False)
    page.get_by_text("Connection problem").wait_for()
    pending = json.loads(page.evaluate(f"localStorage.getItem('dermgan.pending.{study.pk}')"))
    assert pending["token"] == items[9].public_token
    assert judgments(assignment) == 9
    page.unroute("**/answers")
    page.reload()
    wait_shown(page, items[10].public_token)
    assert page.evaluate(f"localStorage.getItem('dermgan.pending.{study.pk}')") is None
    assert str(Judgment.objects.get(presentation=items[9]).client_key) == pending["client_key"]

    # --- every control is reachable with Tab, in order, up to Submit (enabled once a choice is made)
    wait_shown(page, items[10].public_token)
    page.keyboard.press("r")
    reached = []
    while "submit-button" not in reached and len(reached) < 12:
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
    assert reached == [
        "zoom-button",
        "choose-real",
        "choose-synthetic",
        "confidence",
        "diagnosis-input",
        "comment-input",
        "submit-button",
    ]
    answer(10, ["s", "Enter"], says_synthetic=True)  # S changes the choice; Enter on Submit submits

    # --- zoom with Z, close with Esc; then the last item
    wait_shown(page, items[11].public_token)
    page.keyboard.press("z")
    assert "zoomed" in page.get_attribute("#stage", "class")
    page.keyboard.press("Escape")
    assert "zoomed" not in page.get_attribute("#stage", "class")
    answer(11, ["r", "Enter"], says_synthetic=False)
    page.locator("#view-finished").wait_for(state="visible")
    assert "All done" in page.locator("#finished-heading").inner_text()
    assert "Correct" in page.locator("#score").inner_text()

    # --- what the database holds
    rows = {
        j.presentation.public_token: j
        for j in Judgment.objects.filter(presentation__assignment=assignment).select_related(
            "presentation", "diagnosis"
        )
    }
    assert len(rows) == 12 and set(rows) == {p.public_token for p in items}
    for tok, want in expected.items():
        j = rows[tok]
        assert j.says_synthetic is want["says_synthetic"], tok
        assert j.confidence == want.get("confidence"), tok
        assert (j.diagnosis.code if j.diagnosis else None) == want.get("diagnosis"), tok
        assert j.diagnosis_unsure is want.get("unsure", False), tok
        assert j.comment == want.get("comment", ""), tok
        assert 0 < j.response_ms < 60_000, "measured in the browser from image shown to answer"

    # --- prefetch: every item's image was requested before the previous answer was sent
    log = recorder.requests
    for previous, item in zip(order, order[1:]):
        image_at = next(i for i, (m, url, _) in enumerate(log) if url.endswith(f"/img/{item.public_token}"))
        answer_at = next(
            i for i, (m, url, body) in enumerate(log) if m == "POST" and previous.public_token in body
        )
        assert image_at < answer_at, f"image of position {item.position} was prefetched"

    # --- blinding: nothing the browser received tells real from synthetic
    assert sum("/img/" in r.url for r in recorder.responses) >= 14
    truth = study_truth(study)
    findings = scan(recorder.responses, truth)
    assert findings == [], "\n".join(map(str, findings))
    # ... and the same scan does see a label slipped into one of the real responses.
    state = next(r for r in recorder.responses if r.url.endswith("/state"))
    doc = json.loads(state.body)
    doc["item"]["kind"] = next(i.kind for i in truth.items if i.token == doc["item"]["token"])
    assert scan([replace(state, body=json.dumps(doc).encode())], truth)
    desktop.close()


def session_cookie(live_server, user) -> dict:
    """A logged-in session for ``user`` made server-side (faster than the login form), as a cookie."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"name": "sessionid", "value": session.session_key, "url": live_server.url}


def logged_in_page(browser, live_server, user, **context_options):
    context = browser.new_context(viewport=DESKTOP, **context_options)
    context.add_cookies([session_cookie(live_server, user)])
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    return context, page


def test_the_image_hides_after_the_exposure_limit_and_a_closed_study_stops_the_page(
    chromium_browser, live_server
):
    study = build_study(n_items=4, n_tutorial=0, exposure_ms=400)
    rater = RaterFactory()
    [invite_token] = services.invitation_create(study=study, count=1)
    assignment = services.invitation_accept(token=invite_token, user=rater)
    services.assignment_consent(assignment=assignment)
    items = list(Presentation.objects.filter(assignment=assignment).order_by("position"))
    context, page = logged_in_page(chromium_browser, live_server, rater)
    recorder = Recorder()
    recorder.attach(page)

    page.goto(f"{live_server.url}/rate/{study.pk}/")
    wait_shown(page, items[0].public_token)
    page.locator("#exposure-note").wait_for(state="visible")
    assert page.locator("#item-image").is_hidden()
    page.keyboard.press("z")
    assert "zoomed" not in page.get_attribute("#stage", "class"), "nothing to zoom once hidden"

    # A diagnosis that is not in the list is refused in the page: nothing is sent, nothing lost.
    page.keyboard.press("s")
    page.keyboard.press("d")
    page.keyboard.type("zzz")
    assert page.locator("#diagnosis-list").inner_text() == "No match"
    page.keyboard.press("Enter")
    page.get_by_text("Pick a diagnosis from the list").wait_for()
    assert recorder.answer_posts() == [] and judgments(assignment) == 0
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    wait_shown(page, items[1].public_token)
    first = Judgment.objects.get(presentation=items[0])
    assert first.says_synthetic is True and first.diagnosis is None
    # The choice came after the 400 ms exposure had run out: the clock starts when the image is shown.
    assert 400 <= first.response_ms < 30_000

    # The session ends before the answer is sent: it is kept, and sent once the rater is back.
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    page.locator("#view-error").wait_for(state="visible")
    assert page.locator("#error-heading").inner_text() == "Please log in again"
    assert page.get_attribute("#error-action", "href") == f"/accounts/login/?next=%2Frate%2F{study.pk}%2F"
    assert json.loads(page.evaluate(f"localStorage.getItem('dermgan.pending.{study.pk}')"))["token"] == (
        items[1].public_token
    )
    context.add_cookies([session_cookie(live_server, rater)])
    page.goto(f"{live_server.url}/rate/{study.pk}/")
    wait_shown(page, items[2].public_token)
    assert Judgment.objects.get(presentation=items[1]).says_synthetic is False

    # The study closes while the rater works: the next answer gets a clear message, not a retry loop.
    services.study_close(study=study)
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    page.locator("#view-error").wait_for(state="visible")
    assert page.locator("#error-heading").inner_text() == "This study is closed"
    assert page.evaluate(f"localStorage.getItem('dermgan.pending.{study.pk}')") is None
    assert judgments(assignment) == 2
    context.close()


def test_on_a_tablet_in_an_editable_study_b_reopens_the_previous_item_to_change_its_answer(
    chromium_browser, live_server, tmp_path: Path
):
    study = build_study(n_items=4, n_tutorial=0, answers_editable=True)
    rater = RaterFactory()
    [invite_token] = services.invitation_create(study=study, count=1)
    assignment = services.invitation_accept(token=invite_token, user=rater)
    services.assignment_consent(assignment=assignment)
    items = list(Presentation.objects.filter(assignment=assignment).order_by("position"))
    context, page = logged_in_page(chromium_browser, live_server, rater, has_touch=True)
    page.set_viewport_size(TABLET)

    page.goto(f"{live_server.url}/rate/{study.pk}/")
    wait_shown(page, items[0].public_token)
    assert page.locator("#back-button").is_hidden(), "nothing to go back to yet"
    for selector in ("#item-image", "#choose-real", "#choose-synthetic", "#submit-button"):
        box = page.locator(selector).bounding_box()
        assert box["x"] + box["width"] <= TABLET["width"] and box["y"] + box["height"] <= TABLET["height"], (
            selector
        )
    page.screenshot(path=str(tmp_path / "rating-tablet.png"))
    # Touch: tap Real and confidence 2, then a double click on Submit records one judgment.
    page.tap("#choose-real")
    page.tap("label:has(input[name=confidence][value='2'])")
    page.dblclick("#submit-button")
    wait_shown(page, items[1].public_token)
    assert judgments(assignment) == 1
    page.keyboard.press("b")
    wait_shown(page, items[0].public_token)
    assert page.locator("#progress-text").inner_text() == "Changing your previous answer"
    assert page.get_attribute("#choose-real", "aria-pressed") == "true", "the previous answer is filled in"
    assert page.locator("input[name=confidence][value='2']").is_checked()
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    wait_shown(page, items[1].public_token)
    assert page.locator("#progress-text").inner_text() == "2 of 4"
    changed = Judgment.objects.get(presentation=items[0])
    assert (changed.says_synthetic, changed.confidence, changed.revision) == (True, 2, 2)
    assert judgments(assignment) == 1

    page.keyboard.press("b")
    wait_shown(page, items[0].public_token)
    page.keyboard.press("b")  # and back to the current image, nothing changed
    wait_shown(page, items[1].public_token)
    assert Judgment.objects.get(presentation=items[0]).revision == 2

    # Click to zoom and back: focus stays on the image, yet Enter after a choice submits.
    page.click("#zoom-button")
    assert "zoomed" in page.get_attribute("#stage", "class")
    page.click("#zoom-button")
    assert "zoomed" not in page.get_attribute("#stage", "class")
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    wait_shown(page, items[2].public_token)
    assert judgments(assignment) == 2
    context.close()
