"""Batches matched to real images: spec derivation, the service, the CLI, the admin action,
idempotent chunks, and provenance that raters never see."""

from __future__ import annotations

import io
import json
import math
import uuid

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from tests.factories import AdminFactory, ResearcherFactory, rater_for
from tests.library_support import checkpoint_fixture, library_fixture  # noqa: F401  (fixtures)
from turingtest.library import rendering, scheduling, store
from turingtest.library.models import GenerationBatch, GenerationChunk, Image
from turingtest.library.tasks import render_chunk


def _ellipse(size: int, centre: tuple[float, float], radii: tuple[float, float], angle: float) -> np.ndarray:
    """Boolean (size, size) ellipse; radii as fractions, angle counter-clockwise on screen."""
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    dx, dy = xx - centre[0], yy - centre[1]
    t = math.radians(angle)
    u = dx * math.cos(t) - dy * math.sin(t)
    v = dx * math.sin(t) + dy * math.cos(t)
    return (u / radii[0]) ** 2 + (v / radii[1]) ** 2 <= 1.0


def real_image(
    code: str = "MEL",
    *,
    centre: tuple[float, float] = (0.4, 0.55),
    radii: tuple[float, float] = (0.25, 0.12),
    angle: float = 30.0,
    skin: tuple[int, int, int] = (190, 150, 130),
    fitzpatrick: int | None = None,
    with_mask: bool = True,
) -> Image:
    """A real photo stand-in: a dark elliptic lesion on even skin, imported through ``image_store``."""
    mask = _ellipse(64, centre, radii, angle)
    pixels = np.empty((64, 64, 3), dtype=np.uint8)
    pixels[:] = skin
    pixels[mask] = (90, 50, 40)
    return store.image_store(
        pil_image=PILImage.fromarray(pixels),
        kind=Image.Kind.REAL,
        condition=code,
        provenance={"source": "test"},
        mask=mask if with_mask else None,
        fitzpatrick=fitzpatrick,
    )


def _matched(checkpoint, images, capture, **kwargs) -> GenerationBatch:
    with capture(execute=True):
        batch = scheduling.batch_schedule_matched(
            checkpoint=checkpoint, images=images, seed=kwargs.pop("seed", 5), **kwargs
        )
    batch.refresh_from_db()
    return batch


# --- spec derivation ------------------------------------------------------------------------


def test_a_mirror_has_the_real_images_condition_lesion_area_location_orientation_and_skin(library, settings):
    settings.IMAGE_SIZE = 128  # fine enough to measure the geometry
    real = real_image("BCC", centre=(0.4, 0.55), radii=(0.25, 0.12), angle=30.0, fitzpatrick=2)
    entry = rendering.spec_mirroring(image=real, size=128)
    lesion = entry["spec"]["lesions"][0]
    assert entry["mirrors_image_id"] == real.pk and entry["geometry"] == "mask"
    assert lesion["condition"] == "BCC"
    assert lesion["area_fraction"] == pytest.approx(real.lesion_area_fraction)
    assert lesion["area_fraction"] == pytest.approx(math.pi * 0.25 * 0.12, rel=0.03)
    assert lesion["center"] == pytest.approx([0.4, 0.55], abs=0.01)
    assert lesion["angle_deg"] == pytest.approx(30.0, abs=3.0)
    assert lesion["aspect"] == pytest.approx(0.25 / 0.12, rel=0.08)
    assert entry["spec"]["skin_rgb"] == real.skin_rgb
    assert np.abs(np.array(real.skin_rgb) - (190, 150, 130)).max() <= 3
    assert entry["fitzpatrick"] == 2  # a label is carried over

    from generator.semantic_map import MapSpec

    drawn = rendering.spec_mask(MapSpec.from_dict(entry["spec"]))
    with real.mask.open("rb") as fh:
        real_mask = np.asarray(PILImage.open(fh).convert("L")) > 127
    assert drawn.mean() == pytest.approx(real_mask.mean(), rel=0.05)
    assert (drawn & real_mask).sum() / (drawn | real_mask).sum() > 0.9


def test_an_estimated_skin_type_is_not_carried_over_as_a_label(library):
    real = real_image("MEL")
    assert real.fitzpatrick_source == "estimate"
    assert rendering.spec_mirroring(image=real, size=32)["fitzpatrick"] is None


