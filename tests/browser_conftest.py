"""Browser-test support: Debian's Chromium through Playwright, and the ground-truth leak scanner.

The scanner is the point of the blinding test: it takes every response the browser
received (URL, status, headers, body) and what the database knows about the study's
items, and reports anything a curious rater could use to tell real from synthetic.
It is unit-tested on responses that do leak (tests/test_browser_leakscan.py), so a
clean scan means something.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# JSON keys that would carry an item's ground truth or provenance. The rater API has no
# business sending any of them (tutorial feedback, which exists to reveal the answer, is exempt).
FORBIDDEN_KEYS = frozenset(
    {
        "kind",
        "is_synthetic",
        "is_real",
        "synthetic",
        "real",
        "truth",
        "ground_truth",
        "label",
        "sha256",
        "provenance",
        "batch",
        "batch_id",
        "seed",
        "checkpoint",
        "checkpoint_sha256",
        "generator_version",
        "spec",
        "condition",
        "condition_code",
        "condition_id",
        "fitzpatrick",
        "file",
        "filename",
        "file_name",
        "original_name",
        "image_id",
        "image_pk",
        "public_token",
        "repeat_of",
        "is_repeat",
        "is_anchor",
    }
)
KIND_VALUES = frozenset({"real", "synthetic"})
# Headers that legitimately differ between two images' responses. Not Content-Length:
# stored images are constant-size (turingtest.images.encode_png), so a length that
# differs is a leak (it once separated real from synthetic with AUC 1.0).
PER_RESPONSE_HEADERS = frozenset({"date"})
IMAGE_PATH = re.compile(r"^/img/([A-Za-z0-9_-]{16,})/?$")


@dataclass(frozen=True)
class Captured:
    """One response as the browser saw it."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "GET"
    request_body: str = ""


@dataclass
class ItemTruth:
    """What must stay on the server for one presentation (token = the rater-visible token)."""

    token: str
    is_tutorial: bool
    kind: str
    condition_code: str
    condition_name: str
    sha256: str
    library_token: str
    file_names: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)


@dataclass
class Finding:
    url: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.url} [{self.where}]: {self.what}"


