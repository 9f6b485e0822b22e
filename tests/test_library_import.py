"""import_images: every bad row reported with its line, good rows imported together, never twice."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from turingtest.images import png_length
from turingtest.library import imports, store
from turingtest.library.models import Image

PAD_SAMPLE = Path("/work/shared/data/pad-ufes-20-sample")


@pytest.fixture
def taxonomy(db):
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_SIZE = 32
    return settings.MEDIA_ROOT


def _photo(path: Path, seed: int, size=(48, 40), skin=(205, 160, 130)) -> Path:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(skin) + rng.normal(0, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    arr[size[1] // 3 : 2 * size[1] // 3, size[0] // 3 : 2 * size[0] // 3] = (90, 50, 40)  # lesion
    PILImage.fromarray(arr).save(path)
    return path


def _mask(path: Path, size=(48, 40)) -> Path:
    arr = np.zeros((size[1], size[0]), dtype=np.uint8)
    arr[size[1] // 3 : 2 * size[1] // 3, size[0] // 3 : 2 * size[0] // 3] = 255
    PILImage.fromarray(arr).save(path)
    return path


def _bomb(path: Path) -> Path:
    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A manifest with three good rows and one of every kind of bad row."""
    root = tmp_path / "ds"
    root.mkdir()
    _photo(root / "a.png", 1)
    _photo(root / "b.jpg", 2)
    _photo(root / "c.png", 3, skin=(110, 75, 55))
    _mask(root / "a_mask.png")
    _mask(root / "small_mask.png", size=(10, 10))
    _photo(root / "d.png", 4)
    (root / "notes.png").write_text("not an image at all")
    full = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        full, "JPEG"
    )
    (root / "cut.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    _bomb(root / "bomb.png")
    _photo(root / "e.png", 6)
    (root / "manifest.csv").write_text(
        "image,mask,condition,fitzpatrick,bbox,source,licence,patient_id\n"
        "a.png,a_mask.png,MEL,2.0,,unit-test,CC0,P1\n"  # line 2: good, with a mask
        "b.jpg,,melanocytic nevus,,,unit-test,CC0,P2\n"  # line 3: good, skin type estimated
        "c.png,,BKL,VI,4 4 20 20,unit-test,CC0,P3\n"  # line 4: good, ISIC synonym, a box
        "missing.png,,MEL,2,,,,\n"  # line 5
        "notes.png,,MEL,2,,,,\n"  # line 6
        "cut.jpg,,MEL,2,,,,\n"  # line 7
        "bomb.png,,MEL,2,,,,\n"  # line 8
        "e.png,,DRAGONSCALE,2,,,,\n"  # line 9
        "d.png,small_mask.png,MEL,2,,,,\n"  # line 10
        "e.png,,MEL,7,,,,\n"  # line 11
    )
    return root


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", *args, stdout=out, stderr=err, verbosity=0)
    return out.getvalue(), err.getvalue()


def test_it_imports_the_good_rows_and_reports_every_bad_one_with_its_line(taxonomy, media, dataset, settings):
    settings.IMAGE_MAX_PIXELS = 10_000_000
    out, err = _run(str(dataset / "manifest.csv"))
    assert "imported 3" in out and "7 bad rows" in out
    assert "line 5: missing file" in err
    assert "line 6: not an image" in err
    assert "line 7: truncated or corrupt image" in err
    assert "line 8: decompression bomb refused" in err
    assert "line 9: unknown condition 'DRAGONSCALE'" in err
    assert "line 10: mask size mismatch" in err
    assert "line 11: Fitzpatrick type '7'" in err
    images = {img.provenance["original_name"]: img for img in Image.objects.all()}
    assert set(images) == {"a.png", "b.jpg", "c.png"}
    a, b, c = images["a.png"], images["b.jpg"], images["c.png"]
    assert (a.condition.code, a.fitzpatrick, a.patient_id, a.kind) == ("MEL", 2, "P1", "real")
    assert a.fitzpatrick_source == "label" and a.has_labelled_fitzpatrick and a.ita_degrees is not None
    assert a.mask and a.lesion_area_fraction == pytest.approx(1 / 9, abs=0.05)
    assert b.condition.code == "NEV" and b.fitzpatrick_source == "estimate" and not b.has_labelled_fitzpatrick
    assert b.fitzpatrick in {1, 2, 3} and b.skin_rgb is not None  # light skin, estimated from its border
    assert c.condition.code == "SEK" and c.fitzpatrick == 6 and c.lesion_bbox is not None
    for image in images.values():
        assert (image.width, image.height) == (32, 32)
        assert image.file.name.startswith("library/") and image.file.name.endswith(".png")
        with default_storage.open(image.file.name) as fh:
            assert PILImage.open(fh).size == (32, 32)


def test_a_second_run_imports_nothing_twice(taxonomy, media, dataset):
    _run(str(dataset / "manifest.csv"))
    n = Image.objects.count()
    out, _ = _run(str(dataset / "manifest.csv"))
    assert "imported 0" in out and f"{n} already in the library" in out
    assert Image.objects.count() == n


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(taxonomy, media, dataset):
    out, err = _run(str(dataset / "manifest.csv"), "--dry-run")
    assert "dry run" in out and "would import 3" in out and "line 5: missing file" in err
    assert Image.objects.count() == 0
    assert not (media / "library").exists() or not any((media / "library").iterdir())


def test_good_rows_are_all_or_nothing_when_the_insert_fails(taxonomy, media, dataset, monkeypatch):
    real_create = Image.objects.create
    calls = {"n": 0}

    def failing_create(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (injected)")
        return real_create(**kwargs)

    monkeypatch.setattr(Image.objects, "create", failing_create)
    with pytest.raises(RuntimeError, match="injected"):
        imports.images_import(manifest=dataset / "manifest.csv")
    assert Image.objects.count() == 0
    leftovers = list((media / "library").iterdir()) if (media / "library").exists() else []
    assert leftovers == []  # the files written before the insert were removed


def test_strict_mode_exits_non_zero_on_bad_rows_and_an_unknown_format_is_refused(taxonomy, media, dataset):
    with pytest.raises(CommandError, match="7 bad rows"):
        call_command(
            "import_images",
            str(dataset / "manifest.csv"),
            "--strict",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            verbosity=0,
        )
    (dataset / "odd.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(CommandError, match="cannot tell the manifest format"):
        _run(str(dataset / "odd.csv"))


def test_fitzpatrick_values_from_datasets_parse():
    assert imports.parse_fitzpatrick("2.0") == 2
    assert imports.parse_fitzpatrick("") is None
    assert imports.parse_fitzpatrick("nan") is None
    assert imports.parse_fitzpatrick("IV") == 4
    for bad in ("0", "2.5", "seven"):
        with pytest.raises(store.LibraryError, match="Fitzpatrick"):
            imports.parse_fitzpatrick(bad)


def test_the_pad_ufes_20_layout_is_detected_and_its_codes_mapped(taxonomy, media, tmp_path):
    root = tmp_path / "pad"
    (root / "images").mkdir(parents=True)
    for i, name in enumerate(["PAT_1_1_1.png", "PAT_2_2_2.png", "PAT_3_3_3.png"]):
        _photo(root / "images" / name, 10 + i)
    (root / "metadata.csv").write_text(
        "patient_id,lesion_id,fitspatrick,region,diagnostic,img_id,biopsed\n"
        "PAT_1,1,2.0,ARM,ACK,PAT_1_1_1.png,True\n"
        "PAT_2,2,,FACE,SEK,PAT_2_2_2.png,False\n"
        "PAT_3,3,3.0,NECK,XYZ,PAT_3_3_3.png,True\n"
    )
    out, err = _run(str(root / "metadata.csv"))
    assert out.startswith("pad-ufes-20:") and "imported 2" in out
    assert "line 4: unknown condition 'XYZ'" in err
    ack = Image.objects.get(patient_id="PAT_1")
    assert ack.condition.code == "AK" and ack.fitzpatrick == 2
    assert ack.provenance["source"] == "PAD-UFES-20" and ack.provenance["lesion_id"] == "1"
    assert ack.fitzpatrick_source == "label"
    assert Image.objects.get(patient_id="PAT_2").fitzpatrick_source == "estimate"
    assert list(Image.objects.fitzpatrick_labelled()) == [ack]


def test_isic_folders_pair_images_with_their_segmentations(taxonomy, media, tmp_path):
    root = tmp_path / "isic"
    root.mkdir()
    _photo(root / "ISIC_0000001.jpg", 20)
    _mask(root / "ISIC_0000001_segmentation.png")
    _photo(root / "ISIC_0000002.jpg", 21)
    (root / "GroundTruth.csv").write_text(
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0000001,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n"
        "ISIC_0000002,1.0,0.0,0.0,0.0,0.0,0.0,0.0\nISIC_0000003,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
    )
    out, err = _run(str(root / "GroundTruth.csv"))
    assert out.startswith("isic:") and "imported 2" in out and "line 4: missing file" in err
    nev = Image.objects.get(condition__code="NEV")
    assert nev.mask and nev.lesion_area_fraction == pytest.approx(1 / 9, abs=0.05)
    assert Image.objects.get(condition__code="MEL").mask.name == ""


def test_real_and_synthetic_style_inputs_leave_with_identical_file_properties(taxonomy, media, tmp_path):
    jpeg_photo = _photo(tmp_path / "real.jpg", 30, size=(60, 45))
    rendered = PILImage.fromarray(np.random.default_rng(31).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    real = store.image_store(pil_image=jpeg_photo, kind="real", condition="MEL", provenance={})
    fake = store.image_store(pil_image=rendered, kind="synthetic", condition="MEL", provenance={})
    for image in (real, fake):
        assert image.file.name.startswith("library/") and len(Path(image.file.name).stem) == 32
        with default_storage.open(image.file.name) as fh:
            im = PILImage.open(fh)
            assert (im.format, im.mode, im.size, sorted(im.info)) == ("PNG", "RGB", (32, 32), [])
        assert image.file.size == png_length(32)  # the same byte length whatever the content
    assert (real.native_width, real.native_height) == (60, 45) and real.native_side == 45
    assert (fake.native_width, fake.native_height) == (64, 64)


def test_storing_the_same_pixels_twice_is_refused_or_returns_the_first(taxonomy, media):
    im = PILImage.new("RGB", (40, 40), (180, 140, 120))
    first = store.image_store(pil_image=im, kind="real", condition="NEV", provenance={"procedural": True})
    with pytest.raises(store.DuplicateImage, match=f"image {first.pk}"):
        store.image_store(pil_image=im, kind="real", condition="NEV", provenance={})
    again = store.image_store(
        pil_image=im, kind="real", condition="NEV", provenance={}, if_duplicate="existing"
    )
    assert again.pk == first.pk and Image.objects.count() == 1


@pytest.mark.skipif(not PAD_SAMPLE.is_dir(), reason=f"PAD-UFES-20 sample not present at {PAD_SAMPLE}")
def test_the_pad_ufes_20_sample_imports_with_no_bad_rows_and_not_twice(taxonomy, media):
    out, err = _run(str(PAD_SAMPLE / "metadata.csv"), "--limit", "12")
    assert out.startswith("pad-ufes-20: 12 rows, imported 12") and "0 bad rows" in out, err
    codes = set(Image.objects.values_list("condition__code", flat=True))
    assert codes <= {"AK", "BCC", "MEL", "NEV", "SCC", "SEK"}
    assert all(image.fitzpatrick in range(1, 7) for image in Image.objects.all())
    out, _ = _run(str(PAD_SAMPLE / "metadata.csv"), "--limit", "12")
    assert "imported 0, 12 already in the library" in out


def test_a_patient_id_too_long_for_the_column_is_a_bad_row_not_a_failed_import(taxonomy, media, tmp_path):
    _photo(tmp_path / "ok.png", 40)
    _photo(tmp_path / "long.png", 41)
    (tmp_path / "m.csv").write_text(f"image,condition,patient_id\nok.png,MEL,P1\nlong.png,MEL,{'x' * 70}\n")
    out, err = _run(str(tmp_path / "m.csv"))
    assert "imported 1" in out and "line 3: patient_id 'xxxxxxxxxxxxxxxxxxxx'… is longer than 64" in err


# --- uploaded zips: bombs refused before extraction, the upload deleted once finished --------


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _photo_bytes(seed: int) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(seed).integers(90, 220, (40, 40, 3), dtype=np.uint8)).save(
        out, "PNG"
    )
    return out.getvalue()


def _job(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from turingtest.library.models import ImportJob

    job = ImportJob.objects.create(format="auto")
    job.archive.save("upload.zip", SimpleUploadedFile("upload.zip", data))
    return job


def _nothing_extracted(monkeypatch) -> None:
    from turingtest.library import archives

    def refuse(*args, **kwargs):
        raise AssertionError("a member was extracted")

    monkeypatch.setattr(archives, "_copy_counted", refuse)


def test_a_highly_compressible_member_is_refused_before_anything_is_extracted(taxonomy, media, monkeypatch):
    bomb = _zip(
        {"a.png": _photo_bytes(1), "m.csv": b"image,condition\na.png,NEV\n", "pad.bin": bytes(3 << 20)}
    )
    job = _job(bomb)
    name = job.archive.name
    _nothing_extracted(monkeypatch)
    job = imports.import_job_run(job=job)
    assert job.status == "failed"
    assert "'pad.bin' inflates" in job.error and "100:1 limit" in job.error and "zip bomb" in job.error
    assert Image.objects.count() == 0
    # Failed or not, the upload is gone; its sha256 stays on the job.
    import hashlib

    assert job.archive_sha256 == hashlib.sha256(bomb).hexdigest()
    assert not job.archive.name and not default_storage.exists(name)


def test_the_total_uncompressed_size_is_capped_by_the_setting(taxonomy, media, settings, monkeypatch):
    members = {f"{i}.png": _photo_bytes(i) for i in range(3)}
    members["m.csv"] = b"image,condition\n" + b"".join(f"{i}.png,NEV\n".encode() for i in range(3))
    total = sum(len(v) for v in members.values())
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = total - 1
    _nothing_extracted(monkeypatch)
    job = imports.import_job_run(job=_job(_zip(members)))
    assert job.status == "failed" and f"inflate to {total} bytes" in job.error
    assert "IMPORT_MAX_UNCOMPRESSED_BYTES" in job.error
    monkeypatch.undo()
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = total
    job = imports.import_job_run(job=_job(_zip(members)))
    assert (job.status, job.n_imported) == ("succeeded", 3), job.error
    assert not job.archive.name and len(job.archive_sha256) == 64  # deleted after a success too


def test_a_member_whose_header_lies_about_its_size_stops_the_extraction(tmp_path):
    import zipfile

    from turingtest.library import archives
    from turingtest.library.store import LibraryError

    data = bytearray(_zip({"pad.bin": bytes(300_000)}))
    # Declare 1,000 bytes in the local and the central header (the real member inflates to 300,000).
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        data[at : at + 4] = struct.pack("<I", 1000)
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    assert zipfile.ZipFile(tmp_path / "liar.zip").infolist()[0].file_size == 1000
    (tmp_path / "x").mkdir()
    with pytest.raises(LibraryError, match="pad.bin"):
        archives.archive_extract(
            archive=tmp_path / "liar.zip", target=tmp_path / "x", max_bytes=10**6, max_ratio=100
        )
    assert (tmp_path / "x" / "pad.bin").stat().st_size <= 1000
    # And the counting itself, for a stream that inflates past its header whatever zipfile does.
    info = zipfile.ZipInfo("big.bin")
    info.file_size, info.compress_size = 1000, 1000
    with pytest.raises(LibraryError, match="inflates past"):
        archives._copy_counted(io.BytesIO(bytes(5000)), io.BytesIO(), info=info, budget=10**6, max_ratio=100)


def test_the_import_limits_come_from_the_environment():
    import os
    import subprocess
    import sys

    code = "from django.conf import settings as s; print(s.IMPORT_MAX_UNCOMPRESSED_BYTES, s.IMPORT_MAX_COMPRESSION_RATIO)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_MAX_")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    run = [sys.executable, "-c", f"import django; django.setup(); {code}"]
    assert subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split() == [
        str(4 * 1024**3),
        "100",
    ]
    env["IMPORT_MAX_UNCOMPRESSED_BYTES"] = "12345"
    assert (
        subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()[0] == "12345"
    )
    env["IMPORT_MAX_UNCOMPRESSED_BYTES"] = "lots"
    failed = subprocess.run(run, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "IMPORT_MAX_UNCOMPRESSED_BYTES must be an integer" in failed.stderr