def test_without_a_mask_the_mirror_takes_the_stored_box_and_else_a_centred_lesion(library):
    boxed = real_image("NEV", with_mask=False)
    Image.objects.filter(pk=boxed.pk).update(lesion_bbox=[0.1, 0.2, 0.5, 0.4], lesion_area_fraction=0.06)
    boxed.refresh_from_db()
    entry = rendering.spec_mirroring(image=boxed, size=32)
    lesion = entry["spec"]["lesions"][0]
    assert entry["geometry"] == "box"
    assert lesion["center"] == pytest.approx([0.3, 0.3]) and lesion["area_fraction"] == 0.06
    assert (lesion["aspect"], lesion["angle_deg"]) == (pytest.approx(2.0), 0.0)
    bare = real_image("NEV", with_mask=False, skin=(120, 90, 70))
    entry = rendering.spec_mirroring(image=bare, size=32)
    assert entry["geometry"] == "default"
    assert entry["spec"]["lesions"][0]["center"] == [0.5, 0.5]
    assert entry["spec"]["lesions"][0]["area_fraction"] == rendering.MATCH_DEFAULT_AREA


# --- the service and its chunks ---------------------------------------------------------------


def test_a_matched_batch_renders_k_mirrors_per_real_image_and_records_which(
    checkpoint, django_capture_on_commit_callbacks
):
    reals = [
        real_image("MEL", fitzpatrick=1),
        real_image("NEV", centre=(0.6, 0.4), skin=(120, 90, 70)),
        real_image("BCC", radii=(0.15, 0.15), skin=(200, 170, 150), fitzpatrick=3),
    ]
    batch = _matched(checkpoint, reals, django_capture_on_commit_callbacks, per_real=2, chunk_size=4)
    assert (batch.status, batch.count, batch.n_done) == ("succeeded", 6, 6)
    assert batch.distribution["condition_weights"] == {"BCC": 1.0, "MEL": 1.0, "NEV": 1.0}
    mirrors = list(batch.images.order_by("batch_index"))
    assert [m.provenance["mirrors_image_id"] for m in mirrors] == [r.pk for r in reals for _ in range(2)]
    for mirror in mirrors:
        real = Image.objects.get(pk=mirror.provenance["mirrors_image_id"])
        assert mirror.kind == "synthetic" and mirror.condition_id == real.condition_id
        assert mirror.skin_rgb == real.skin_rgb
        assert mirror.provenance["spec"] == batch.specs[mirror.batch_index]["spec"]
        assert mirror.lesion_area_fraction == pytest.approx(real.lesion_area_fraction, rel=0.2)
    assert [m.fitzpatrick for m in mirrors[0:2]] == [1, 1] and [m.fitzpatrick for m in mirrors[4:6]] == [3, 3]
    assert mirrors[2].fitzpatrick_source == "estimate"  # no label to carry over
    # The tiny network has no dropout, so its render seed changes nothing: repeats are moved slightly.
    assert len({m.sha256 for m in mirrors}) == 6
    assert [e["jittered"] for e in batch.specs] == [False, True] * 3
    first, repeat = (batch.specs[i]["spec"]["lesions"][0] for i in (0, 1))
    assert math.dist(first["center"], repeat["center"]) <= 0.04 * math.sqrt(2)
    assert repeat["area_fraction"] == pytest.approx(first["area_fraction"], rel=0.11)
    assert batch.specs[1]["spec"]["skin_rgb"] == batch.specs[0]["spec"]["skin_rgb"]


def test_running_a_matched_chunk_twice_changes_nothing_and_a_lost_image_comes_back_the_same(
    checkpoint, django_capture_on_commit_callbacks
):
    reals = [real_image("MEL"), real_image("SEK", skin=(150, 110, 90))]
    batch = _matched(checkpoint, reals, django_capture_on_commit_callbacks, per_real=2)
    chunk = batch.chunks.get()
    original = dict(batch.images.values_list("batch_index", "sha256"))
    assert render_chunk.apply(kwargs={"chunk_pk": chunk.pk}).get() == "already done"
    # A crash after storing some images: the real image's row even changed since scheduling.
    Image.objects.filter(batch=batch, batch_index=2).delete()
    Image.objects.filter(pk=reals[1].pk).update(skin_rgb=[10, 10, 10], lesion_area_fraction=0.3)
    GenerationChunk.objects.filter(pk=chunk.pk).update(status="running")
    GenerationBatch.objects.filter(pk=batch.pk).update(status="running")
    assert render_chunk.apply(kwargs={"chunk_pk": chunk.pk}).get() == "rendered 1 of 4"
    assert render_chunk.apply(kwargs={"chunk_pk": chunk.pk}).get() == "already done"
    assert dict(batch.images.values_list("batch_index", "sha256")) == original
    batch.refresh_from_db()
    assert (batch.status, batch.n_done) == ("succeeded", 4)