@dataclass
class StudyTruth:
    items: list[ItemTruth]
    # Diagnosis choices offered to the rater may legitimately appear anywhere.
    choice_codes: set[str] = field(default_factory=set)
    choice_names: set[str] = field(default_factory=set)

    @property
    def tutorial_tokens(self) -> set[str]:
        return {i.token for i in self.items if i.is_tutorial}

    def needles(self) -> list[tuple[re.Pattern[str], str]]:
        """Strings whose presence anywhere is a leak, as (pattern, description)."""
        out: list[tuple[re.Pattern[str], str]] = []

        def literal(text: str, why: str) -> None:
            if text and len(text) >= 6:
                out.append((re.compile(re.escape(text), re.IGNORECASE), why))

        def word(text: str, why: str, case: bool) -> None:
            if text:
                pattern = r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])"
                out.append((re.compile(pattern, 0 if case else re.IGNORECASE), why))

        for item in self.items:
            literal(item.sha256, f"sha256 of item {item.token[:6]}")
            literal(item.library_token, f"library token of item {item.token[:6]}")
            for name in item.file_names:
                base = PurePosixPath(name).name
                literal(base, f"file name {base}")
                literal(PurePosixPath(base).stem, f"file stem {base}")
            for key, value in _flatten(item.provenance):
                if isinstance(value, str) and len(value) >= 6 and value.lower() not in KIND_VALUES:
                    literal(value, f"provenance {key}")
            if item.condition_code not in self.choice_codes:
                word(item.condition_code, f"condition code {item.condition_code}", case=True)
            if item.condition_name not in self.choice_names:
                word(item.condition_name, f"condition name {item.condition_name}", case=False)
        out.append((re.compile(r"provenance", re.IGNORECASE), "the word 'provenance'"))
        out.append((re.compile(r"checkpoint_sha256|generator_version", re.IGNORECASE), "provenance keys"))
        return out


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _walk(value: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """Every (path, node) of a JSON document, containers included."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, str(i)))


def _tutorial_feedback_path(response: Captured, truth: StudyTruth) -> bool:
    """True for an answer POST to a tutorial item: its "feedback" may reveal the answer."""
    if response.method != "POST" or not response.request_body:
        return False
    try:
        sent = json.loads(response.request_body)
    except ValueError:
        return False
    return isinstance(sent, dict) and sent.get("token") in truth.tutorial_tokens


def scan(responses: list[Captured], truth: StudyTruth) -> list[Finding]:
    """Everything in ``responses`` that could tell a rater an item's ground truth."""
    findings: list[Finding] = []
    needles = truth.needles()
    study_tokens = {i.token: i for i in truth.items}
    image_headers: dict[str, tuple[str, dict[str, str]]] = {}

    for r in responses:
        texts = {
            "url": r.url,
            "headers": "\n".join(f"{k}: {v}" for k, v in r.headers.items()),
        }
        content_type = r.headers.get("content-type", "")
        is_text = not content_type.startswith("image/")
        if is_text:
            texts["body"] = r.body.decode("utf-8", errors="replace")
        for where, text in texts.items():
            for pattern, why in needles:
                if pattern.search(text):
                    findings.append(Finding(r.url, where, why))

        path = urlsplit(r.url)
        if path.path.startswith("/img/"):
            m = IMAGE_PATH.match(path.path)
            if not m or path.query or path.fragment:
                findings.append(Finding(r.url, "url", "image URL is not a bare opaque token"))
            elif m.group(1) in study_tokens and r.status == 200:
                kind = study_tokens[m.group(1)].kind
                headers = {
                    k.lower(): v for k, v in r.headers.items() if k.lower() not in PER_RESPONSE_HEADERS
                }
                image_headers[m.group(1)] = (kind, headers)

        if "json" in content_type:
            try:
                doc = json.loads(r.body)
            except ValueError:
                findings.append(Finding(r.url, "body", "unparseable JSON"))
                continue
            findings.extend(_scan_json(r, doc, truth, study_tokens))

    findings.extend(_compare_image_headers(image_headers))
    return findings


# JSON paths where condition codes and names legitimately appear: the offered choices and
# the rater's own previous answer.
CONDITION_PATHS = frozenset({"diagnosis_choices", "answer"})


def _scan_json(r: Captured, doc: object, truth: StudyTruth, study_tokens: dict) -> list[Finding]:
    findings = []
    feedback_ok = _tutorial_feedback_path(r, truth)
    conditions = {i.condition_code.lower() for i in truth.items} | {
        i.condition_name.lower() for i in truth.items
    }
    for path, node in _walk(doc):
        if feedback_ok and path[:1] == ("feedback",):
            continue
        if isinstance(node, str) and node.strip().lower() in conditions and not CONDITION_PATHS & set(path):
            findings.append(Finding(r.url, "json:" + ".".join(path), f"an item's condition {node!r}"))
        where = "json:" + ".".join(path)
        if isinstance(node, dict):
            for key in node:
                if key.lower() in FORBIDDEN_KEYS:
                    findings.append(Finding(r.url, where, f"forbidden key {key!r}"))
            tokens = [v for v in node.values() if isinstance(v, str) and v in study_tokens]
            for token in tokens:
                if study_tokens[token].is_tutorial:
                    continue
                for k, v in node.items():
                    if isinstance(v, str) and v.lower() in KIND_VALUES:
                        findings.append(Finding(r.url, where, f"kind value {v!r} next to item token ({k})"))
        elif isinstance(node, str) and node.strip().lower() in KIND_VALUES:
            findings.append(Finding(r.url, where, f"kind value {node!r}"))
    return findings


def _compare_image_headers(image_headers: dict[str, tuple[str, dict[str, str]]]) -> list[Finding]:
    """Real and synthetic image responses must carry identical headers (bar the date), length included."""
    findings = []
    by_kind: dict[str, list[dict[str, str]]] = {}
    for kind, headers in image_headers.values():
        by_kind.setdefault(kind, []).append(headers)
    all_headers = [h for hs in by_kind.values() for h in hs]
    if len(all_headers) < 2:
        return findings
    reference = all_headers[0]
    for headers in all_headers[1:]:
        if headers != reference:
            diff = sorted(k for k in set(headers) | set(reference) if headers.get(k) != reference.get(k))
            findings.append(Finding("/img/*", "headers", f"image responses differ in {diff}"))
            break
    return findings


def study_truth(study, *, extra_presentations=()) -> StudyTruth:
    """Ground truth of every presentation of ``study`` (all raters), read from the database."""
    from turingtest.studies.models import Presentation

    presentations = Presentation.objects.filter(assignment__study=study).select_related(
        "item__image__condition"
    )
    items = []
    for p in [*presentations, *extra_presentations]:
        image = p.item.image
        names = [image.file.name] + ([image.mask.name] if image.mask else [])
        items.append(
            ItemTruth(
                token=p.public_token,
                is_tutorial=p.is_tutorial,
                kind=image.kind,
                condition_code=image.condition.code,
                condition_name=image.condition.name,
                sha256=image.sha256,
                library_token=image.public_token,
                file_names=names,
                provenance=image.provenance or {},
            )
        )
    # What raters are offered: the snapshot taken when the study opened.
    config = type(study).objects.values_list("config", flat=True).get(pk=study.pk)
    choices = (config or {}).get("diagnosis_choices") or []
    return StudyTruth(
        items=items,
        choice_codes={c["code"] for c in choices},
        choice_names={c["name"] for c in choices},
    )


# ----------------------------------------------------------------------------- fixtures


_STARTED: dict[str, object] = {}  # the one browser of the session, whichever module started it


@pytest.fixture(scope="session")
def chromium_browser():
    """Debian's Chromium, headless; never a Playwright-downloaded browser.

    Each browser test module binds this function as its own fixture, so pytest may set it up
    once per module; a second Playwright inside the first one's event loop would fail, so the
    later set-ups share the browser the first one started.
    """
    if "browser" in _STARTED:
        yield _STARTED["browser"]
        return
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)  # only without REQUIRE_SERVICES=1: CI fails above instead
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM
    # calls are still synchronous, so Django's async-safety guard would misfire.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _STARTED["browser"] = browser
        try:
            yield browser
        finally:
            del _STARTED["browser"]
            browser.close()
