"""Media in S3-compatible object storage, end to end against a real S3 server (moto's server mode).

Import, rendering, the rater's ``/img/`` and the study package all go through the storage API:
every file lands in the bucket, none under ``MEDIA_ROOT``, and ``/img/`` still streams identical
bytes-and-headers for real and synthetic images (never a redirect to a storage URL).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import uuid
import zipfile

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from tests.factories import ResearcherFactory, rater_for
from tests.library_support import distribution, library_fixture, tiny_checkpoint  # noqa: F401  (fixtures)
from tests.manage_support import run_manage
from tests.s3_support import CREDENTIALS, REGION, S3Media, s3_endpoint, s3_media  # noqa: F401  (fixtures)
from turingtest import exports
from turingtest.library import checkpoints, scheduling
from turingtest.library.models import GeneratorCheckpoint, Image, ImportJob
from turingtest.library.tasks import import_images
from turingtest.objectstore import S3_BACKEND, s3_storage
from turingtest.studies import services


def test_the_s3_backend_is_chosen_by_the_bucket_variable_and_never_links_media_directly():
    assert s3_storage({}) is None and s3_storage({"AWS_STORAGE_BUCKET_NAME": ""}) is None
    entry = s3_storage({"AWS_STORAGE_BUCKET_NAME": "media", "AWS_S3_ENDPOINT_URL": "https://s3.example.org"})
    assert entry["BACKEND"] == S3_BACKEND
    options = entry["OPTIONS"]
    assert options["bucket_name"] == "media" and options["endpoint_url"] == "https://s3.example.org"
    assert options["custom_domain"] is None and options["file_overwrite"] is False
    assert options["region_name"] is None and options["default_acl"] is None


def test_a_bucket_without_django_storages_installed_fails_at_startup_with_the_fix(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "storages" else real_find_spec(name, *a)
    )
    with pytest.raises(ImproperlyConfigured, match="requirements-s3.txt"):
        s3_storage({"AWS_STORAGE_BUCKET_NAME": "media"})


SAVE_PROBE = (
    "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; "
    "print(type(default_storage._wrapped).__name__ if default_storage.save('probe/x.txt', ContentFile(b'hi')) "
    "else '', default_storage.exists('probe/x.txt'))"
)


@pytest.mark.s3
def test_the_deployment_variables_alone_put_media_in_the_bucket(s3_endpoint, tmp_path):  # noqa: F811
    import boto3

    env = {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    client.create_bucket(Bucket="dermgan-deploy")
    result = run_manage(
        ["shell", "--no-imports", "-c", SAVE_PROBE],
        {
            **env,
            "DJANGO_DEBUG": "1",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "AWS_STORAGE_BUCKET_NAME": "dermgan-deploy",
            "AWS_S3_ENDPOINT_URL": s3_endpoint,
            "AWS_S3_REGION_NAME": REGION,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "True"]
    assert client.get_object(Bucket="dermgan-deploy", Key="probe/x.txt")["Body"].read() == b"hi"
    assert not (tmp_path / "media").exists()


def _zip_upload() -> bytes:
    """Two real melanoma photos (one with its lesion mask) and their manifest, as an admin uploads them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, name in enumerate(("a.png", "b.png")):
            rng = np.random.default_rng(i)
            arr = np.clip(np.array((200, 150, 125)) + rng.normal(0, 8, (40, 48, 3)), 0, 255).astype(np.uint8)
            arr[12:28, 16:32] = (90, 50, 40)
            png = io.BytesIO()
            PILImage.fromarray(arr).save(png, "PNG")
            zf.writestr(name, png.getvalue())
        mask = np.zeros((40, 48), dtype=np.uint8)
        mask[12:28, 16:32] = 255
        png = io.BytesIO()
        PILImage.fromarray(mask).save(png, "PNG")
        zf.writestr("a_mask.png", png.getvalue())
        zf.writestr(
            "manifest.csv", "image,mask,condition,fitzpatrick\na.png,a_mask.png,MEL,2\nb.png,,MEL,3\n"
        )
    return buf.getvalue()


def _import(s3: S3Media) -> ImportJob:
    job = ImportJob.objects.create(format="auto")
    job.archive.save("upload.zip", SimpleUploadedFile("upload.zip", _zip_upload()))
    assert job.archive.name in s3.keys()  # the upload itself is in the bucket, for any worker to read
    assert import_images.apply(kwargs={"job_pk": job.pk}).get() == "succeeded"
    job.refresh_from_db()
    return job


