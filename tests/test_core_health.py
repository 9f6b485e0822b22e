"""``/healthz`` (cheap public liveness) and ``/readyz`` (deep probes, cached, details for operators)."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.test import override_settings

from tests.factories import AdminFactory, UserFactory
from tests.library_support import broker_down
from turingtest.core import health

DETAIL_KEYS = {"database", "storage", "static_files", "broker", "workers", "status", "checked_at"}
MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "turingtest.core.staticfiles.ModuleManifestStaticFilesStorage"},
}


@pytest.fixture(autouse=True)
def _fresh_readiness():
    cache.delete_many(["core:readiness:report", "core:readiness:probing"])
    yield
    cache.delete_many(["core:readiness:report", "core:readiness:probing"])


@pytest.fixture
def touched(monkeypatch, settings) -> list[str]:
    """Records every use of the broker, the workers or media storage (and refuses it)."""
    from turingtest.celery import app

    # Not eager, else the probe skips the broker. Celery's conf first: reading it loads it
    # from the Django settings, which must still say eager then, for the tests that follow.
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    calls: list[str] = []

    def refuse(what: str):
        def _refuse(*args, **kwargs):
            calls.append(what)
            raise RuntimeError(f"{what} touched")

        return _refuse

    monkeypatch.setattr(app, "connection_for_write", refuse("broker"))
    monkeypatch.setattr(app.control, "ping", refuse("worker ping"))
    monkeypatch.setattr(default_storage, "save", refuse("storage write"))
    return calls


# --- /healthz -------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_touches_neither_broker_workers_nor_storage(client, touched):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert touched == []


@pytest.mark.django_db
def test_healthz_answers_in_milliseconds_with_the_broker_down(client, monkeypatch, settings):
    with broker_down(monkeypatch):
        settings.CELERY_TASK_ALWAYS_EAGER = False  # inside: broker_down has loaded Celery's conf
        client.get("/healthz")  # first request: URL resolver and middleware warm-up
        started = time.perf_counter()
        response = client.get("/healthz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 0.5, f"/healthz took {elapsed:.2f} s"  # the old deep probe waited ≥ 1 s here


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: {"ok": False, "error": "down"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}  # no driver message for anonymous callers


# --- /readyz --------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_tells_an_anonymous_caller_only_the_status(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_shows_each_probe_to_staff(client):
    client.force_login(AdminFactory())
    body = client.get("/readyz").json()
    assert set(body) == DETAIL_KEYS
    assert body["database"]["ok"] and body["storage"]["ok"] and body["static_files"]["ok"]
    assert body["broker"] == {"ok": True, "mode": "eager"}


@pytest.mark.django_db
def test_readyz_shows_details_for_the_configured_token_only(client, settings):
    settings.READINESS_TOKEN = "s3cret-monitor-token"
    assert set(client.get("/readyz", HTTP_X_READINESS_TOKEN="s3cret-monitor-token").json()) == DETAIL_KEYS
    assert client.get("/readyz", HTTP_X_READINESS_TOKEN="wrong").json() == {"status": "ok"}
    client.force_login(UserFactory())  # logged in, but not staff
    assert client.get("/readyz").json() == {"status": "ok"}
    settings.READINESS_TOKEN = ""  # no token configured: an empty header must not match
    assert client.get("/readyz", HTTP_X_READINESS_TOKEN="").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_storage_is_down_and_names_the_cause_to_staff(client, monkeypatch):
    monkeypatch.setattr(health, "check_storage", lambda: {"ok": False, "error": "disk full"})
    assert client.get("/readyz").status_code == 503
    cache.delete("core:readiness:report")
    client.force_login(AdminFactory())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["storage"] == {"ok": False, "error": "disk full"}


@pytest.mark.django_db
def test_readyz_probes_at_most_once_per_cache_period(client, touched, settings):
    settings.READINESS_CACHE_SECONDS = 60
    for _ in range(5):
        assert client.get("/readyz").status_code == 503  # `touched` refuses the storage write
    assert touched == ["broker", "storage write"]  # one probe for five requests
    cache.set("core:readiness:report", {**cache.get("core:readiness:report"), "checked_at": time.time() - 61})
    client.get("/readyz")
    assert touched == ["broker", "storage write"] * 2


@pytest.mark.django_db
def test_while_one_request_probes_the_others_get_the_previous_answer(client, touched, settings):
    settings.READINESS_CACHE_SECONDS = 5
    client.get("/readyz")
    cache.set("core:readiness:report", {**cache.get("core:readiness:report"), "checked_at": time.time() - 6})
    cache.add("core:readiness:probing", True)  # another web process is probing right now
    assert client.get("/readyz").status_code == 503  # the previous answer, not a new probe
    assert touched == ["broker", "storage write"]


@pytest.mark.django_db
def test_readyz_reports_a_missing_static_manifest_with_what_to_run(client, tmp_path):
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        assert client.get("/readyz").status_code == 503
        cache.delete("core:readiness:report")
        client.force_login(AdminFactory())
        static = client.get("/readyz").json()["static_files"]
    assert static["ok"] is False
    assert str(tmp_path / "staticfiles.json") in static["error"]
    assert "manage.py collectstatic" in static["error"]


@pytest.mark.django_db
def test_readyz_is_ready_once_the_manifest_is_there(client, tmp_path):
    manifest = {"version": "1.1", "hash": "abc", "paths": {"css/site.css": "css/site.0123abcd.css"}}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        assert client.get("/readyz").status_code == 200


def test_a_manifest_written_after_the_process_started_asks_for_a_restart(tmp_path):
    from django.contrib.staticfiles.storage import staticfiles_storage

    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        assert not staticfiles_storage.hashed_files  # the process loaded no manifest
        (tmp_path / "staticfiles.json").write_text(
            json.dumps({"version": "1.1", "paths": {"a.css": "a.1.css"}})
        )
        result = health.check_static_files()
    assert result == {
        "ok": False,
        "error": f"{tmp_path}/staticfiles.json appeared after this process started: restart the web server",
    }
