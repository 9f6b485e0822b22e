"""``job_failure_notify``: whoever scheduled a batch, import or training job is e-mailed once when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.mail.backends.locmem import EmailBackend

from tests.factories import AdminFactory, UserFactory
from tests.library_support import checkpoint_fixture, distribution, library_fixture  # noqa: F401
from tests.training_support import TINY_JOB, library_photos
from turingtest import queue
from turingtest.core.failures import job_failure_notify
from turingtest.library import rendering, scheduling
from turingtest.library.imports import import_job_run
from turingtest.library.models import ImportJob
from turingtest.training import runs, services

pytestmark = pytest.mark.django_db


def _import_job(user, **kwargs) -> ImportJob:
    job = ImportJob.objects.create(created_by=user, **kwargs)
    job.archive.save("upload.zip", ContentFile(b"this is not a zip"), save=True)
    return job


def test_a_failed_batch_mails_the_person_who_scheduled_it_once(
    checkpoint, django_capture_on_commit_callbacks
):
    Path(checkpoint.file.path).write_bytes(b"gone")  # every chunk fails, each telling the batch
    admin = AdminFactory(email="ops@example.org", first_name="Ada")
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduling.batch_schedule(
            checkpoint=checkpoint,
            count=8,
            seed=1,
            distribution=distribution(),
            chunk_size=4,
            created_by=admin,
        )
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.failure_notified_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.org"] and message.subject == f"Failed: generation batch {batch.pk}"
    assert "Hello Ada" in message.body and "CheckpointError" in message.body
    assert f"/admin/library/generationbatch/{batch.pk}/change/" in message.body
    rendering.batch_progress_update(batch_pk=batch.pk)  # recounting a failed batch tells nobody again
    assert not job_failure_notify(job=batch)
    assert len(mail.outbox) == 1


def test_a_failed_import_mails_its_uploader_once(library):
    user = UserFactory(email="uploader@example.org")
    job = import_job_run(job=_import_job(user))
    assert job.status == "failed"
    assert [m.to for m in mail.outbox] == [["uploader@example.org"]]
    assert mail.outbox[0].subject == f"Failed: import job {job.pk}"
    assert job.error in mail.outbox[0].body
    import_job_run(job=job)  # the task delivered twice: finished already, nothing twice
    assert len(mail.outbox) == 1


def test_an_enqueue_the_broker_refuses_mails_the_scheduler(library):
    user = UserFactory(email="sched@example.org")
    job = ImportJob.objects.create(created_by=user)
    assert queue.row_fail(model=ImportJob, pk=job.pk, error="could not enqueue the import: refused") == 1
    assert queue.row_fail(model=ImportJob, pk=job.pk, error="again") == 0
    assert len(mail.outbox) == 1 and "could not enqueue the import: refused" in mail.outbox[0].body


def test_a_failed_training_job_mails_its_creator_once(
    settings, one_torch_thread, monkeypatch, django_capture_on_commit_callbacks
):
    settings.IMAGE_SIZE = 64
    library_photos()
    user = UserFactory(email="trainer@example.org")

    def refuse(**kwargs):
        raise OSError("storage full")

    monkeypatch.setattr(runs, "checkpoint_register", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.training_job_create(user=user, **TINY_JOB)
    job.refresh_from_db()
    assert job.status == "failed"
    assert [m.subject for m in mail.outbox] == [f"Failed: training job {job.pk}"]
    assert "OSError: storage full" in mail.outbox[0].body
    assert not job_failure_notify(job=job)
    with django_capture_on_commit_callbacks(execute=True):  # resumed, and failing again: news again
        services.training_job_resume(job=job)
    job.refresh_from_db()
    assert job.status == "failed" and len(mail.outbox) == 2


def test_rows_that_did_not_fail_or_have_nobody_to_tell_send_nothing(library):
    queued = ImportJob.objects.create(created_by=UserFactory(email="a@example.org"))
    assert not job_failure_notify(job=queued)
    nobody = ImportJob.objects.create(status="failed", error="x")
    assert not job_failure_notify(job=nobody)
    no_address = ImportJob.objects.create(status="failed", error="x", created_by=UserFactory(email=""))
    assert not job_failure_notify(job=no_address)
    assert mail.outbox == []


def test_a_mail_server_that_refuses_does_not_turn_the_failure_into_another(library, monkeypatch):
    def refuse(self, messages):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    job = ImportJob.objects.create(status="failed", error="x", created_by=UserFactory(email="a@example.org"))
    assert not job_failure_notify(job=job)
    job.refresh_from_db()
    assert job.failure_notified_at is not None  # tried once; the log has the refusal
