"""Training jobs run eagerly (no broker): segments, the claim, cancel, resume, provenance."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
from django.core.files.storage import default_storage
from django.utils import timezone

from generator.checkpoint import load
from generator.train import main
from tests.library_support import CLOSED_BROKER, broker_down
from tests.training_support import TINY_JOB, library_photos
from turingtest.library.models import GeneratorCheckpoint, Image, MaskSource
from turingtest.training import runs, services, tasks
from turingtest.training.models import TrainingJob
from turingtest.training.selection import TrainingError, images_select, manifest_download

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small(settings, one_torch_thread):
    settings.IMAGE_SIZE = 64


@pytest.fixture
def create(django_capture_on_commit_callbacks):
    """``training_job_create`` as in production: the first segment is sent once the row is committed
    (eagerly here, so the job has run when this returns)."""

    def create(**kwargs) -> TrainingJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.training_job_create(**kwargs)
        job.refresh_from_db()
        return job

    return create


@pytest.fixture
def resume(django_capture_on_commit_callbacks):
    def resume(job: TrainingJob) -> TrainingJob:
        with django_capture_on_commit_callbacks(execute=True):
            services.training_job_resume(job=job)
        job.refresh_from_db()
        return job

    return resume


def test_a_job_trains_in_segments_to_the_weights_of_the_same_cli_run_and_registers_them_with_provenance(
    tmp_path, create
):
    photos = library_photos()
    job = create(name="tiny", seed=3, **TINY_JOB)
    assert job.status == "succeeded", job.error
    assert (job.step, job.next_segment, job.n_claims, job.state_step) == (6, 3, 3, 6)
    assert set(job.losses) >= {"loss_d", "loss_g", "loss_g_l1"} and job.seconds_left is None
    assert default_storage.exists(job.sample_name) and job.sample_name.endswith("step-0000006.png")

    checkpoint = job.checkpoint
    assert checkpoint.name == "tiny" and checkpoint.image_size == 64
    training = checkpoint.metadata["training"]
    assert training["step"] == 6 and training["options"]["ngf"] == 8 and training["options"]["lr"] == 2e-4
    assert training["data"]["image_sha256"] == [p.sha256 for p in photos] == job.image_sha256
    assert checkpoint.metadata["library"] == {
        "training_job": job.pk,
        "image_ids": [p.pk for p in photos],
        "selection": {"conditions": [], "skin_types": [], "masks": "any"},
    }
    # The command line, given the job's manifest and options, trains exactly the same network:
    # one code path, and resuming between segments changes nothing.
    manifest = manifest_download(job=job, folder=tmp_path / "data")
    assert main(runs.job_argv(job, manifest=manifest, out=tmp_path / "cli")) == 0
    cli = load(tmp_path / "cli" / "generator.pt")
    registered = load(checkpoint.file.path)
    assert registered.sha256 == checkpoint.sha256
    for key, value in cli.state_dict.items():
        assert torch.equal(value, registered.state_dict[key]), key
    # Only the last checkpoint's state stays in storage (the earlier ones were replaced).
    assert default_storage.exists(f"{job.state_name}/train_state.pt")
    folders, _ = default_storage.listdir(f"{job.work_prefix}/state")
    assert [f for f in folders if default_storage.listdir(f"{job.work_prefix}/state/{f}")[1]] == [
        job.state_name.rsplit("/", 1)[-1]
    ]


def test_the_selection_takes_real_photos_with_masks_by_condition_and_skin_type(create):
    mel2, nev3, mel5, _ = library_photos()
    library_photos((("MEL", 2),), with_mask=False)  # no mask: never trained on
    assert list(images_select(conditions=["MEL"])) == [mel2, mel5]
    assert list(images_select(skin_types=[3, 5])) == [nev3, mel5]
    job = create(conditions=["MEL"], skin_types=[2], enqueue=False, **TINY_JOB)
    assert job.image_ids == [mel2.pk] and job.status == "queued"
    # Nothing reviewed yet: "reviewed only" selects nothing and says why; a reviewed mask counts.
    assert not images_select(masks="reviewed").exists()
    with pytest.raises(TrainingError, match="has been reviewed in the mask editor yet"):
        create(masks="reviewed", **TINY_JOB)
    Image.objects.filter(pk=nev3.pk).update(mask_source=MaskSource.REVIEWED)
    assert list(images_select(masks="reviewed")) == [nev3]
    with pytest.raises(TrainingError, match="unknown condition"):
        create(conditions=["NOPE"], **TINY_JOB)
    with pytest.raises(TrainingError, match="image-size"):
        create(**{**TINY_JOB, "image_size": 100})
    assert TrainingJob.objects.count() == 1


def test_calling_the_segment_task_twice_trains_once(create):
    library_photos()
    job = create(enqueue=False, **TINY_JOB)
    assert tasks.train_segment.delay(job_pk=job.pk, segment=0).get() == "succeeded"
    job.refresh_from_db()
    before = (job.step, job.next_segment, job.n_claims, job.state_name, job.checkpoint_id)
    assert tasks.train_segment.delay(job_pk=job.pk, segment=0).get() == "stale"
    assert runs.segment_run(job_pk=job.pk, segment=2).status == "stale"
    job.refresh_from_db()
    assert (job.step, job.next_segment, job.n_claims, job.state_name, job.checkpoint_id) == before
    assert GeneratorCheckpoint.objects.count() == 1


def test_a_segment_waits_while_another_holds_the_job_and_takes_over_once_its_lease_expired(create):
    library_photos()
    job = create(enqueue=False, **TINY_JOB)
    held = timezone.now() + timedelta(seconds=60)
    TrainingJob.objects.filter(pk=job.pk).update(status="running", lease_token="other", lease_until=held)
    outcome = runs.segment_run(job_pk=job.pk, segment=0)
    assert outcome.status == "busy" and 55 < outcome.retry_in <= 61
    assert TrainingJob.objects.get(pk=job.pk).n_claims == 0
    # The holder died (its lease ran out): the segment takes over, trains its piece and sends the next.
    TrainingJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    sent: list[int] = []
    outcome = runs.segment_run(job_pk=job.pk, segment=0, send_next=lambda n: sent.append(n) or n)
    assert (outcome.status, outcome.next_segment, sent) == ("trained", 1, [1])
    job.refresh_from_db()
    assert (job.step, job.state_step, job.next_segment, job.lease_token) == (2, 2, 1, "")
    assert runs.segment_run(job_pk=job.pk, segment=0).status == "stale"  # a duplicate of segment 0
    # Cancelled while a segment holds it, then resumed at once: no second segment starts beside it.
    held = timezone.now() + timedelta(seconds=60)
    TrainingJob.objects.filter(pk=job.pk).update(status="running", lease_token="other", lease_until=held)
    services.training_job_cancel(job=job)
    services.training_job_resume(job=job)
    assert runs.segment_run(job_pk=job.pk, segment=1).status == "busy"


def test_cancelling_stops_a_running_segment_at_its_next_log_and_a_resumed_job_finishes(
    monkeypatch, create, resume
):
    library_photos()
    logged = runs._on_log

    def cancel_then_log(job, token, record):
        services.training_job_cancel(job=TrainingJob.objects.get(pk=job.pk))
        return logged(job, token, record)

    monkeypatch.setattr(runs, "_on_log", cancel_then_log)
    job = create(**{**TINY_JOB, "segment_steps": None, "checkpoint_every": 2})
    assert job.status == "cancelled" and job.step == 0 and job.state_name == "" and job.checkpoint is None
    assert tasks.train_segment.delay(job_pk=job.pk, segment=0).get() == "stale"
    assert not services.training_job_cancel(job=job)  # already finished: a no-op
    monkeypatch.undo()
    job = resume(job)
    assert job.status == "succeeded" and job.step == 6 and job.checkpoint is not None
    with pytest.raises(TrainingError, match="only a failed or cancelled job"):
        services.training_job_resume(job=job)


def test_a_job_that_failed_after_its_last_checkpoint_resumes_straight_to_registering_it(
    monkeypatch, create, resume
):
    library_photos()

    def refuse(**kwargs):
        raise OSError("storage full")

    monkeypatch.setattr(runs, "checkpoint_register", refuse)
    job = create(**TINY_JOB)
    assert job.status == "failed" and "OSError: storage full" in job.error and job.state_step == 6
    monkeypatch.undo()
    claims = job.n_claims
    job = resume(job)
    assert job.status == "succeeded" and job.checkpoint.metadata["training"]["step"] == 6
    assert job.n_claims == claims + 1  # one more claim, and no training: the state was already final


def test_a_broker_that_is_down_refuses_the_job_or_fails_it_with_the_brokers_message(monkeypatch, create):
    library_photos()
    with broker_down(monkeypatch):
        with pytest.raises(services.BrokerUnavailable, match=CLOSED_BROKER):
            create(**TINY_JOB)
        assert not TrainingJob.objects.exists()
        job = create(check_broker=False, **TINY_JOB)
    assert job.status == "failed" and job.error.startswith("could not enqueue the training job")
