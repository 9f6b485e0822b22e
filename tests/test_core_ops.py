"""The operators page: staff only; workers, waiting tasks and the latest failures; eager mode says so."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import AdminFactory, RaterFactory, ResearcherFactory, UserFactory
from turingtest.core import ops
from turingtest.library.models import ImportJob, MaskJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.delete(ops._WORKERS_KEY)
    yield
    cache.delete(ops._WORKERS_KEY)


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_only_staff_see_the_operators_page():
    assert Client().get("/ops/").status_code == 302  # to the login page
    for user in (RaterFactory(), ResearcherFactory(), UserFactory()):
        assert client_for(user).get("/ops/").status_code == 403
    staff = UserFactory(is_staff=True)
    assert client_for(staff).get("/ops/").status_code == 200
    assert 'href="/ops/"' in client_for(staff).get("/").content.decode()
    assert 'href="/ops/"' not in client_for(RaterFactory()).get("/").content.decode()


def test_in_eager_mode_the_page_says_there_are_no_workers_or_queues():
    page = client_for(AdminFactory()).get("/ops/").content.decode()
    assert "Eager mode" in page and "No background work has failed." in page


def test_the_latest_failure_of_each_kind_is_listed_newest_first_with_its_admin_link():
    ImportJob.objects.create(status="failed", error="older import failure")
    newest_import = ImportJob.objects.create(status="failed", error="bad manifest <b>")
    mask = MaskJob.objects.create(status="failed", error="mask model missing")
    ImportJob.objects.filter(pk=newest_import.pk).update(finished="2026-01-02T00:00:00Z")
    MaskJob.objects.filter(pk=mask.pk).update(finished="2026-01-03T00:00:00Z")
    ImportJob.objects.create(status="succeeded")
    failures = ops.failures_latest()
    assert [f.what for f in failures] == [f"mask job {mask.pk}", f"import job {newest_import.pk}"]
    page = client_for(AdminFactory()).get("/ops/").content.decode()
    assert f'href="/admin/library/importjob/{newest_import.pk}/change/"' in page
    assert "bad manifest &lt;b&gt;" in page and "older import failure" not in page


def test_with_a_broker_workers_and_queue_lengths_are_asked_and_a_down_broker_is_reported(monkeypatch):
    from tests.library_support import broker_down

    with broker_down(monkeypatch):
        page = client_for(AdminFactory()).get("/ops/").content.decode()
        lengths = ops.queue_lengths()
    assert "Eager mode" not in page
    assert "Could not read the queues" in page and "No worker answered" in page
    assert lengths["error"] and lengths["lengths"] == {"default": None, "gpu": None}


@pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
    reason="needs CELERY_BROKER_URL=redis://… (a Redis database of one's own: it is purged)",
)
def test_with_redis_the_waiting_tasks_are_the_queue_lengths(settings):
    from turingtest.celery import app

    settings.OPS_INSPECT_TIMEOUT = 0.2
    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        for name in ops.QUEUES:
            try:
                conn.default_channel.queue_purge(name)
            except Exception:
                pass
    app.send_task("nothing.runs.this", queue="gpu")
    app.send_task("nothing.runs.this", queue="gpu", priority=5)
    app.send_task("nothing.runs.this", queue="default")
    try:
        assert ops.queue_lengths() == {"mode": "broker", "lengths": {"default": 1, "gpu": 2}, "error": ""}
        workers = ops.workers_alive()
        assert workers["mode"] == "broker" and workers["error"] == ""
    finally:
        app.conf.task_always_eager = True
        with app.connection_for_write() as conn:
            for name in ops.QUEUES:
                conn.default_channel.queue_purge(name)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_live_worker_is_listed_with_the_queues_it_consumes(live_worker, settings):
    settings.OPS_INSPECT_TIMEOUT = 3.0  # a loaded machine answers slowly; the page default is 0.5 s
    workers = ops.workers_alive()
    assert workers["error"] == ""
    assert [(w.name.startswith(f"test{os.getpid()}-"), w.queues) for w in workers["workers"]] == [
        (True, ("default", "gpu"))
    ]
    page = client_for(AdminFactory()).get("/ops/").content.decode()
    assert workers["workers"][0].name in page and "default, gpu" in page
    assert ops.queue_lengths()["lengths"] == {"default": 0, "gpu": 0}