def _render(library, django_capture_on_commit_callbacks) -> GeneratorCheckpoint:
    checkpoint = checkpoints.checkpoint_register(path=tiny_checkpoint(library / "tiny.pt"), name="tiny")
    spec = distribution(condition_weights={"MEL": 1.0}, lesions_per_image=[1, 1])
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduling.batch_schedule(
            checkpoint=checkpoint, count=2, seed=7, distribution=spec, chunk_size=2
        )
    batch.refresh_from_db()
    assert (batch.status, batch.n_done) == ("succeeded", 2), batch.error
    return checkpoint


@pytest.fixture
def s3_library(s3_media: S3Media, library, django_capture_on_commit_callbacks) -> S3Media:  # noqa: F811
    """Two imported real and two rendered synthetic melanoma images, all in the bucket."""
    job = _import(s3_media)
    assert (job.n_imported, job.errors) == (2, [])
    _render(library, django_capture_on_commit_callbacks)
    return s3_media


@pytest.mark.s3
@pytest.mark.django_db
def test_imports_and_renders_store_every_file_in_the_bucket_and_nothing_under_media_root(s3_library):
    keys = set(s3_library.keys())
    images = list(Image.objects.all())
    assert sorted(i.kind for i in images) == ["real", "real", "synthetic", "synthetic"]
    for image in images:
        assert image.file.name in keys
        assert s3_library.read(image.file.name) == image.file.open("rb").read()
    masks = [image.mask.name for image in images if image.mask]
    assert len(masks) == 3 and set(masks) <= keys  # the imported one and both rendered ones
    checkpoint = GeneratorCheckpoint.objects.get()
    assert checkpoint.file.name in keys
    # The worker renders from a cache copy of the checkpoint, outside the media folder.
    local = checkpoints.checkpoint_local_path(checkpoint)
    assert local.read_bytes() == s3_library.read(checkpoint.file.name)
    assert s3_library.media_root not in local.parents
    # The uploaded zip was deleted from the bucket once imported; only its sha256 is kept.
    job = ImportJob.objects.get()
    assert job.archive.name == "" and len(job.archive_sha256) == 64
    assert not [k for k in keys if k.endswith(".zip")]
    assert s3_library.local_files() == []


def _rate_everything(study) -> dict[str, list[dict[str, str]]]:
    """Answer every item as a rater, fetching each image through /img/; headers by the image's kind."""
    rater, assignment = rater_for(study)
    c = Client()
    c.force_login(rater)
    images = {p.public_token: p.item.image for p in assignment.presentations.select_related("item__image")}
    headers: dict[str, list[dict[str, str]]] = {"real": [], "synthetic": []}
    state = c.get(f"/api/rate/{study.pk}/state").json()
    while (item := state.get("state", state)["item"]) is not None:
        response = c.get(item["image_url"])
        assert response.status_code == 200  # the bytes themselves, never a redirect to the bucket
        body = b"".join(response.streaming_content) if response.streaming else response.content
        image = images[item["token"]]
        assert body == image.file.open("rb").read()
        headers[image.kind].append({k.lower(): v for k, v in response.headers.items()})
        answer = {"token": item["token"], "client_key": str(uuid.uuid4()), "says_synthetic": True}
        posted = c.post(f"/api/rate/{study.pk}/answers", answer, content_type="application/json")
        assert posted.status_code == 201
        state = posted.json()
    return headers


@pytest.mark.s3
@pytest.mark.django_db
def test_a_rater_gets_image_bytes_from_the_bucket_with_identical_headers_and_the_package_exports(s3_library):
    owner = ResearcherFactory()
    study = services.study_create(
        owner=owner, title="S3 study", config={"n_real": 2, "n_synthetic": 2}, seed=1
    )
    study = services.study_open(study=study)
    headers = _rate_everything(study)
    assert len(headers["real"]) == 2 and len(headers["synthetic"]) == 2
    every = headers["real"] + headers["synthetic"]
    assert all(h == every[0] for h in every)  # the length too: stored files are constant-size
    assert every[0]["content-type"] == "image/png" and "location" not in every[0]
    assert not {"etag", "last-modified", "content-disposition", "expires"} & set(every[0])

    researcher = Client()
    researcher.force_login(owner)
    image = study.items.select_related("image").first().image
    thumbnail = researcher.get(reverse("study-results-image", args=[study.pk, image.public_token]))
    assert (
        thumbnail.status_code == 200 and b"".join(thumbnail.streaming_content) == image.file.open("rb").read()
    )

    buf = io.BytesIO()
    exports.write_package(study, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("judgments.csv").decode())))
        assert sorted(r["truth_kind"] for r in rows) == ["real", "real", "synthetic", "synthetic"]
        checkpoint = GeneratorCheckpoint.objects.get()
        assert {r["synthetic_checkpoint_sha256"] for r in rows if r["truth_kind"] == "synthetic"} == {
            checkpoint.sha256
        }
    assert s3_library.local_files() == []
