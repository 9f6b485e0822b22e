"""Training-job admin: the schedule form, the live page (progress JSON, sample grid), cancel and resume."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import AdminFactory, ResearcherFactory
from tests.training_support import TINY_JOB, library_photos
from turingtest.training import services
from turingtest.training.models import TrainingJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small(settings, one_torch_thread):
    settings.IMAGE_SIZE = 64


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def test_scheduling_from_the_admin_trains_and_the_job_page_shows_progress_grid_and_checkpoint(
    admin_client, django_capture_on_commit_callbacks
):
    mel, _, _, _ = library_photos()
    add = reverse("admin:training_trainingjob_add")
    page = admin_client.get(add)
    assert page.status_code == 200 and b"Schedule a DermGAN training job" in page.content
    assert b"Reviewed masks only" in page.content and b"Fitzpatrick 6" in page.content
    form = {
        **TINY_JOB,
        "name": "admin run",
        "conditions": ["MEL"],
        "masks": "any",
        "lr": "0.0002",
        "seed": "1",
    }
    form |= {"segment_seconds": "60", "skin_types": ["2", "5"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(add, form)
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:training_trainingjob_change", args=[job.pk]
    )
    assert job.status == "succeeded", job.error
    assert job.conditions == ["MEL"] and job.skin_types == [2, 5] and len(job.image_ids) == 2
    assert job.segment_steps is None  # the form bounds segments by time only

    page = admin_client.get(response["Location"]).content.decode()
    progress_url = reverse("admin:training_trainingjob_progress", args=[job.pk])
    sample_url = reverse("admin:training_trainingjob_sample", args=[job.pk])
    assert f'data-training-progress="{progress_url}"' in page and "js/training-progress.js" in page
    assert f'src="{sample_url}?v=step-0000006.png"' in page
    assert "step 6 / 6 · Succeeded" in page and "admin run" in page
    assert "python -m generator.train --manifest manifest.csv --out run/ --image-size 64 --ngf 8" in page
    progress = admin_client.get(progress_url).json()
    assert progress["status"] == "succeeded" and (progress["done"], progress["total"]) == (6, 6)
    assert {"d", "g", "g_l1"} <= {k.removeprefix("loss_") for k in progress["losses"]}
    grid = admin_client.get(sample_url)
    assert grid.status_code == 200 and grid["Content-Type"] == "image/png"
    assert b"".join(grid.streaming_content).startswith(b"\x89PNG")
    listing = admin_client.get(reverse("admin:training_trainingjob_changelist")).content.decode()
    assert "admin run" in listing and str(job.checkpoint) in listing


def test_the_form_shows_the_services_refusal_instead_of_creating_a_job(admin_client):
    library_photos()
    form = {**TINY_JOB, "masks": "reviewed", "lr": "0.0002", "seed": "0", "segment_seconds": "60"}
    response = admin_client.post(reverse("admin:training_trainingjob_add"), form)
    assert response.status_code == 200 and b"has been reviewed in the mask editor yet" in response.content
    assert not TrainingJob.objects.exists()


def test_cancel_and_resume_are_admin_actions_and_only_staff_see_a_jobs_progress(
    admin_client, client, django_capture_on_commit_callbacks
):
    library_photos()
    job = services.training_job_create(enqueue=False, **TINY_JOB)
    changelist = reverse("admin:training_trainingjob_changelist")
    admin_client.post(changelist, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(changelist, {"action": "resume_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "succeeded"

    client.force_login(ResearcherFactory())
    response = client.get(reverse("admin:training_trainingjob_progress", args=[job.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
