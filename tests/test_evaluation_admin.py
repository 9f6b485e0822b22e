"""Evaluation admin: read-only run records, add pages that start runs, and the batch-page inline/action."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse
from django.utils.html import escape

from tests.evaluation_data import batch_with_images, real_images
from tests.factories import AdminFactory
from turingtest.evaluation import runs, services
from turingtest.evaluation.admin import FidelityRunInline, compute_fidelity_for_batches, compute_fidelity_link
from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.library.admin import GenerationBatchAdmin
from turingtest.library.models import GenerationBatch

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


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def test_a_finished_fidelity_run_shows_its_results_table_and_feature_space(admin_client):
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    run = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, config=FAST, enqueue=False).pk
    )
    page = admin_client.get(reverse("admin:evaluation_fidelityrun_change", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert run.extractor_sha256 in html and "precision" in html and "NEV" in html
    # the real-vs-real baseline: its method, and a row under overall and under each condition
    baseline = run.result().baseline
    assert "two disjoint halves of the real set, split by patient" in html
    assert html.count("<em>real vs real</em>") == 1 + len(run.results["per_condition"])
    assert f"<td>{baseline.overall.fid:.4g}</td>" in html
    assert "(bootstrap)" in html  # how the KID std was computed
    assert "warning:</strong> only 6 real and 5 synthetic images (&lt; 20)" in html
    assert "FID: synthetic vs real (dark) beside real vs real (light)" in html  # the bar chart
    listing = admin_client.get(reverse("admin:evaluation_fidelityrun_changelist")).content.decode()
    assert f"{run.result().overall.fid:.4g}" in listing and f"{baseline.overall.fid:.4g}" in listing


def test_the_add_page_queues_a_fidelity_run_for_a_batch(admin_client, django_capture_on_commit_callbacks):
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 4})
    page = admin_client.get(reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}")
    assert page.status_code == 200
    assert (
        f'<option value="{batch.pk}" selected>' in page.content.decode()
    )  # the batch page's link preselects
    assert f"?batch={batch.pk}" in compute_fidelity_link(batch)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:evaluation_fidelityrun_add"),
            {"batch": batch.pk, "extractor": "classifier:auto", "seed": 0, "real_filter": "condition=MEL"},
        )
    run = FidelityRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    assert run.batch == batch and run.real_filter == {"condition": ["MEL"]} and len(callbacks) == 1


def test_the_add_page_shows_a_form_error_instead_of_creating_an_empty_run(admin_client):
    batch = batch_with_images({"MEL": 2})
    response = admin_client.post(
        reverse("admin:evaluation_fidelityrun_add"),
        {"batch": batch.pk, "extractor": "classifier:auto", "seed": 0},
    )
    assert response.status_code == 200 and "no real images" in response.content.decode()
    assert not FidelityRun.objects.exists()


@pytest.mark.django_db(transaction=True)  # commits as the admin does: the eager task runs before the message
def test_the_batch_admin_action_and_inline_show_a_batchs_fidelity():
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    request = RequestFactory().post("/")
    request.user = AdminFactory()
    request.session = {}
    request._messages = FallbackStorage(request)
    batch_admin = GenerationBatchAdmin(GenerationBatch, admin.site)
    compute_fidelity_for_batches(batch_admin, request, GenerationBatch.objects.filter(pk=batch.pk))
    run = FidelityRun.objects.get()
    assert run.status == FidelityRun.Status.SUCCEEDED, run.error  # eager tasks in tests
    (message,) = [str(m) for m in request._messages]
    # What happened, with a link to the result: not "Queued" for a run that already finished.
    assert f'<a href="{reverse("admin:evaluation_fidelityrun_change", args=[run.pk])}">' in message
    assert " finished in " in message and "queued" not in message.lower()

    inline = FidelityRunInline(GenerationBatch, admin.site)
    formset = inline.get_formset(request, batch)(instance=batch)
    assert [form.instance.pk for form in formset.forms] == [run.pk]
    result = run.result()
    assert inline.fid(run) == f"{result.overall.fid:.4g} ({result.baseline.overall.fid:.4g})"
    assert (
        inline.kid(run).endswith("(bootstrap))") and inline.warnings(run) == "5"
    )  # 2 conditions; baseline: overall + 2
    assert inline.extractor_short(run) == run.extractor_sha256[:12]


def test_a_finished_augmentation_run_shows_its_arms_headline_null_check_and_plots(admin_client):
    real_images({"MEL": 8, "NEV": 8, "VASC": 4})
    batch = batch_with_images({"VASC": 4})
    run = runs.augmentation_run_execute(
        run_pk=services.augmentation_run_create(
            synthetic_batches=[batch],
            config={"image_size": 32, "width": 4, "depth": 2, "epochs": 1, "n_seeds": 2, "n_bootstrap": 20},
            enqueue=False,
        ).pk
    )
    assert run.status == AugmentationRun.Status.SUCCEEDED, run.error
    report = run.results
    html = admin_client.get(
        reverse("admin:evaluation_augmentationrun_change", args=[run.pk])
    ).content.decode()
    assert "Headline: synthetic vs the best non-synthetic arm" in html
    assert escape(report["headline"]["claim"]) in html
    verdict = "passed" if report["null_check"]["passed"] else "FAILED"
    assert f"Null check: copies vs oversample —\n      {verdict}" in html
    assert escape(report["null_check"]["meaning"]) in html
    for arm in report["arms"]:
        assert f"<tr><td>{arm}</td>" in html  # the arms table
    assert "sensitivity VASC (rare, +synthetic)" in html and "McNemar" not in html
    assert "synthetic − baseline" in html  # a paired comparison

    # plots and files are served through the admin, to staff only, and only the report's own
    for rel in ("plots/arms.png", "plots/sensitivity.png", "plots/headline.png", "report.html"):
        url = reverse("admin:evaluation_augmentationrun_file", args=[run.pk, rel])
        assert url in html, rel
        response = admin_client.get(url)
        assert response.status_code == 200, rel
        body = b"".join(response.streaming_content)
        assert body.startswith(b"\x89PNG") if rel.endswith(".png") else b"<html" in body
    model = reverse("admin:evaluation_augmentationrun_file", args=[run.pk, "models/synthetic-seed0.pt"])
    assert model in html and admin_client.get(model).status_code == 200
    other = reverse("admin:evaluation_augmentationrun_file", args=[run.pk, "../../secret.txt"])
    assert admin_client.get(other).status_code == 404

    listing = admin_client.get(reverse("admin:evaluation_augmentationrun_changelist")).content.decode()
    head = report["headline"]["difference"]
    assert f"{head['value']:+.3f} [{head['ci_low']:.3f}, {head['ci_high']:.3f}]" in listing
    assert admin_client.get(reverse("admin:evaluation_augmentationrun_add")).status_code == 200
    assert "css/evaluation-admin.css" in html  # the CSP forbids inline styles

    # a failed null check is said so, and the headline box makes no claim
    report["null_check"].update(passed=False, significant_gain=True)
    AugmentationRun.objects.filter(pk=run.pk).update(results=report)
    page = admin_client.get(
        reverse("admin:evaluation_augmentationrun_change", args=[run.pk])
    ).content.decode()
    assert "Null check: copies vs oversample —\n      FAILED" in page
    assert "No claim: the null check failed, so this setup credits noise." in page
    admin_client.logout()
    assert admin_client.get(url).status_code == 302  # to the admin login


def test_an_augmentation_run_from_before_version_2_is_shown_as_its_json(admin_client):
    run = AugmentationRun.objects.create(
        status=AugmentationRun.Status.SUCCEEDED,
        results={"arms": {"real_only": {}, "augmented": {}}, "comparison": {}},
    )
    html = admin_client.get(
        reverse("admin:evaluation_augmentationrun_change", args=[run.pk])
    ).content.decode()
    assert "earlier version of the experiment" in html and "real_only" in html
    listing = admin_client.get(reverse("admin:evaluation_augmentationrun_changelist")).content.decode()
    assert "– (old report)" in listing


def test_the_generation_batch_page_lists_its_fidelity_runs_and_offers_to_compute_them(admin_client):
    real_images({"MEL": 2})
    batch = batch_with_images({"MEL": 2})
    services.fidelity_run_create(batch=batch, config=FAST, enqueue=False)
    page = admin_client.get(reverse("admin:library_generationbatch_change", args=[batch.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Compute fidelity metrics" in html
    assert reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}" in html
    assert "fidelity run" in html.lower()
    assert compute_fidelity_for_batches in GenerationBatchAdmin.actions


def test_the_augmentation_add_page_queues_a_run_or_says_what_is_missing(
    admin_client, django_capture_on_commit_callbacks
):
    real_images({"MEL": 4, "NEV": 4})
    batch = batch_with_images({"MEL": 4})
    url = reverse("admin:evaluation_augmentationrun_add")
    assert admin_client.get(url).status_code == 200
    form = {"ratio": 1.0, "seed": 0, "n_seeds": 2, "epochs": 1, "image_size": 32, "conditions": "MEL"}
    refused = admin_client.post(url, form)  # neither batches nor a checkpoint
    assert refused.status_code == 200 and "exactly one" in refused.content.decode()
    assert not AugmentationRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url, {**form, "synthetic_batches": [batch.pk]})
    run = AugmentationRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    assert len(callbacks) == 1
    assert run.config == {"n_seeds": 2, "epochs": 1, "image_size": 32}


# The checkpoint's page lists the fidelity runs of its batches, beside the real-vs-real
# baseline when a run stored one, with a link that computes a new run for each batch.


def _checkpoint_page(admin_client, checkpoint) -> str:
    page = admin_client.get(reverse("admin:library_generatorcheckpoint_change", args=[checkpoint.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_the_checkpoint_page_lists_its_batches_fidelity_runs_and_a_compute_link(admin_client):
    real_images({"MEL": 6, "NEV": 6})
    batch = batch_with_images({"MEL": 5, "NEV": 5})
    html = _checkpoint_page(admin_client, batch.checkpoint)
    assert "no fidelity run yet" in html
    assert reverse("admin:evaluation_fidelityrun_add") + f"?batch={batch.pk}" in html
    run = runs.fidelity_run_execute(
        run_pk=services.fidelity_run_create(batch=batch, config=FAST, enqueue=False).pk
    )
    assert run.status == FidelityRun.Status.SUCCEEDED
    html = _checkpoint_page(admin_client, batch.checkpoint)
    assert reverse("admin:evaluation_fidelityrun_change", args=[run.pk]) in html
    assert f"FID {run.overall()['fid']:.3g}" in html and "12 real / 10 synthetic" in html
    # A run with the real-vs-real baseline shows it beside each number.
    results = {**run.results, "baseline": {"overall": {"fid": 4.25, "kid_mean": 0.0125}}}
    FidelityRun.objects.filter(pk=run.pk).update(results=results)
    html = _checkpoint_page(admin_client, batch.checkpoint)
    assert "(real vs real: 4.25)" in html and "(real vs real: 0.0125)" in html


def test_a_checkpoint_without_batches_says_so(admin_client):
    batch = batch_with_images({"MEL": 2})
    checkpoint = batch.checkpoint
    batch.images.all().delete()
    batch.delete()
    assert "no batch rendered from this checkpoint yet" in _checkpoint_page(admin_client, checkpoint)