def test_the_service_names_what_it_refuses(checkpoint, django_capture_on_commit_callbacks):
    ak = real_image("AK")
    mel = real_image("MEL", skin=(160, 120, 100))
    with pytest.raises(store.LibraryError, match=rf"cannot render condition\(s\) AK \(real images {ak.pk}\)"):
        scheduling.batch_schedule_matched(checkpoint=checkpoint, images=[ak, mel], seed=1)
    with pytest.raises(store.LibraryError, match="selection is empty"):
        scheduling.batch_schedule_matched(checkpoint=checkpoint, images=[], seed=1)
    with pytest.raises(store.LibraryError, match="per-real count must be 1–100"):
        scheduling.batch_schedule_matched(checkpoint=checkpoint, images=[mel], seed=1, per_real=0)
    batch = _matched(checkpoint, [mel], django_capture_on_commit_callbacks, seed=3)
    synthetic = batch.images.get()
    with pytest.raises(
        store.LibraryError, match=f"only real images can be mirrored; synthetic: {synthetic.pk}"
    ):
        scheduling.batch_schedule_matched(checkpoint=checkpoint, images=[synthetic], seed=1)
    with pytest.raises(store.LibraryError, match=f"batch {batch.pk} already renders"):
        scheduling.batch_schedule_matched(checkpoint=checkpoint, images=[mel], seed=3)
    assert GenerationBatch.objects.count() == 1


# --- the command ---------------------------------------------------------------------------


def _cli(*args: str) -> str:
    out = io.StringIO()
    call_command("schedule_batch", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)  # the command's own commit runs the eager enqueue
def test_schedule_batch_match_real_filters_by_condition_and_labelled_type_with_k_per_image(checkpoint):
    mel1 = real_image("MEL", fitzpatrick=1)
    real_image("MEL", fitzpatrick=4, skin=(150, 110, 90))
    bcc1 = real_image("BCC", fitzpatrick=1, skin=(200, 170, 150))
    real_image("NEV", fitzpatrick=1, skin=(180, 140, 120))  # filtered out by condition
    estimated = real_image("BCC", skin=(170, 130, 110))
    Image.objects.filter(pk=estimated.pk).update(fitzpatrick=1)  # an estimate is no label, whatever it says
    # A row without the provenance key (older imports) counts as a label.
    Image.objects.filter(pk=bcc1.pk).update(provenance={"source": "test"})
    out = _cli(
        "--checkpoint", str(checkpoint.pk), "--match-real", "--conditions", "MEL,bcc",
        "--fitzpatrick", "1", "--per-real", "2", "--seed", "4", "--wait",
    )  # fmt: skip
    batch = GenerationBatch.objects.get()
    assert out.strip().splitlines()[-1] == f"batch {batch.pk} succeeded 4/4"
    assert "matching 2 real image(s), 2 mirror(s) each" in out
    mirrored = [entry["mirrors_image_id"] for entry in batch.specs]
    assert mirrored == [mel1.pk, mel1.pk, bcc1.pk, bcc1.pk]
    out = _cli("--checkpoint", str(checkpoint.pk), "--match-real", "--conditions", "NEV", "--seed", "4")
    assert out.strip().endswith("succeeded 1/1")  # one mirror each by default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match-real", "--count", "3"], "--count does not combine with --match-real"),
        (["--match-real", "--area-range", "0.1,0.2"], "--area-range do not combine with --match-real"),
        (["--match-real", "--location", "centre"], "--location do not combine with --match-real"),
        (["--count", "2", "--per-real", "2"], "--per-real only applies with --match-real"),
        ([], "--count is required"),
        (["--match-real", "--conditions", "MEL=2"], "give a list such as 'MEL,BCC'"),
        (["--match-real", "--fitzpatrick", "7"], "not a list of types 1–6"),
        (["--match-real", "--conditions", "XYZ"], "unknown condition code"),
        (["--match-real", "--conditions", "SEK"], "no real image matches --conditions SEK"),
        (["--match-real", "--conditions", "AK,MEL"], r"cannot render condition\(s\) AK \(real images \d+\)"),
    ],
)
def test_schedule_batch_match_real_refuses_inconsistent_or_empty_requests(checkpoint, args, message):
    real_image("MEL")
    real_image("AK", skin=(150, 110, 90))
    with pytest.raises(CommandError, match=message):
        _cli("--checkpoint", str(checkpoint.pk), "--seed", "1", *args)
    assert GenerationBatch.objects.count() == 0


# --- admin ---------------------------------------------------------------------------------


