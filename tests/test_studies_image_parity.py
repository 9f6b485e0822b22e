"""Constant-size images, byte size as a leak, sharpness and native-resolution parity of a study."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from PIL import Image as PILImage

from tests.factories import ConditionFactory, ImageFactory, ResearcherFactory, rater_for
from turingtest.images import png_length
from turingtest.library import store as library
from turingtest.library.models import Image
from turingtest.studies import audit, services

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_images(settings, tmp_path):
    settings.IMAGE_SIZE = 32
    settings.MEDIA_ROOT = tmp_path / "media"


def _photo(seed: int, size: tuple[int, int]) -> PILImage.Image:
    """A noisy, textured 'photo': compresses badly, which made real files large before."""
    rng = np.random.default_rng(seed)
    base = np.array([180, 140, 120]) + rng.normal(0, 25, (size[1], size[0], 3))
    return PILImage.fromarray(base.clip(0, 255).astype(np.uint8))


def _render(seed: int, size: int) -> PILImage.Image:
    """A smooth 'render': compresses well, which made synthetic files small before."""
    y, x = np.mgrid[0:size, 0:size] / size
    arr = np.stack([150 + 60 * x, 120 + 40 * y, 100 + 10 * (x + y) + seed], axis=-1)
    return PILImage.fromarray(arr.clip(0, 255).astype(np.uint8))


def _study_of_stored_images(n: int = 6):
    condition = ConditionFactory(code="PAR", name="Parity", map_index=400)
    for i in range(n):
        library.image_store(
            pil_image=_photo(i, (300 + 10 * i, 200)), kind="real", condition=condition, provenance={}
        )
        library.image_store(pil_image=_render(i, 32), kind="synthetic", condition=condition, provenance={})
    study = services.study_create(
        owner=ResearcherFactory(), title="parity", config={"n_real": n, "n_synthetic": n}, seed=3
    )
    return services.study_open(study=study)


def test_every_image_response_of_a_rater_has_the_same_length_and_headers_whatever_the_image(small_images):
    study = _study_of_stored_images()
    rater, assignment = rater_for(study)
    kind_of = {
        p.public_token: p.item.image.kind for p in assignment.presentations.select_related("item__image")
    }
    c = Client(HTTP_ACCEPT_ENCODING="gzip, deflate, br")  # as a browser asks: nothing may compress
    c.force_login(rater)
    state = c.get(f"/api/rate/{study.pk}/state").json()
    responses: dict[str, list] = {"real": [], "synthetic": []}
    while state["item"]:
        token = state["item"]["token"]
        response = c.get(state["item"]["image_url"])
        assert response.status_code == 200
        responses[kind_of[token]].append(response)
        payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": False}
        state = c.post(
            f"/api/rate/{study.pk}/answers", json.dumps(payload), content_type="application/json"
        ).json()["state"]
    everything = responses["real"] + responses["synthetic"]
    assert len(responses["real"]) == len(responses["synthetic"]) == 6
    assert len({r.content for r in everything}) == 12  # different content ...
    headers = [{k.lower(): v for k, v in r.headers.items()} for r in everything]
    assert all(h == headers[0] for h in headers)  # ... identical headers, values included
    assert {len(r.content) for r in everything} == {png_length(32)} == {int(headers[0]["content-length"])}
    forbidden = {"etag", "last-modified", "content-disposition", "expires", "set-cookie", "content-encoding"}
    assert not forbidden & set(headers[0])


def _audit(study) -> str:
    out = io.StringIO()
    call_command("audit_leaks", str(study.pk), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(name + " "))


def test_audit_leaks_passes_with_byte_size_at_chance_and_reports_sharpness_as_content(small_images):
    study = _study_of_stored_images()
    out = _audit(study)
    assert " 0.500 " in _row(out, "byte_size") and "FLAG" not in _row(out, "byte_size")
    assert " 0.500 " in _row(out, "header:content-length")
    assert "content-driven" in _row(out, "sharpness")  # noisy photos vs smooth renders: reported only
    assert "comparable native resolution" in out and "no leak flagged" in out


def test_audit_leaks_fails_when_stored_files_have_content_dependent_sizes(small_images):
    study = _study_of_stored_images()
    for image in Image.objects.filter(kind="synthetic"):
        with image.file.open("rb") as fh:
            pixels = PILImage.open(io.BytesIO(fh.read())).convert("RGB")
        buf = io.BytesIO()
        pixels.save(buf, format="PNG", compress_level=9)  # same pixels, the old compressed encoding
        image.file.save("old.png", ContentFile(buf.getvalue()))
    with pytest.raises(CommandError, match="byte_size"):
        _audit(study)


# --- resolution parity ------------------------------------------------------------------------


def _study_with_native_sides(real: list[int | None], synthetic: list[int | None], code: str = "RES"):
    condition = ConditionFactory(code=code, name=f"Resolution {code}", map_index=401 + len(code))
    for kind, sides in (("real", real), ("synthetic", synthetic)):
        for side in sides:
            ImageFactory(kind=kind, condition=condition, native_width=side, native_height=side and side + 10)
    study = services.study_create(
        owner=ResearcherFactory(),
        title="resolution",
        config={"n_real": len(real), "n_synthetic": len(synthetic), "pool": {"conditions": [code]}},
        seed=1,
    )
    return study


def test_a_128_px_checkpoint_against_larger_photos_is_flagged_and_the_page_warns(client):
    # stored at 32 px (the factory's size): synthetic rendered at 16 and upscaled, photos downscaled
    study = _study_with_native_sides(real=[64, 80, 120, 64], synthetic=[16, 16, 16, 16])
    parity = audit.resolution_parity(study=study)
    assert parity.differs and parity.auc == 1.0
    real, synthetic = parity.kinds
    assert (real.median_side, real.n_upscaled, synthetic.median_side, synthetic.n_upscaled) == (72, 0, 16, 4)
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Warning: real and synthetic images differ in native resolution" in page
    assert "64 / 72 / 120" in page and "16 / 16 / 16" in page


def test_downscaled_photos_and_renders_at_the_stored_size_are_comparable(client):
    study = _study_with_native_sides(real=[64, 300, 1000], synthetic=[32, 32, 32])
    parity = audit.resolution_parity(study=study)
    assert not parity.differs and parity.auc == 0.5
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Native resolution" in page and "Warning:" not in page


def test_unknown_native_resolutions_are_said_not_guessed():
    study = _study_with_native_sides(real=[None, None], synthetic=[16, 16])
    parity = audit.resolution_parity(study=study)
    assert not parity.differs and parity.auc is None
    assert parity.message == "native resolution unknown for every real item"
    mixed = audit.resolution_parity(
        study=_study_with_native_sides(real=[64, None, 64], synthetic=[16, 16, 16], code="RES2")
    )
    assert mixed.differs and "(1 items of unknown native resolution left out)" in mixed.message


def test_audit_leaks_reports_resolution_parity(small_images):
    study = _study_with_native_sides(real=[64, 64, 64, 64], synthetic=[16, 16, 16, 16])
    services.study_open(study=study)
    out = _audit(study)
    assert "native resolution" in out and "WARNING: real and synthetic images differ" in out
    out_json = io.StringIO()
    call_command("audit_leaks", str(study.pk), "--json", stdout=out_json, stderr=io.StringIO())
    payload = json.loads(out_json.getvalue())
    assert payload["resolution_parity"]["differs"] is True
    assert payload["resolution_parity"]["kinds"][1]["median_side"] == 16


def test_sharpness_is_the_mean_squared_laplacian():
    flat = np.full((8, 8), 100.0)
    assert audit.sharpness(flat) == 0.0
    checker = (np.indices((6, 6)).sum(axis=0) % 2) * 10.0
    assert audit.sharpness(checker) == pytest.approx(40.0**2)  # |Laplacian| = 4 * 10 everywhere inside
