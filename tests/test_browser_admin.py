"""The admin's journey in Debian's Chromium: thumbnails load on the image list, and an image in an
open study shows its ground truth read-only, with the reason, under the site's strict CSP."""

from __future__ import annotations

import pytest

from tests import browser_conftest
from tests.factories import AdminFactory, open_study
from tests.test_browser_rating import session_cookie
from turingtest.library.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
chromium_browser = browser_conftest.chromium_browser


def test_an_admin_sees_thumbnails_and_cannot_relabel_an_image_of_an_open_study(
    chromium_browser, live_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = open_study(n_real=2, n_synthetic=2)
    in_study = Image.objects.filter(study_items__study=study).first()
    context = chromium_browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_cookies([session_cookie(live_server, AdminFactory(username="dr.library"))])
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP refusals

    page.goto(f"{live_server.url}/admin/library/image/")
    thumbs = page.locator("img.library-thumb")
    assert thumbs.count() == Image.objects.count()
    page.wait_for_function(
        "[...document.querySelectorAll('img.library-thumb')].every(i => i.complete && i.naturalWidth === 128)"
    )
    assert thumbs.first.evaluate("i => getComputedStyle(i).width") == "64px"  # the static stylesheet

    page.goto(f"{live_server.url}/admin/library/image/{in_study.pk}/change/")
    note = page.locator("[data-ground-truth-locked]")
    assert note.is_visible() and study.title in note.inner_text() and "read-only" in note.inner_text()
    for field in ("kind", "condition", "fitzpatrick"):
        assert page.locator(f'[name="{field}"]').count() == 0
    assert page.locator('[name="patient_id"]').is_editable()
    page.wait_for_function("document.querySelector('img.library-picture').naturalWidth === 512")
    assert errors == []
    context.close()
