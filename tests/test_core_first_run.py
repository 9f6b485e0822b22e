"""First run: `make demo` follows HOST/PORT (and SITE_URL with them), and the site has a favicon."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.factories import AdminFactory

ROOT = Path(__file__).resolve().parent.parent


def _demo_commands(*args: str) -> list[str]:
    # -n prints the recipe without running it (the install step included).
    env = {
        k: v for k, v in os.environ.items() if k not in ("SITE_URL", "DJANGO_ALLOWED_HOSTS", "HOST", "PORT")
    }
    result = subprocess.run(
        ["make", "-n", "demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in result.stdout.splitlines() if "manage.py" in line]


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
def test_make_demo_listens_on_port_and_host_and_prints_links_that_match():
    migrate, seed, serve = _demo_commands("PORT=8123", "HOST=localhost")
    assert serve.endswith("runserver localhost:8123")
    assert "SITE_URL=http://localhost:8123" in seed and "SITE_URL=http://localhost:8123" in migrate
    assert "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,localhost" in serve


@needs_make
def test_make_demo_on_all_interfaces_prints_loopback_links_and_defaults_to_8000():
    *_, serve = _demo_commands("HOST=0.0.0.0")
    assert serve.endswith("runserver 0.0.0.0:8000") and "SITE_URL=http://127.0.0.1:8000" in serve
    *_, default = _demo_commands()
    assert default.endswith("runserver 127.0.0.1:8000")


def test_the_favicon_is_a_static_icon_served_at_favicon_ico_too(client):
    path = finders.find("favicon.ico")
    assert path and Path(path).read_bytes()[:4] == b"\x00\x00\x01\x00"  # an ICO file
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.ico")
    assert "max-age=86400" in response["Cache-Control"]


@pytest.mark.django_db
def test_site_and_admin_pages_link_the_favicon(client):
    assert '<link rel="icon" href="/static/favicon.ico">' in client.get(reverse("home")).content.decode()
    client.force_login(AdminFactory())
    admin_html = client.get(reverse("admin:index")).content.decode()
    assert '<link rel="icon" href="/static/favicon.ico">' in admin_html
    assert "Django administration" in admin_html  # still Django's own base_site underneath
