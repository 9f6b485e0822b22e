"""Checkpoints and generation batches in the embedded default (tasks run eagerly).

The tests against a real broker and worker process are in test_library_reliability.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image as PILImage

from tests.factories import AdminFactory, UserFactory
from tests.library_support import (  # noqa: F401  (fixtures)
    broker_down,
    checkpoint_fixture,
    distribution,
    library_fixture,
    tiny_checkpoint,
)
from turingtest.images import normalize
from turingtest.library import checkpoints, rendering, scheduling, store
from turingtest.library.models import GenerationBatch, GenerationChunk, GeneratorCheckpoint, Image, ImportJob


def _schedule(checkpoint, django_capture_on_commit_callbacks, **kwargs) -> GenerationBatch:
    options = {"count": 10, "seed": 7, "distribution": distribution(), "chunk_size": 4, **kwargs}
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduling.batch_schedule(checkpoint=checkpoint, **options)
    batch.refresh_from_db()
    return batch


def test_a_batch_renders_exactly_count_images_with_full_provenance(
    checkpoint, django_capture_on_commit_callbacks
):
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks)
    assert (batch.status, batch.n_done, batch.count) == ("succeeded", 10, 10)
    assert batch.started and batch.finished and batch.render_seconds > 0
    assert list(batch.chunks.values_list("start", "stop", "status")) == [
        (0, 4, "done"),
        (4, 8, "done"),
        (8, 10, "done"),
    ]
    images = list(batch.images.order_by("batch_index"))
    assert [im.batch_index for im in images] == list(range(10))
    from generator.sampling import image_seed

    for image in images:
        prov = image.provenance
        assert image.kind == "synthetic" and (image.width, image.height) == (32, 32)
        assert prov["batch"] == batch.pk and prov["index"] == image.batch_index
        assert prov["seed"] == image_seed(7, image.batch_index)
        assert prov["checkpoint_sha256"] == checkpoint.sha256
        assert prov["generator_version"] and prov["spec"]["size"] == 32
        assert image.condition.code == prov["spec"]["lesions"][0]["condition"]
        assert image.condition.code in {"MEL", "NEV", "SEK"}
        assert image.fitzpatrick in {1, 3, 6} and image.lesion_area_fraction > 0 and image.mask
    assert len({im.sha256 for im in images}) == 10


def test_re_rendering_an_image_from_its_provenance_gives_the_same_pixels(
    checkpoint, django_capture_on_commit_callbacks
):
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks, count=3)
    checkpoints.renderers_clear()  # a fresh process would have no cached renderer either
    for image in batch.images.order_by("batch_index"):
        again = normalize(rendering.image_rerender(image=image))
        with default_storage.open(image.file.name) as fh:
            assert fh.read() == again.data
        assert again.sha256 == image.sha256


def test_running_a_chunk_twice_changes_nothing(checkpoint, django_capture_on_commit_callbacks):
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks, count=4)
    chunk = batch.chunks.get()
    before = list(Image.objects.order_by("pk").values_list("pk", "sha256"))
    from turingtest.library.tasks import render_chunk

    assert render_chunk.apply(kwargs={"chunk_pk": chunk.pk}).get() == "already done"
    # Even when the row says it never finished (a crash after storing), the rerun adds nothing.
    GenerationChunk.objects.filter(pk=chunk.pk).update(status="running")
    assert rendering.chunk_render(chunk_pk=chunk.pk) == "rendered 0 of 4"
    assert list(Image.objects.order_by("pk").values_list("pk", "sha256")) == before


def test_a_chunk_interrupted_half_way_renders_only_the_missing_indexes_identically(
    checkpoint, django_capture_on_commit_callbacks
):
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks, count=4)
    original = dict(Image.objects.values_list("batch_index", "sha256"))
    Image.objects.filter(batch=batch, batch_index__in=[1, 3]).delete()
    chunk = batch.chunks.get()
    GenerationChunk.objects.filter(pk=chunk.pk).update(status="running")
    GenerationBatch.objects.filter(pk=batch.pk).update(status="running", n_done=2)
    assert rendering.chunk_render(chunk_pk=chunk.pk) == "rendered 2 of 4"
    assert dict(Image.objects.values_list("batch_index", "sha256")) == original
    batch.refresh_from_db()
    assert (batch.status, batch.n_done) == ("succeeded", 4)


def test_cancelling_a_queued_batch_stops_its_chunks_from_rendering(checkpoint):
    # Created without running the on-commit enqueue: the batch sits queued, as behind a busy worker.
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=8, seed=1, distribution=distribution(), chunk_size=4
    )
    assert batch.status == "queued"
    assert scheduling.batch_cancel(batch=batch) == 2
    assert scheduling.batch_cancel(batch=batch) == 0  # a second cancel is a no-op
    for chunk in batch.chunks.all():
        assert rendering.chunk_render(chunk_pk=chunk.pk) == "batch cancelled"
    assert Image.objects.count() == 0
    batch.refresh_from_db()
    assert batch.status == "cancelled" and batch.finished is not None


def test_a_render_failure_is_recorded_on_the_batch_not_raised_into_the_scheduler(
    checkpoint, django_capture_on_commit_callbacks
):
    Path(checkpoint.file.path).write_bytes(b"gone")  # the stored file got corrupted after upload
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks, count=4)
    assert batch.status == "failed"
    assert "chunk 0 [0, 4)" in batch.error and "CheckpointError" in batch.error
    assert batch.chunks.get().status == "failed"


def test_scheduling_with_an_unreachable_broker_says_so_and_creates_nothing(checkpoint, monkeypatch):
    with broker_down(monkeypatch):
        with pytest.raises(
            scheduling.BrokerUnavailable, match="task broker is unreachable .*Nothing was scheduled"
        ):
            scheduling.batch_schedule(checkpoint=checkpoint, count=4, seed=1, distribution=distribution())
        assert GenerationBatch.objects.count() == 0 and GenerationChunk.objects.count() == 0
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError, match="task broker is unreachable"):
            call_command(
                "schedule_batch",
                "--checkpoint",
                str(checkpoint.pk),
                "--count",
                "4",
                "--seed",
                "1",
                stdout=out,
                stderr=err,
            )
        assert GenerationBatch.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_that_fails_after_commit_marks_the_batch_failed_with_the_broker_message(
    checkpoint, monkeypatch
):
    # transaction=True: on_commit runs when batch_schedule's own transaction commits, as in production.
    with broker_down(monkeypatch):
        with pytest.raises(scheduling.BrokerUnavailable, match="could not enqueue the batch"):
            scheduling.batch_schedule(
                checkpoint=checkpoint, count=4, seed=1, distribution=distribution(), check_broker=False
            )
    batch = GenerationBatch.objects.get()
    assert batch.status == "failed" and "Connection refused" in batch.error
    assert set(batch.chunks.values_list("status", flat=True)) == {"cancelled"}


def test_scheduling_the_same_checkpoint_seed_and_distribution_twice_is_refused(
    checkpoint, django_capture_on_commit_callbacks
):
    first = _schedule(checkpoint, django_capture_on_commit_callbacks, count=2)
    with pytest.raises(store.LibraryError, match=f"batch {first.pk} already renders this checkpoint, seed"):
        scheduling.batch_schedule(checkpoint=checkpoint, count=5, seed=7, distribution=distribution())
    other = _schedule(checkpoint, django_capture_on_commit_callbacks, count=2, seed=8)
    assert other.status == "succeeded" and Image.objects.count() == 4


def test_a_distribution_the_checkpoint_cannot_render_is_refused(checkpoint):
    with pytest.raises(store.LibraryError, match="PSO are not in the checkpoint's conditions"):
        scheduling.batch_schedule(
            checkpoint=checkpoint, count=2, seed=1, distribution=distribution(condition_weights={"PSO": 1.0})
        )
    with pytest.raises(store.LibraryError, match="area_fraction_range"):
        scheduling.batch_schedule(
            checkpoint=checkpoint, count=2, seed=1, distribution=distribution(area_fraction_range=[0.5, 0.1])
        )
    assert GenerationBatch.objects.count() == 0


def test_a_bad_checkpoint_file_is_rejected_with_the_loaders_message_and_nothing_is_kept(library):
    garbage = library / "garbage.pt"
    garbage.write_bytes(b"definitely not torch")
    with pytest.raises(store.LibraryError, match="not a checkpoint"):
        checkpoints.checkpoint_register(path=garbage)
    good = tiny_checkpoint(library / "t.pt")
    truncated = library / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(store.LibraryError, match="truncated"):
        checkpoints.checkpoint_register(path=truncated)
    assert GeneratorCheckpoint.objects.count() == 0
    assert not (Path(library / "media" / "checkpoints")).exists()


def test_registering_the_same_file_twice_returns_the_first_row(library):
    path = tiny_checkpoint(library / "t.pt")
    first = checkpoints.checkpoint_register(path=path, name="a")
    assert checkpoints.checkpoint_register(path=path, name="b").pk == first.pk
    assert first.image_size == 32 and first.conditions == ["MEL", "NEV", "SEK", "BCC"]
    assert first.generator_version and first.metadata["training"] == {"note": "untrained test network"}


def test_registering_again_restores_a_checkpoint_file_that_went_missing(library):
    path = tiny_checkpoint(library / "t.pt")
    first = checkpoints.checkpoint_register(path=path)
    Path(first.file.path).unlink()
    again = checkpoints.checkpoint_register(path=path)
    assert again.pk == first.pk and Path(again.file.path).read_bytes() == path.read_bytes()


@pytest.mark.django_db(transaction=True)
def test_schedule_batch_registers_a_checkpoint_path_and_renders_eagerly(library):
    path = tiny_checkpoint(library / "cli.pt")
    out = io.StringIO()
    call_command(
        "schedule_batch",
        "--checkpoint",
        str(path),
        "--count",
        "5",
        "--seed",
        "3",
        "--conditions",
        "MEL=2,NEV=1",
        "--fitzpatrick",
        "5=1",
        "--chunk-size",
        "2",
        "--wait",
        stdout=out,
        stderr=io.StringIO(),
    )
    batch = GenerationBatch.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == f"batch {batch.pk} succeeded 5/5"
    assert batch.distribution["condition_weights"] == {"MEL": 2.0, "NEV": 1.0}
    assert set(Image.objects.values_list("condition__code", flat=True)) <= {"MEL", "NEV"}
    assert set(Image.objects.values_list("fitzpatrick", flat=True)) == {5}


def test_schedule_batch_rejects_a_bad_checkpoint_with_the_loaders_message(library):
    bad = library / "bad.pt"
    bad.write_bytes(b"")
    with pytest.raises(CommandError, match="checkpoint rejected: truncated"):
        call_command(
            "schedule_batch", "--checkpoint", str(bad), "--count", "1", "--seed", "1", stdout=io.StringIO()
        )


def test_the_demo_batch_renders_through_batch_schedule(library, django_capture_on_commit_callbacks):
    path = tiny_checkpoint(library / "demo.pt")
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduling.demo_batch_render(count=6, seed=11, checkpoint_path=path)
    batch.refresh_from_db()
    assert (batch.status, batch.images.count()) == ("succeeded", 6)
    assert scheduling.demo_batch_render(count=6, seed=11, checkpoint_path=path).pk == batch.pk


# --- admin and progress endpoint ----------------------------------------------------------


def test_the_progress_endpoint_is_for_staff_only(client, checkpoint, django_capture_on_commit_callbacks):
    batch = _schedule(checkpoint, django_capture_on_commit_callbacks, count=2)
    url = reverse("library-batch-progress", args=[batch.pk])
    assert client.get(url).status_code == 403
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(AdminFactory())
    body = client.get(url).json()
    assert body["status"] == "succeeded" and (body["done"], body["total"], body["percent"]) == (2, 2, 100.0)
    assert body["wall_seconds"] is not None


def test_the_admin_uploads_a_checkpoint_and_rejects_a_bad_one_with_the_loaders_message(client, library):
    client.force_login(AdminFactory())
    url = reverse("admin:library_generatorcheckpoint_add")
    bad = client.post(url, {"name": "bad", "file": io.BytesIO(b"junk junk")})
    assert bad.status_code == 200 and b"Rejected: not a checkpoint" in bad.content
    assert GeneratorCheckpoint.objects.count() == 0
    data = tiny_checkpoint(library / "up.pt").read_bytes()
    upload = io.BytesIO(data)
    upload.name = "up.pt"
    good = client.post(url, {"name": "", "file": upload})
    checkpoint = GeneratorCheckpoint.objects.get()
    assert good.status_code == 302 and checkpoint.name == "up"
    page = client.get(reverse("admin:library_generatorcheckpoint_change", args=[checkpoint.pk]))
    assert page.status_code == 200 and checkpoint.sha256.encode() in page.content
    assert b"generator_version" in page.content


def test_the_admin_previews_the_first_renders_then_schedules(client, checkpoint):
    client.force_login(AdminFactory())
    url = reverse("admin:library_generationbatch_add")
    form = {
        "checkpoint": checkpoint.pk,
        "count": 6,
        "seed": 5,
        "chunk_size": 3,
        "conditions": "MEL=1, SEK=1",
        "area_range": "0.02, 0.1",
        "location": "centre",
        "lesions": "1, 1",
        "fitzpatrick": "2=1, 4=1",
        "skin_rgbs": "",
        "priority": 0,
    }
    preview = client.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200
    assert preview.content.count(b'src="data:image/png;base64,') == 4
    assert GenerationBatch.objects.count() == 0  # a preview commits nothing
    scheduled = client.post(url, {**form, "action": "schedule"})
    assert scheduled.status_code == 302
    batch = GenerationBatch.objects.get()
    assert batch.count == 6 and batch.distribution["location"] == "centre"
    listing = client.get(reverse("admin:library_generationbatch_changelist"))
    assert reverse("library-batch-progress", args=[batch.pk]).encode() in listing.content
    assert b"js/batch-progress.js" in listing.content
    detail = client.get(reverse("admin:library_generationbatch_change", args=[batch.pk]))
    assert detail.status_code == 200 and b"condition_weights" in detail.content and b"chunk" in detail.content
    bad = client.post(url, {**form, "conditions": "PSO=1", "action": "preview"})
    assert b"not in the checkpoint&#x27;s conditions" in bad.content


def test_the_admin_cancel_action_cancels_a_queued_batch(client, checkpoint):
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=4, seed=2, distribution=distribution(), chunk_size=2
    )
    client.force_login(AdminFactory())
    response = client.post(
        reverse("admin:library_generationbatch_changelist"),
        {"action": "cancel_batches", "_selected_action": [batch.pk]},
    )
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == "cancelled"


def test_the_admin_zip_import_runs_as_a_task_and_lists_bad_rows(
    client, library, django_capture_on_commit_callbacks
):
    outside = library / "elsewhere.png"  # a file on the server, outside the upload
    PILImage.new("RGB", (20, 20), (1, 2, 3)).save(outside)
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("one.png", "two.png"):
            png = io.BytesIO()
            PILImage.fromarray(rng.integers(100, 220, (40, 40, 3), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"set/{name}", png.getvalue())
        zf.writestr(
            "set/manifest.csv",
            "image,condition,fitzpatrick\none.png,MEL,2\ntwo.png,NEV,\nthree.png,MEL,1\n"
            f"{outside},MEL,1\n../../x.png,MEL,1\n",
        )
    buf.seek(0)
    buf.name = "set.zip"
    client.force_login(AdminFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:library_importjob_add"), {"archive": buf, "format": "auto"})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert (job.status, job.n_rows, job.n_imported) == ("succeeded", 5, 2)
    assert [e["line"] for e in job.errors] == [4, 5, 6]
    assert job.errors[0]["reason"].startswith("missing file") and job.errors[0]["reason"].endswith(
        "three.png"
    )
    assert "leaves the uploaded archive" in job.errors[1]["reason"]
    assert "leaves the uploaded archive" in job.errors[2]["reason"]
    assert Image.objects.count() == 2
    page = client.get(reverse("admin:library_importjob_change", args=[job.pk]))
    assert b"line 4: missing file" in page.content
    progress = client.get(reverse("library-import-progress", args=[job.pk])).json()
    assert (progress["done"], progress["total"], progress["n_errors"]) == (5, 5, 3)


def test_a_transient_error_is_retried_and_the_chunk_then_completes(checkpoint, monkeypatch):
    from django.db import OperationalError

    from turingtest.library import tasks
    from turingtest.library.tasks import render_chunk

    batch = scheduling.batch_schedule(checkpoint=checkpoint, count=3, seed=4, distribution=distribution())
    chunk = batch.chunks.get()
    real = checkpoints.renderer_get
    calls = {"n": 0}

    def flaky(ckpt):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly (injected)")
        return real(ckpt)

    monkeypatch.setattr(rendering, "renderer_get", flaky)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_BASE", 0.01)
    render_chunk.apply(kwargs={"chunk_pk": chunk.pk})
    assert calls["n"] == 2
    batch.refresh_from_db()
    assert (batch.status, batch.n_done) == ("succeeded", 3)
    assert batch.chunks.get().attempts == 2


def test_a_transient_error_that_never_clears_fails_the_batch_after_the_last_retry(checkpoint, monkeypatch):
    from django.db import OperationalError

    from turingtest.library import tasks
    from turingtest.library.tasks import MAX_RETRIES, render_chunk

    batch = scheduling.batch_schedule(checkpoint=checkpoint, count=2, seed=4, distribution=distribution())

    def down(ckpt):
        raise OperationalError("database unavailable (injected)")

    monkeypatch.setattr(rendering, "renderer_get", down)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_BASE", 0.01)
    render_chunk.apply(kwargs={"chunk_pk": batch.chunks.get().pk})
    batch.refresh_from_db()
    assert batch.status == "failed"
    assert f"gave up after {MAX_RETRIES} retries: database unavailable" in batch.error
    assert batch.chunks.get().attempts == MAX_RETRIES + 1 and Image.objects.count() == 0


def test_the_retry_backoff_grows_and_is_capped():
    from turingtest.library.tasks import backoff_seconds

    assert [backoff_seconds(n) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert backoff_seconds(10) == 60.0


def test_an_import_task_run_twice_imports_once_and_a_finished_job_is_left_alone(library):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from turingtest.library.tasks import import_images

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        png = io.BytesIO()
        PILImage.new("RGB", (30, 30), (180, 130, 110)).save(png, "PNG")
        zf.writestr("a.png", png.getvalue())
        zf.writestr("m.csv", "image,condition\na.png,NEV\n")
    job = ImportJob.objects.create(format="auto")
    job.archive.save("x.zip", SimpleUploadedFile("x.zip", buf.getvalue()))
    ImportJob.objects.filter(pk=job.pk).update(status="running")  # as a killed worker left it
    assert import_images.apply(kwargs={"job_pk": job.pk}).get() == "succeeded"
    assert import_images.apply(kwargs={"job_pk": job.pk}).get() == "succeeded"
    job.refresh_from_db()
    assert (job.n_imported, Image.objects.count()) == (1, 1)
