"""The shipped PAD-UFES-20 subset: well-formed, split by patient, importable, within budget, reproducible."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from generator.data import TAXONOMY_CONDITIONS, read_manifest
from turingtest.library import imports

SUBSET = Path(__file__).resolve().parent.parent / "fixtures" / "pad-ufes-20"
PAD_SAMPLE = Path("/work/shared/data/pad-ufes-20-sample")
PAD_CONDITIONS = {"AK", "BCC", "MEL", "NEV", "SCC", "SEK"}


def _rows(which: str) -> list[dict[str, str]]:
    with open(SUBSET / f"{which}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _build_module():
    spec = importlib.util.spec_from_file_location("pad_build_subset", SUBSET / "build_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["train", "study"])
def test_each_manifest_trains_with_256_px_photos_and_plausible_masks(which):
    rows = read_manifest(SUBSET / f"{which}.csv", TAXONOMY_CONDITIONS)
    assert {r.condition for r in rows} == PAD_CONDITIONS
    for row in rows:
        with Image.open(row.image) as im:
            assert (im.size, im.mode) == ((256, 256), "RGB")
        with Image.open(row.mask) as m:
            mask = np.asarray(m.convert("L")) > 127
        assert mask.shape == (256, 256)
        assert 0 < mask.mean() < 0.9, row.mask


def test_no_patient_has_photos_in_both_splits():
    train = {r["patient_id"] for r in _rows("train")}
    study = {r["patient_id"] for r in _rows("study")}
    assert train and study and not train & study


def test_the_study_split_has_six_photos_of_each_condition():
    counts = {c: 0 for c in PAD_CONDITIONS}
    for row in _rows("study"):
        counts[row["condition"]] += 1
    assert counts == {c: 6 for c in PAD_CONDITIONS}


def test_every_shipped_file_is_in_one_manifest_and_all_fit_in_8_mb():
    named = [r[col] for which in ("train", "study") for r in _rows(which) for col in ("image", "mask")]
    assert len(named) == len(set(named))
    files = sorted(str(p.relative_to(SUBSET)) for d in ("images", "masks") for p in (SUBSET / d).iterdir())
    assert files == sorted(named)
    assert sum((SUBSET / f).stat().st_size for f in files) <= 8_000_000


def test_the_attribution_names_source_doi_and_licence():
    text = (SUBSET / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("PAD-UFES-20", "Pacheco", "10.17632/zr7vgbcyr2.1", "CC BY 4.0"):
        assert needle in text


def test_split_by_patient_keeps_a_patients_photos_together_and_caps_each_condition():
    build = _build_module()
    rows = [
        {
            "patient_id": f"P{i // 2}",
            "diagnostic": ("NEV", "MEL", "ACK")[i % 3],
            "fitspatrick": str(1 + i % 4),
        }
        for i in range(60)
    ]
    split = build.split_by_patient(rows)
    study = [r for r in rows if split[r["patient_id"]] == "study"]
    assert study and all(
        sum(r["diagnostic"] == c for r in study) <= build.STUDY_PER_CONDITION for c in "NEV MEL ACK".split()
    )
    assert split == build.split_by_patient(list(reversed(rows)))  # order of the CSV does not matter


@pytest.mark.django_db
def test_the_importer_accepts_the_study_manifest(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_SIZE = 256
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    report = imports.images_import(manifest=SUBSET / "study.csv", dry_run=True)
    assert (report.format, report.n_would_import, report.errors) == ("manifest", 36, [])


@pytest.mark.skipif(not PAD_SAMPLE.is_dir(), reason=f"the PAD-UFES-20 sample is not at {PAD_SAMPLE}")
def test_rebuilding_from_the_shared_sample_gives_the_same_bytes(tmp_path):
    build = _build_module()
    source = tmp_path / "sample"
    (source / "images").mkdir(parents=True)
    shipped = [r for r in _rows("study")[:4]] + [r for r in _rows("train")[:4]]
    stems = {Path(r["image"]).stem for r in shipped}
    with open(PAD_SAMPLE / "metadata.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        kept = [r for r in reader if Path(r["img_id"]).stem in stems]
        fields = reader.fieldnames
    with open(source / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    for row in kept:
        shutil.copy(PAD_SAMPLE / "images" / row["img_id"], source / "images" / row["img_id"])
    build.build(source, tmp_path / "out")
    for row in shipped:
        for col in ("image", "mask"):
            assert (tmp_path / "out" / row[col]).read_bytes() == (SUBSET / row[col]).read_bytes(), row[col]
