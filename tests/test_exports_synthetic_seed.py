"""Real images carry no ``synthetic_seed`` in the judgments export, procedural demo stand-ins included."""

from __future__ import annotations

import csv
import io

import pytest

from tests.research_study import build_small_study
from turingtest import exports
from turingtest.library.models import Image

pytestmark = pytest.mark.django_db


@pytest.fixture
def procedural_study():
    """The small study with its real images turned into seed_demo's procedural stand-ins."""
    small = build_small_study()
    reals = Image.objects.filter(study_items__study=small.study, kind=Image.Kind.REAL)
    for n, image in enumerate(reals):
        image.provenance = {"procedural": True, "seed": 4242 + n}
        image.save(update_fields=["provenance"])
    return small.study


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _assert_seed_only_on_synthetic(rows: list[dict[str, str]]) -> None:
    real = [r for r in rows if r["truth_kind"] == "real"]
    synthetic = [r for r in rows if r["truth_kind"] == "synthetic"]
    assert real and synthetic
    assert all(r["synthetic_seed"] == "" for r in real)
    assert all(r["synthetic_seed"].isdigit() for r in synthetic)


def test_the_python_writer_leaves_the_seed_of_procedural_real_images_empty(procedural_study):
    _assert_seed_only_on_synthetic(_rows(b"".join(exports.iter_csv_python(procedural_study))))


def test_the_data_dictionary_says_the_seed_is_empty_for_real_images():
    (seed,) = [c for c in exports.columns() if c.name == "synthetic_seed"]
    assert "empty for real images" in seed.description


@pytest.mark.postgres
def test_the_copy_writer_leaves_the_seed_of_procedural_real_images_empty(procedural_study):
    via_copy = b"".join(exports.iter_copy(exports.copy_sql(procedural_study)))
    _assert_seed_only_on_synthetic(_rows(via_copy))
    assert via_copy == b"".join(exports.iter_csv_python(procedural_study))
