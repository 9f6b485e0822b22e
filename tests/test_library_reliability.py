"""Generation batches against real Redis, PostgreSQL and real ``celery worker`` processes.

Run with DATABASE_URL=postgres://… CELERY_BROKER_URL=redis://… (skipped otherwise,
failed with REQUIRE_SERVICES=1). The checkpoints are tiny networks built here, not
the demo one, so a chunk renders in well under a second on CPU.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from tests.factories import RaterFactory
from tests.library_support import CLOSED_BROKER, broker_down, distribution, tiny_checkpoint
from turingtest.library import checkpoints, rendering, scheduling
from turingtest.library.models import GenerationBatch, Image

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def taxonomy(transactional_db, settings):
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    checkpoints.renderers_clear()


def _wait_until(predicate, *, timeout: float, what: str, worker=None, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    log = worker.log() if worker is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def _assert_exactly(batch: GenerationBatch, n: int) -> None:
    indexes = list(Image.objects.filter(batch=batch).values_list("batch_index", flat=True))
    assert sorted(indexes) == list(range(n)), Counter(indexes)
    shas = list(Image.objects.filter(batch=batch).values_list("sha256", flat=True))
    assert len(set(shas)) == n


def test_a_batch_of_n_completes_with_exactly_n_images_and_provenance(taxonomy, tmp_path, live_worker):
    checkpoint = checkpoints.checkpoint_register(path=tiny_checkpoint(tmp_path / "t.pt"))
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=12, seed=21, distribution=distribution(), chunk_size=4
    )
    assert batch.status == "queued" and all(batch.chunks.values_list("task_id", flat=True))
    batch = scheduling.batch_wait(batch=batch, timeout=120)
    assert batch.status == "succeeded", (batch.error, live_worker.log())
    assert batch.n_done == 12 and batch.finished >= batch.started
    _assert_exactly(batch, 12)
    from generator.sampling import image_seed

    for image in Image.objects.filter(batch=batch):
        assert image.provenance["seed"] == image_seed(21, image.batch_index)
        assert image.provenance["checkpoint_sha256"] == checkpoint.sha256
        assert image.provenance["spec"]["size"] == 32
    # The command line: --wait follows the workers with a progress bar until the batch is done.
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "schedule_batch", "--checkpoint", str(checkpoint.pk), "--count", "4", "--seed", "22",
        "--chunk-size", "2", "--wait", "--timeout", "120", stdout=out, stderr=err,
    )  # fmt: skip
    cli_batch = GenerationBatch.objects.get(seed=22)
    assert out.getvalue().strip().splitlines()[-1] == f"batch {cli_batch.pk} succeeded 4/4"
    assert "4/4" in err.getvalue()  # tqdm's bar reached the end
    log = live_worker.log_path.read_text(errors="replace")
    assert log.count("render_chunk") >= 5
    # The worker loaded the model once and kept it for all three chunks.
    assert log.count(f"renderer loaded: checkpoint {checkpoint.sha256[:12]}") == 1


def test_killing_the_worker_mid_batch_then_a_new_worker_finishes_it_without_duplicates(
    taxonomy, tmp_path, worker_factory
):
    # A heavier (still small) network so a batch takes several seconds and can be caught mid-way.
    path = tiny_checkpoint(tmp_path / "k.pt", size=64, ngf=32, num_downs=6)
    checkpoint = checkpoints.checkpoint_register(path=path)
    first = worker_factory(CELERY_VISIBILITY_TIMEOUT="5")
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=48, seed=5, distribution=distribution(), chunk_size=4
    )

    def mid_batch():
        batch.refresh_from_db()
        return batch.n_done >= 4

    _wait_until(mid_batch, timeout=120, what="the first chunk", worker=first)
    first.kill()
    batch.refresh_from_db()
    assert not batch.is_finished, "the batch finished before the kill: make it slower"
    done_at_kill = batch.n_done
    second = worker_factory(CELERY_VISIBILITY_TIMEOUT="5")
    batch = scheduling.batch_wait(batch=batch, timeout=240)
    assert batch.status == "succeeded", (batch.error, second.log())
    assert done_at_kill < 48 and batch.n_done == 48
    _assert_exactly(batch, 48)
    assert set(batch.chunks.values_list("status", flat=True)) == {"done"}


def test_cancelling_mid_batch_stops_it_and_what_was_rendered_stays_consistent(
    taxonomy, tmp_path, live_worker
):
    path = tiny_checkpoint(tmp_path / "c.pt", size=64, ngf=32, num_downs=6)
    checkpoint = checkpoints.checkpoint_register(path=path)
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=64, seed=9, distribution=distribution(), chunk_size=4
    )

    def started():
        batch.refresh_from_db()
        return batch.n_done >= 4

    _wait_until(started, timeout=120, what="the first chunk", worker=live_worker)
    assert scheduling.batch_cancel(batch=batch) > 0
    time.sleep(3)  # let the chunk in flight finish, and any revoked message be dropped
    batch = rendering.batch_progress_update(batch_pk=batch.pk)
    stable = Image.objects.filter(batch=batch).count()
    time.sleep(2)
    assert Image.objects.filter(batch=batch).count() == stable  # nothing more renders
    assert batch.status == "cancelled" and 4 <= stable < 64 and batch.n_done == stable
    indexes = sorted(Image.objects.filter(batch=batch).values_list("batch_index", flat=True))
    assert len(indexes) == len(set(indexes))
    done_chunks = batch.chunks.filter(status="done")
    for chunk in done_chunks:  # every finished chunk is complete, never half stored
        assert Image.objects.filter(
            batch=batch, batch_index__gte=chunk.start, batch_index__lt=chunk.stop
        ).count() == (chunk.stop - chunk.start)
    assert set(batch.chunks.exclude(status="done").values_list("status", flat=True)) <= {"cancelled"}


def test_a_broker_that_is_down_fails_scheduling_clearly_and_writes_nothing(
    taxonomy, tmp_path, monkeypatch, client
):
    checkpoint = checkpoints.checkpoint_register(path=tiny_checkpoint(tmp_path / "b.pt"))
    with broker_down(monkeypatch):
        # The rating side does not need the broker: a rater's pages and the health check still answer.
        client.force_login(RaterFactory())
        assert client.get("/rate/").status_code == 200
        assert client.get("/healthz").status_code == 200
        with pytest.raises(scheduling.BrokerUnavailable, match=f"{CLOSED_BROKER}.*Nothing was scheduled"):
            scheduling.batch_schedule(checkpoint=checkpoint, count=4, seed=1, distribution=distribution())
        with pytest.raises(scheduling.BrokerUnavailable, match="could not enqueue the batch"):
            scheduling.batch_schedule(
                checkpoint=checkpoint, count=4, seed=2, distribution=distribution(), check_broker=False
            )
    # The pre-flight check wrote nothing; the late failure left one batch marked failed, nothing queued.
    assert list(GenerationBatch.objects.values_list("seed", "status")) == [(2, "failed")]
    assert set(GenerationBatch.objects.get().chunks.values_list("status", flat=True)) == {"cancelled"}
    assert Image.objects.count() == 0


def test_a_zip_import_runs_on_the_worker_and_reports_bad_rows(taxonomy, tmp_path, live_worker, settings):
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            png = io.BytesIO()
            PILImage.fromarray(rng.integers(90, 230, (50, 40, 3), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"img{i}.png", png.getvalue())
        zf.writestr("bad.png", b"not a png")
        zf.writestr(
            "manifest.csv",
            "image,condition,fitzpatrick\nimg0.png,MEL,2.0\nimg1.png,NEV,\nimg2.png,UNKNOWN,3\nbad.png,MEL,1\n",
        )
    buf.seek(0)
    from django.core.files.uploadedfile import SimpleUploadedFile

    job = scheduling.import_job_create(archive=SimpleUploadedFile("x.zip", buf.getvalue()))

    def finished():
        job.refresh_from_db()
        return job.status in ("succeeded", "failed")

    _wait_until(finished, timeout=120, what="the import job", worker=live_worker, poll=0.2)
    assert job.status == "succeeded", job.error
    assert (job.n_rows, job.n_imported) == (4, 2)
    assert [e["line"] for e in job.errors] == [4, 5]
    assert (
        "unknown condition 'UNKNOWN'" in job.errors[0]["reason"] and "not an image" in job.errors[1]["reason"]
    )
    assert Image.objects.count() == 2
