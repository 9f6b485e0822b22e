"""Property tests (hypothesis) for the three places that parse outside input.

- the rater's answer: any JSON body either validates (``AnswerSerializer`` then the study's
  ``validate_answer``) or is refused with field errors / ``RatingError("invalid")``; through the
  API it is a 4xx, never a 500;
- ``MapSpec.from_dict``: any dict gives a ``MapSpec`` or a ``ValueError`` naming the field;
  valid specs survive ``to_dict`` → JSON → ``from_dict``;
- the import manifest: any CSV text gives rows or a ``LibraryError``; any row gives a prepared
  row or a ``LibraryError`` (the bad-row report), never another exception.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.semantic_map import LesionSpec, MapSpec
from tests.factories import open_study, rater_for
from turingtest.library.imports import manifest_read, parse_fitzpatrick
from turingtest.library.store import LibraryError
from turingtest.studies.rating import Answer, RatingError
from turingtest.studies.rating.record import validate_answer
from turingtest.studies.rating.turn import Rules
from turingtest.studies.serializers import AnswerSerializer

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _objects(field_values: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """JSON objects mixing plausible fields (sometimes well-typed) with junk keys and values."""
    plausible = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in field_values.items()})
    junk = st.dictionaries(st.text(max_size=10), json_values, max_size=3)
    return st.builds(lambda a, b: {**b, **a}, plausible, junk)


# ------------------------------------------------------------------------------ answers

ANSWER_FIELDS = {
    "token": st.text(string.ascii_letters, max_size=70),
    "client_key": st.uuids().map(str),
    "says_synthetic": st.booleans(),
    "confidence": st.integers(min_value=-2, max_value=8),
    "diagnosis": st.sampled_from(["T0", "T1", "unsure", "", "XX"]),
    "comment": st.text(max_size=50),
    "response_ms": st.integers(min_value=-10, max_value=10**9),
}
RULES = [
    Rules(
        config={},
        questions={"confidence": c, "diagnosis": d, "comment": m},
        codes=frozenset({"T0", "T1"}),
        study_info={},
    )
    for c in (True, False)
    for d in (True, False)
    for m in (True, False)
]


@BOUNDED
@given(body=_objects(ANSWER_FIELDS) | json_values, rules=st.sampled_from(RULES))
def test_any_answer_body_validates_or_is_refused_with_field_errors(body, rules):
    serializer = AnswerSerializer(data=body)
    if not serializer.is_valid():
        assert serializer.errors and all(isinstance(k, str) for k in serializer.errors)
        return
    data = serializer.validated_data
    answer = Answer(
        says_synthetic=data["says_synthetic"],
        confidence=data["confidence"],
        diagnosis=data["diagnosis"] or None,
        comment=data["comment"],
        response_ms=data["response_ms"],
    )
    try:
        validate_answer(answer, rules)
    except RatingError as exc:
        assert exc.reason == "invalid" and exc.errors


@pytest.mark.django_db
def test_any_json_answer_through_the_api_is_a_4xx_or_a_recorded_answer_never_a_500():
    study = open_study(
        n_real=2, n_synthetic=2, questions={"confidence": True, "diagnosis": True, "comment": True}
    )
    rater, _ = rater_for(study)
    client = Client()
    client.force_login(rater)
    url = f"/api/rate/{study.pk}/answers"

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=_objects(ANSWER_FIELDS) | json_values, use_current=st.booleans())
    def post(body, use_current):
        if use_current and isinstance(body, dict):
            item = client.get(f"/api/rate/{study.pk}/state").json()["item"]
            body["token"] = item["token"] if item else ""
        response = client.post(url, json.dumps(body), content_type="application/json")
        assert response.status_code in {200, 201, 400, 404, 409}, response.content

    post()


# ------------------------------------------------------------------------------ MapSpec

MAP_FIELDS = ("size", "lesions", "skin_rgb", "fitzpatrick", "ita_degrees")
LESION_FIELDS = ("condition", "center", "area_fraction", "aspect", "angle_deg", "mask")
FIELD_NAMES = MAP_FIELDS + LESION_FIELDS

mask_json = st.fixed_dictionaries(
    {},
    optional={
        "shape": st.lists(st.integers(min_value=-3, max_value=10**7), max_size=3) | json_values,
        "bits": st.sampled_from(["", "AA==", "/w==", "not base64!", "AAAA"]) | json_values,
    },
)
lesion_dicts = _objects(
    {
        "condition": st.sampled_from(["MEL", "", "  "]),
        "center": st.lists(st.floats(min_value=-0.5, max_value=1.5), max_size=3),
        "area_fraction": st.floats(min_value=-0.1, max_value=1.5),
        "aspect": st.floats(min_value=0, max_value=30),
        "angle_deg": st.floats(),
        "mask": mask_json,
    }
)
map_dicts = _objects(
    {
        "size": st.integers(min_value=-2, max_value=5000),
        "lesions": st.lists(lesion_dicts | json_values, max_size=3),
        "skin_rgb": st.lists(st.integers(min_value=-1, max_value=256), max_size=4),
        "fitzpatrick": st.integers(min_value=0, max_value=7),
        "ita_degrees": st.floats(min_value=-100, max_value=100),
    }
)


@BOUNDED
@given(data=map_dicts | json_values)
def test_any_dict_gives_a_map_spec_or_a_value_error_naming_the_field(data):
    try:
        spec = MapSpec.from_dict(data)
    except ValueError as exc:
        message = str(exc)
        assert any(name in message for name in FIELD_NAMES) or "MapSpec" in message, message
    else:
        assert isinstance(spec, MapSpec)


small_masks = (
    st.integers(min_value=1, max_value=12)
    .flatmap(
        lambda h: st.lists(st.booleans(), min_size=h * 7, max_size=h * 7).map(
            lambda b: np.array(b).reshape(h, 7)
        )
    )
    .filter(lambda m: m.any())
)
valid_lesions = st.builds(
    LesionSpec,
    condition=st.sampled_from(["MEL", "NEV", "BCC"]),
    center=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    area_fraction=st.floats(min_value=1e-4, max_value=0.3),
    aspect=st.floats(min_value=1, max_value=4),
    angle_deg=st.floats(min_value=-360, max_value=360),
) | st.builds(LesionSpec, condition=st.just("MEL"), mask=small_masks)
skin = st.one_of(
    st.fixed_dictionaries({"skin_rgb": st.tuples(*[st.integers(0, 255)] * 3)}),
    st.fixed_dictionaries({"fitzpatrick": st.integers(1, 6)}),
    st.fixed_dictionaries({"ita_degrees": st.floats(min_value=-89.9, max_value=89.9)}),
)
valid_specs = st.builds(
    lambda size, lesions, colour: MapSpec(size=size, lesions=tuple(lesions), **colour),
    st.integers(min_value=1, max_value=512),
    st.lists(valid_lesions, min_size=1, max_size=3),
    skin,
)


@BOUNDED
@given(spec=valid_specs)
def test_a_map_spec_survives_to_dict_json_and_from_dict(spec):
    again = MapSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.to_dict() == spec.to_dict()


# ------------------------------------------------------------------------------ manifests

HEADER_WORDS = ["image", "condition", "mask", "fitzpatrick", "bbox", "img_id", "diagnostic", "isic_id", "dx"]
HEADER_WORDS += ["melanoma", "seborrheic_keratosis", "MEL", "NV", "patient_id", "x"]
csv_cells = st.text(max_size=12) | st.sampled_from(["0.7", "1", "II", "nan", "", '"', "a,b", "\x00", "é"])
csv_texts = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda header, rows: "\n".join(",".join(r) for r in [header, *rows]),
        st.lists(st.sampled_from(HEADER_WORDS) | st.text(max_size=8), min_size=1, max_size=6),
        st.lists(st.lists(csv_cells, max_size=7), max_size=5),
    ),
)


@BOUNDED
@given(text=csv_texts, fmt=st.sampled_from(["auto", "manifest", "pad-ufes-20", "isic"]), raw=st.booleans())
def test_any_manifest_text_gives_rows_or_a_library_error(text, fmt, raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.csv"
        # Half the time as raw bytes with a stray invalid UTF-8 byte: uploads are not always UTF-8.
        path.write_bytes(text.encode() + (b"\xff" if raw else b""))
        try:
            detected, rows = manifest_read(manifest=path, format=fmt)
        except LibraryError as exc:
            assert str(exc)
            return
    assert detected in {"manifest", "pad-ufes-20", "isic"}
    for row in rows:
        assert isinstance(row.image, str) and isinstance(row.condition, str) and row.line >= 1


@BOUNDED
@given(raw=st.text(max_size=20) | st.none())
def test_any_fitzpatrick_cell_is_a_type_none_or_a_library_error(raw):
    try:
        value = parse_fitzpatrick(raw)
    except LibraryError:
        return
    assert value is None or value in range(1, 7)


# ------------------------------------------------------------------------------ regressions
# What the properties above found; each raised KeyError/TypeError/UnicodeDecodeError/csv.Error
# (or tried to allocate a huge mask) before the fix.


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"size": 8}, "lesions"),
        ({"lesions": []}, "size"),
        ({"size": 8, "lesions": [{}], "fitzpatrick": 2}, "condition"),
        (
            {"size": 8, "lesions": [{"condition": "MEL", "area_fraction": None}], "fitzpatrick": 2},
            "area_fraction",
        ),
        ({"size": 8, "lesions": [{"condition": "MEL", "center": [10**400, 0]}], "fitzpatrick": 2}, "center"),
        ({"size": 8, "lesions": [{"condition": "MEL"}], "fitzpatrick": [2]}, "fitzpatrick"),
        ({"size": 8, "lesions": [{"condition": "MEL"}], "skin_rgb": 5}, "skin_rgb"),
        ({"size": 8, "lesions": [{"condition": "MEL"}], "ita_degrees": "pale"}, "ita_degrees"),
        ({"size": 8, "lesions": [{"condition": "MEL", "mask": {"shape": [2, 2]}}], "fitzpatrick": 2}, "mask"),
    ],
)
def test_map_spec_from_dict_names_the_bad_field(data, field):
    with pytest.raises(ValueError, match=field):
        MapSpec.from_dict(data)


def test_a_mask_claiming_a_huge_shape_is_refused_before_it_is_allocated():
    lesion = {"condition": "MEL", "mask": {"shape": [10**6, 10**6], "bits": "/w=="}}
    with pytest.raises(ValueError, match="does not match"):
        MapSpec.from_dict({"size": 8, "lesions": [lesion], "fitzpatrick": 2})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"image,condition\n\xff.png,MEL\n", "not UTF-8"),
        (b"image,condition\n" + b"a" * 200_000 + b",MEL\n", "not a readable CSV"),
    ],
)
def test_a_manifest_that_is_not_utf8_csv_is_a_library_error(tmp_path, content, message):
    path = tmp_path / "manifest.csv"
    path.write_bytes(content)
    with pytest.raises(LibraryError, match=message):
        manifest_read(manifest=path)


def test_an_isic_row_with_non_numeric_scores_gets_no_condition_instead_of_a_crash(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("image_id,melanoma,seborrheic_keratosis\nISIC_1,yes,0\n")
    fmt, rows = manifest_read(manifest=path)
    assert fmt == "isic" and rows[0].condition == ""
