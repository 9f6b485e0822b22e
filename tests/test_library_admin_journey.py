"""The admin as an admin meets it: plural names, the batch form, preview captions, and what a
page says after starting a long job in the embedded default (eager tasks)."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.urls import reverse
from PIL import Image as PILImage

from generator.semantic_map import LesionSpec, MapSpec
from tests.factories import AdminFactory
from tests.library_support import checkpoint_fixture, library_fixture, tiny_checkpoint  # noqa: F401
from turingtest.core.admin_messages import job_message
from turingtest.library import checkpoints
from turingtest.library.models import GenerationBatch, ImportJob
from turingtest.library.rendering import spec_caption

PROJECT_APPS = {"core", "library", "studies", "evaluation", "training", "research"}


def test_every_model_has_an_english_plural():
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        singular, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
        if re.search(r"(s|x|z|ch|sh)$", singular):
            assert plural == singular + "es", model
        elif re.search(r"[^aeiou]y$", singular):
            assert plural == singular[:-1] + "ies", model
        else:
            assert plural == singular + "s", model
    assert GenerationBatch._meta.verbose_name_plural == "generation batches"


@pytest.fixture
def admin_client(client, library):
    client.force_login(AdminFactory(username="dr.batch"))
    return client


def test_the_admin_index_says_generation_batches(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Generation batches" in html and "batchs" not in html.lower()


def test_the_batch_form_preselects_the_only_checkpoint_and_not_one_of_two(admin_client, checkpoint, library):
    url = reverse("admin:library_generationbatch_add")
    assert f'<option value="{checkpoint.pk}" selected>' in admin_client.get(url).content.decode()
    second = checkpoints.checkpoint_register(
        path=tiny_checkpoint(library / "second.pt", seed=1), name="second"
    )
    html = admin_client.get(url).content.decode()
    assert all(f'<option value="{c.pk}" selected>' not in html for c in (checkpoint, second))


def test_a_caption_names_condition_skin_type_and_lesion_area():
    spec = MapSpec(size=32, lesions=(LesionSpec("MEL", area_fraction=0.1),), fitzpatrick=2)
    caption = spec_caption(spec)
    assert caption.startswith("MEL · Fitzpatrick type 2 · lesion ")
    area = float(re.search(r"lesion ([\d.]+)%", caption).group(1)) / 100
    assert area == pytest.approx(0.1, abs=0.03)
    rgb = MapSpec(size=32, lesions=(LesionSpec("NEV"), LesionSpec("MEL")), skin_rgb=(200, 150, 120))
    assert spec_caption(rgb).startswith("NEV + MEL · skin rgb(200, 150, 120) · ")


BATCH_FORM = {
    "count": 4,
    "seed": 5,
    "chunk_size": 2,
    "conditions": "MEL=1, SEK=1",
    "area_range": "0.02, 0.1",
    "location": "centre",
    "lesions": "1, 1",
    "fitzpatrick": "2=1, 4=1",
    "skin_rgbs": "",
    "priority": 0,
}


def test_previews_carry_captions_to_check_against_the_spec(admin_client, checkpoint):
    url = reverse("admin:library_generationbatch_add")
    html = admin_client.post(
        url, {**BATCH_FORM, "checkpoint": checkpoint.pk, "action": "preview"}
    ).content.decode()
    captions = re.findall(r'<figcaption class="library-caption">(.*?)</figcaption>', html)
    assert len(captions) == 4
    for caption in captions:
        assert re.fullmatch(r"\d: (MEL|SEK) · Fitzpatrick type (2|4) · lesion [\d.]+% of the image", caption)


@pytest.mark.django_db(
    transaction=True
)  # the admin's own commits: an eager task runs before the page answers
def test_scheduling_a_batch_eagerly_says_it_finished_and_links_to_it(client, library, checkpoint):
    client.force_login(AdminFactory(username="dr.eager"))
    url = reverse("admin:library_generationbatch_add")
    response = client.post(url, {**BATCH_FORM, "checkpoint": checkpoint.pk, "action": "schedule"})
    batch = GenerationBatch.objects.get()
    assert batch.status == "succeeded"
    change = reverse("admin:library_generationbatch_change", args=[batch.pk])
    assert response.status_code == 302 and response["Location"] == change
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert f'<a href="{change}">Batch {batch.pk}</a> finished in ' in message and message.endswith(
        ": 4 images"
    )
    page = client.get(change).content.decode()
    assert "4 / 4 · Succeeded" in page and "succeeded done" not in page


def _zip_with_bad_rows() -> io.BytesIO:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("one.png", "two.png"):
            png = io.BytesIO()
            PILImage.fromarray(rng.integers(90, 230, (40, 40, 3), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"set/{name}", png.getvalue())
        zf.writestr("set/bad.png", b"not a png")
        zf.writestr(
            "set/manifest.csv",
            "image,condition,fitzpatrick\none.png,MEL,2\ntwo.png,NEV,\nbad.png,MEL,1\nthree.png,MEL,1\n",
        )
    buf.seek(0)
    buf.name = "set.zip"
    return buf


@pytest.mark.django_db(transaction=True)
def test_an_import_with_rejected_rows_finishes_with_errors_naming_files_inside_the_archive(client, library):
    client.force_login(AdminFactory(username="dr.import"))
    response = client.post(
        reverse("admin:library_importjob_add"), {"archive": _zip_with_bad_rows(), "format": "auto"}
    )
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.SUCCEEDED  # the machine's status: it ran to the end
    assert job.outcome == "Finished with 2 errors"
    reasons = [e["reason"] for e in job.errors]
    assert reasons[0].startswith("set/bad.png: not an image")
    assert reasons[1] == "missing file: set/three.png"
    assert not any("dermgan-import-" in r or str(library) in r for r in reasons)
    change = reverse("admin:library_importjob_change", args=[job.pk])
    (message,) = list(get_messages(response.wsgi_request))
    assert message.level_tag == "warning"
    assert f'<a href="{change}">Import {job.pk}</a>: finished with 2 errors in ' in str(message)
    assert "(2 images imported)" in str(message)
    listing = client.get(reverse("admin:library_importjob_changelist")).content.decode()
    assert "Finished with 2 errors" in listing
    assert client.get(reverse("library-import-progress", args=[job.pk])).json()["outcome"] == (
        "Finished with 2 errors"
    )
    assert "line 4: set/bad.png: not an image" in client.get(change).content.decode()


@pytest.mark.django_db
def test_a_job_still_waiting_for_a_worker_is_reported_as_queued_and_a_failure_as_failed(rf):
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = rf.post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    queued = ImportJob.objects.create()
    failed = ImportJob.objects.create(status=ImportJob.Status.FAILED, error="broker down")
    job_message(request, job=queued, label="Import", url="/q/")
    job_message(request, job=failed, label="Import", url="/f/")
    first, second = list(request._messages)
    assert str(first) == f'<a href="/q/">Import {queued.pk}</a> is queued: its page shows the progress.'
    assert second.level_tag == "error"
    assert (
        str(second) == f'<a href="/f/">Import {failed.pk}</a> failed: broker down'
    )  # never started: no time


def test_a_runs_progress_field_reads_its_status_and_percentage_not_succeeded_done():
    from turingtest.evaluation.admin import _progress
    from turingtest.evaluation.models import FidelityRun

    done = _progress(FidelityRun(status="succeeded", progress=1.0, progress_message="done"))
    assert "Succeeded · 100%" in done and "done" not in done.replace("</progress>", "")
    running = _progress(FidelityRun(status="running", progress=0.4, progress_message="computing features"))
    assert "Running · 40% · computing features" in running
