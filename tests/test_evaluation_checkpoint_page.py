"""A checkpoint's admin page lists the fidelity runs of its batches, beside the real-vs-real
baseline when the run has one, with a link that computes a new run for each batch."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.evaluation_data import batch_with_images, real_images
from tests.factories import AdminFactory
from turingtest.evaluation import runs, services
from turingtest.evaluation.models import FidelityRun

pytestmark = pytest.mark.django_db
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


def _page(client, checkpoint) -> str:
    client.force_login(AdminFactory())
    page = client.get(reverse("admin:library_generatorcheckpoint_change", args=[checkpoint.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_the_checkpoint_page_lists_its_batches_fidelity_runs_and_a_compute_link(client):
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    html = _page(client, batch.checkpoint)
    assert "no fidelity run yet" in html
    assert reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}" in html
    run = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, config=FAST, enqueue=False).pk
    )
    assert run.status == FidelityRun.Status.SUCCEEDED
    html = _page(client, batch.checkpoint)
    assert reverse("admin:evaluation_fidelityrun_change", args=[run.pk]) in html
    assert f"FID {run.overall()['fid']:.3g}" in html and "12 real / 10 synthetic" in html
    # A run with the real-vs-real baseline shows it beside each number.
    results = {**run.results, "baseline": {"overall": {"fid": 4.25, "kid_mean": 0.0125}}}
    FidelityRun.objects.filter(pk=run.pk).update(results=results)
    html = _page(client, batch.checkpoint)
    assert "(real vs real: 4.25)" in html and "(real vs real: 0.0125)" in html


def test_a_checkpoint_without_batches_says_so(client):
    batch = batch_with_images({"MEL": 2})
    checkpoint = batch.checkpoint
    batch.images.all().delete()
    batch.delete()
    assert "no batch rendered from this checkpoint yet" in _page(client, checkpoint)
