"""Evaluation tasks: thin, idempotent (call twice), and really run by a worker through the broker."""

from __future__ import annotations

import time

import pytest

from tests.evaluation_data import batch_with_images, real_images
from turingtest.evaluation import services, tasks
from turingtest.evaluation.models import AugmentationRun, FidelityRun

FAST = {
    "kid_subsets": 5,
    "classifier_image_size": 32,
    "classifier_width": 4,
    "classifier_depth": 2,
    "classifier_epochs": 1,
}


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """These tiny networks run faster on one thread (tests/conftest.py)."""


@pytest.mark.django_db
def test_calling_the_fidelity_task_twice_computes_once():
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 4})
    run = services.fidelity_run_create(batch=batch, config=FAST, enqueue=False)
    assert tasks.compute_fidelity(run_pk=run.pk) == "succeeded"
    first = FidelityRun.objects.get(pk=run.pk)
    assert tasks.compute_fidelity(run_pk=run.pk) == "succeeded"
    second = FidelityRun.objects.get(pk=run.pk)
    assert (second.started, second.finished, second.results) == (first.started, first.finished, first.results)
    assert first.results["baseline"]["overall"]["n_real"] > 0  # the real-vs-real baseline is stored


@pytest.mark.django_db
def test_calling_the_augmentation_task_twice_trains_once():
    real_images({"MEL": 8, "NEV": 8})
    batch = batch_with_images({"NEV": 4})
    config = {"image_size": 32, "width": 4, "depth": 2, "epochs": 1, "n_seeds": 2, "n_bootstrap": 10}
    run = services.augmentation_run_create(
        synthetic_batches=[batch], conditions=["NEV"], config=config, enqueue=False
    )
    assert tasks.run_augmentation(run_pk=run.pk) == "succeeded"
    first = AugmentationRun.objects.get(pk=run.pk)
    assert tasks.run_augmentation(run_pk=run.pk) == "succeeded"
    second = AugmentationRun.objects.get(pk=run.pk)
    assert (second.finished, second.report_prefix) == (first.finished, first.report_prefix)
    assert first.results["version"] == 2 and first.null_check_passed() is not None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_computes_a_queued_fidelity_run(live_worker):
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 4})
    run = services.fidelity_run_create(batch=batch, config=FAST)  # enqueued after commit
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            break
        time.sleep(0.5)
    assert run.status == FidelityRun.Status.SUCCEEDED, run.error or live_worker.log()
    assert run.results["overall"]["n_fake"] == 4
    assert run.results["baseline"]["overall"]["fid"] is not None


@pytest.mark.django_db
def test_a_dead_broker_marks_the_run_failed_with_the_brokers_message(
    monkeypatch, django_capture_on_commit_callbacks
):
    from turingtest.celery import app

    real_images({"MEL": 2, "NEV": 2})
    batch = batch_with_images({"MEL": 2})
    dead = "redis://127.0.0.1:1/0"  # a closed port; the shared Redis is never touched
    # Celery reads CELERY_BROKER_URL from the environment before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", dead)
    old = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = dead, False
    app.amqp._producer_pool, app._pool = None, None  # connection pools remember the old URL
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.fidelity_run_create(batch=batch)
    finally:
        app.conf.broker_url, app.conf.task_always_eager = old
        app.amqp._producer_pool, app._pool = None, None
    run.refresh_from_db()
    assert run.status == FidelityRun.Status.FAILED
    assert "could not enqueue" in run.error and "refused" in run.error.lower()
