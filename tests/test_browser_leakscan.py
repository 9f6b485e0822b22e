"""The leak scanner used by the browser test must really catch leaks.

Each test feeds it a response that leaks one kind of ground truth (and a clean control),
so a clean scan of the real browser session is evidence, not a test that cannot fail.
"""

from __future__ import annotations

import json

import pytest

from tests.browser_conftest import Captured, ItemTruth, StudyTruth, scan

SHA = "9f" * 32
SYN_TOKEN = "a1" * 16
REAL_TOKEN = "b2" * 16
TUT_TOKEN = "c3" * 16


@pytest.fixture
def truth() -> StudyTruth:
    return StudyTruth(
        items=[
            ItemTruth(
                token=SYN_TOKEN,
                is_tutorial=False,
                kind="synthetic",
                condition_code="QZA",
                condition_name="Quokka dermatosis",
                sha256=SHA,
                library_token="d4" * 16,
                file_names=["5e5e5e5e5e5e5e5e.png"],
                provenance={"batch": 7, "seed": 12345, "checkpoint_sha256": "77" * 32},
            ),
            ItemTruth(
                token=REAL_TOKEN,
                is_tutorial=False,
                kind="real",
                condition_code="MEL",
                condition_name="Melanoma",
                sha256="8e" * 32,
                library_token="e5" * 16,
                file_names=["6f6f6f6f6f6f6f6f.png"],
                provenance={"source_file": "PAT_1516_1765_530.png"},
            ),
            ItemTruth(
                token=TUT_TOKEN,
                is_tutorial=True,
                kind="synthetic",
                condition_code="MEL",
                condition_name="Melanoma",
                sha256="7d" * 32,
                library_token="f6" * 16,
            ),
        ],
        choice_codes={"MEL", "NEV"},
        choice_names={"Melanoma", "Nevus"},
    )


def state(item_token: str, **extra) -> dict:
    item = {"token": item_token, "image_url": f"/img/{item_token}", "position": 3, "is_tutorial": False}
    item.update(extra)
    return {
        "study": {"title": "T", "questions": {"confidence": True, "diagnosis": True, "comment": False}},
        "progress": {"done": 2, "total": 12},
        "finished": False,
        "item": item,
        "next_image_url": f"/img/{REAL_TOKEN}",
        "diagnosis_choices": [{"code": "MEL", "name": "Melanoma"}, {"code": "NEV", "name": "Nevus"}],
        "score": None,
    }


def json_response(doc: dict, url: str = "http://127.0.0.1/api/rate/1/state", **kw) -> Captured:
    return Captured(
        url=url, status=200, headers={"content-type": "application/json"}, body=json.dumps(doc).encode(), **kw
    )


def image_response(token: str, **headers: str) -> Captured:
    base = {"content-type": "image/png", "cache-control": "private, max-age=3600", "content-length": "812"}
    base.update(headers)
    return Captured(url=f"http://127.0.0.1/img/{token}", status=200, headers=base, body=b"\x89PNG")


def test_a_clean_session_has_no_findings(truth):
    responses = [
        json_response(state(SYN_TOKEN)),
        image_response(SYN_TOKEN, **{"date": "Wed"}),
        image_response(REAL_TOKEN, **{"date": "Thu"}),
        Captured(
            url="http://127.0.0.1/rate/1/",
            status=200,
            headers={"content-type": "text/html"},
            body=b"<button>Real</button><button>Synthetic</button><img alt='Image to rate'>",
        ),
    ]
    assert scan(responses, truth) == []


@pytest.mark.parametrize(
    "leaky_item",
    [
        {"kind": "synthetic"},
        {"is_synthetic": True},
        {"label": "real"},
        {"hint": "synthetic"},
        {"batch": 7},
        {"provenance": {}},
        {"condition": "QZA"},
    ],
    ids=["kind", "is_synthetic", "label", "bare-kind-value", "batch-id", "provenance", "condition"],
)
def test_it_flags_ground_truth_bound_to_an_item_in_json(truth, leaky_item):
    findings = scan([json_response(state(SYN_TOKEN, **leaky_item))], truth)
    assert findings, f"{leaky_item} was not caught"


def test_it_flags_image_responses_whose_lengths_differ(truth):
    findings = scan(
        [image_response(SYN_TOKEN, **{"content-length": "900"}), image_response(REAL_TOKEN)], truth
    )
    assert any("content-length" in f.what for f in findings)


def test_it_flags_a_sha256_in_a_header(truth):
    findings = scan([image_response(SYN_TOKEN, etag=f'"{SHA}"')], truth)
    assert any("sha256" in f.what for f in findings)


def test_it_flags_file_names_and_provenance_values_anywhere(truth):
    page = Captured(
        url="http://127.0.0.1/rate/1/",
        status=200,
        headers={"content-type": "text/html"},
        body=b"<img src='/media/6f6f6f6f6f6f6f6f.png' title='PAT_1516_1765_530.png'>",
    )
    whats = {f.what for f in scan([page], truth)}
    assert "file name 6f6f6f6f6f6f6f6f.png" in whats
    assert "provenance source_file" in whats


def test_it_flags_a_study_item_condition_outside_the_choice_list_but_not_the_choices(truth):
    def page(text: str) -> Captured:
        return Captured(
            url="http://127.0.0.1/rate/1/",
            status=200,
            headers={"content-type": "text/html"},
            body=text.encode(),
        )

    assert [f.what for f in scan([page("<p>Quokka dermatosis, close-up</p>")], truth)] == [
        "condition name Quokka dermatosis"
    ]
    # Melanoma is an offered diagnosis: the page may list it.
    assert scan([page("<li>Melanoma</li>")], truth) == []


def test_it_flags_image_urls_that_are_not_bare_tokens(truth):
    findings = scan([image_response(SYN_TOKEN + "?kind=s")], truth)
    assert any("opaque token" in f.what for f in findings)


def test_it_flags_image_headers_that_differ_between_real_and_synthetic(truth):
    responses = [image_response(SYN_TOKEN, **{"x-generated": "1"}), image_response(REAL_TOKEN)]
    findings = scan(responses, truth)
    assert any("x-generated" in f.what for f in findings)


def test_tutorial_feedback_may_reveal_the_answer_but_only_for_tutorial_items(truth):
    body = {
        "recorded": True,
        "feedback": {"is_synthetic": True, "kind": "synthetic"},
        "state": state(SYN_TOKEN),
    }
    url = "http://127.0.0.1/api/rate/1/answers"
    tutorial = json_response(body, url=url, method="POST", request_body=json.dumps({"token": TUT_TOKEN}))
    assert scan([tutorial], truth) == []
    study_item = json_response(body, url=url, method="POST", request_body=json.dumps({"token": SYN_TOKEN}))
    assert scan([study_item], truth)


def test_it_flags_an_item_condition_in_json_even_when_it_is_an_offered_choice(truth):
    leaky = json_response(state(SYN_TOKEN, hint="Melanoma"))
    assert [f.what for f in scan([leaky], truth)] == ["an item's condition 'Melanoma'"]
