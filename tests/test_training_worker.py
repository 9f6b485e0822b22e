"""A training job on real Redis, PostgreSQL and ``celery worker`` processes: killed mid-run, resumed.

Run with DATABASE_URL=postgres://… CELERY_BROKER_URL=redis://… (skipped otherwise, failed
with REQUIRE_SERVICES=1). A tiny network (64 px, ngf 8) so the whole run takes seconds.
"""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.storage import default_storage

from tests.training_support import library_photos
from turingtest.training import services
from turingtest.training.models import TrainingJob

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Short visibility timeout so the killed worker's task comes back in seconds, not the default
# hour; one torch thread, as a tiny network on a shared 2-core machine runs fastest that way.
WORKER_ENV = {"CELERY_VISIBILITY_TIMEOUT": "5", "OMP_NUM_THREADS": "1"}


def _wait_for(job: TrainingJob, predicate, *, timeout: float, what: str, worker) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if predicate(job):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} ({job.status}, step {job.step})\n{worker.log()}"
    )


def test_a_worker_killed_mid_training_is_resumed_from_its_last_checkpoint_by_another(
    settings, worker_factory
):
    settings.IMAGE_SIZE = 64
    photos = library_photos()
    first = worker_factory(**WORKER_ENV)
    job = services.training_job_create(
        image_size=64,
        ngf=8,
        steps=20,
        batch_size=2,
        checkpoint_every=4,
        segment_steps=8,
        lease_seconds=3,
        seed=2,
    )
    assert job.status == "queued"
    _wait_for(
        job,
        lambda j: j.state_step and j.step > j.state_step,
        timeout=120,
        what="a stored checkpoint",
        worker=first,
    )
    first.kill()
    job.refresh_from_db()
    assert not job.is_finished, "the job finished before the kill: make it longer"
    stored_at_kill = job.state_step

    second = worker_factory(**WORKER_ENV)
    _wait_for(job, lambda j: j.is_finished, timeout=180, what="the job to finish", worker=second)
    assert job.status == "succeeded", (job.error, second.log())
    assert job.step == 20 and 4 <= stored_at_kill < 20
    assert job.n_claims > job.next_segment  # the killed segment was claimed again
    assert job.checkpoint.metadata["training"]["step"] == 20
    assert job.checkpoint.metadata["training"]["data"]["image_sha256"] == [p.sha256 for p in photos]
    # Resumed from the stored checkpoint, not from scratch: the run's metrics go up one log at a
    # time with nothing repeated (what the killed worker did after its checkpoint was never stored).
    with default_storage.open(f"{job.state_name}/metrics.jsonl") as fh:
        steps = [json.loads(line)["step"] for line in fh.read().decode().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 20
    assert "train_segment" in second.log()