def test_the_admin_action_asks_for_a_checkpoint_and_k_then_schedules_the_matched_batch(
    client, checkpoint, django_capture_on_commit_callbacks
):
    client.force_login(AdminFactory())
    reals = [real_image("MEL"), real_image("NEV", skin=(150, 110, 90))]
    selection = [str(r.pk) for r in reals]
    url = reverse("admin:library_image_changelist") + "?kind__exact=real"
    page = client.post(url, {"action": "generate_matched", "_selected_action": selection, "index": 0})
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 real images selected" in html
    assert f'<option value="{checkpoint.pk}" selected>' in html  # the only checkpoint is preselected
    form = {
        "action": "generate_matched",
        "_selected_action": selection,
        "select_across": "0",
        "apply": "1",
        "checkpoint": checkpoint.pk,
        "per_real": 3,
        "seed": 12,
        "chunk_size": 4,
    }
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, form)
    batch = GenerationBatch.objects.get()
    assert done.status_code == 302 and done.url == reverse(
        "admin:library_generationbatch_change", args=[batch.pk]
    )
    assert batch.count == 6 and batch.created_by is not None
    assert [e["mirrors_image_id"] for e in batch.specs] == [reals[0].pk] * 3 + [reals[1].pk] * 3
    detail = client.get(done.url).content.decode()
    assert "2 real images</a>, 3 synthetic each" in detail

    synthetic = str(batch.images.first().pk)
    only_synthetic = client.post(
        url, {"action": "generate_matched", "_selected_action": [synthetic], "index": 0}, follow=True
    )
    assert "only real images can be mirrored" in only_synthetic.content.decode()
    ak = real_image("AK", skin=(120, 90, 70))
    refused = client.post(url, {**form, "_selected_action": [str(ak.pk)], "seed": 13})
    assert refused.status_code == 200 and "Not scheduled: the checkpoint cannot render condition(s) AK" in (
        refused.content.decode()
    )
    assert GenerationBatch.objects.count() == 1


def test_a_staff_member_finds_the_matching_link_on_a_study_draft(library):
    from turingtest.studies import services

    reals = [real_image("MEL"), real_image("NEV", skin=(150, 110, 90))]
    owner = ResearcherFactory(is_staff=True)
    study = services.study_create(owner=owner, title="Draft", config={"n_real": 2, "n_synthetic": 0}, seed=1)
    c = Client()
    c.force_login(owner)
    html = c.get(reverse("study-detail", args=[study.pk])).content.decode()
    ids = ",".join(str(r.pk) for r in reals)
    link = f"{reverse('admin:library_image_changelist')}?kind__exact=real&id__in={ids}"
    assert link.replace("&", "&amp;") in html
    c.force_login(AdminFactory())
    listing = c.get(link)
    assert listing.status_code == 200  # an unknown lookup would redirect to ?e=1
    assert listing.context["cl"].result_count == 2
    assert "generate_matched" in listing.content.decode()


def test_the_action_is_offered_only_to_those_who_may_schedule_batches(library):
    from django.contrib.auth.models import Permission

    real_image("MEL")
    viewer = ResearcherFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_image"))
    c = Client()
    c.force_login(viewer)
    url = reverse("admin:library_image_changelist")
    assert "generate_matched" not in c.get(url).content.decode()
    viewer.user_permissions.add(Permission.objects.get(codename="add_generationbatch"))
    viewer = type(viewer).objects.get(pk=viewer.pk)  # drop the cached permissions
    c.force_login(viewer)
    assert "generate_matched" in c.get(url).content.decode()


# --- blinding ------------------------------------------------------------------------------


def test_a_rater_never_receives_the_mirrored_image_or_any_provenance(
    checkpoint, django_capture_on_commit_callbacks
):
    from turingtest.studies import services

    reals = [real_image("MEL"), real_image("NEV", skin=(150, 110, 90))]
    batch = _matched(checkpoint, reals, django_capture_on_commit_callbacks)
    assert all(m.provenance["mirrors_image_id"] for m in batch.images.all())
    study = services.study_create(
        owner=ResearcherFactory(), title="Matched", config={"n_real": 2, "n_synthetic": 2}, seed=1
    )
    study = services.study_open(study=study)
    rater, _ = rater_for(study)
    c = Client()
    c.force_login(rater)
    blobs = [c.get(f"/rate/{study.pk}/").content, c.get("/rate/").content]
    state = c.get(f"/api/rate/{study.pk}/state")
    n_items = 0
    while True:
        blobs += [state.content, json.dumps(dict(state.headers)).encode()]
        body = state.json()
        body = body.get("state", body)
        if not body["item"]:
            break
        n_items += 1
        image = c.get(body["item"]["image_url"])
        blobs += [image.content, json.dumps(dict(image.headers)).encode()]
        answer = {"token": body["item"]["token"], "client_key": str(uuid.uuid4()), "says_synthetic": True}
        state = c.post(f"/api/rate/{study.pk}/answers", json.dumps(answer), content_type="application/json")
    assert n_items == 4
    blob = b"\n".join(blobs)
    for secret in (
        b"mirrors_image_id",
        b"mirror",
        b"provenance",
        b"checkpoint_sha256",
        checkpoint.sha256.encode(),
    ):
        assert secret not in blob, secret
