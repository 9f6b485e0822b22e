"""Blinding: no ground truth in any rater-visible byte, and a constant query count per answer.

The scan looks for everything that identifies an image or its truth: kind, condition,
batch, sha256, library token, primary key, file name. Real and synthetic image responses
must carry identical headers.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import PurePath

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import ConditionFactory, ResearcherFactory, open_study, rater_for
from turingtest.library.models import Image
from turingtest.studies import services
from turingtest.studies.models import Presentation

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _walk_values(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _walk_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_values(v)
    else:
        yield obj


def _secrets_of(image: Image) -> list[str]:
    name = PurePath(image.file.name)
    return [image.sha256, image.public_token, name.name, name.stem, f"/media/{image.file.name}"]


def test_no_rater_response_carries_ground_truth_and_real_and_synthetic_headers_match():
    study = open_study(n_real=4, n_synthetic=4, n_tutorial=0)
    rater, assignment = rater_for(study)
    c = client_for(rater)
    images = {p.public_token: p.item.image for p in assignment.presentations.select_related("item__image")}
    conditions = {i.condition for i in images.values()}
    texts = [c.get(f"/rate/{study.pk}/").content.decode(), c.get("/rate/").content.decode()]
    headers_by_kind: dict[str, list[dict]] = {"real": [], "synthetic": []}
    state = c.get(f"/api/rate/{study.pk}/state")
    masked_states = {"real": set(), "synthetic": set()}
    while True:
        texts.append(state.content.decode())
        texts.append(json.dumps(dict(state.headers)))
        body = state.json()
        body = body.get("state", body)
        if not body["item"]:
            break
        token = body["item"]["token"]
        kind = images[token].kind
        values = [v for v in _walk_values(body) if isinstance(v, str)]
        assert "real" not in values and "synthetic" not in values
        masked = json.dumps({**body, "next_image_url": None}, sort_keys=True).replace(token, "T")
        masked_states[kind].add(re.sub(r'"(done|position)": \d+', "", masked))
        img = c.get(body["item"]["image_url"])
        assert img.status_code == 200
        headers = {k.lower(): v for k, v in img.headers.items()}
        headers_by_kind[kind].append(headers)
        texts.append(json.dumps(headers))
        payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": True}
        state = c.post(f"/api/rate/{study.pk}/answers", json.dumps(payload), content_type="application/json")
        assert state.status_code == 201
    blob = "\n".join(texts)
    for image in images.values():
        for secret in _secrets_of(image):
            assert secret not in blob, secret
    for condition in conditions:  # diagnosis is off: no condition is named anywhere
        assert condition.name not in blob and f'"{condition.code}"' not in blob
    # JSON states for real and synthetic items differ only in tokens and counters.
    assert masked_states["real"] == masked_states["synthetic"] and len(masked_states["real"]) >= 1
    # Every header, with its value, is the same for real and synthetic images, the length
    # included: stored files are constant-size (turingtest.images.encode_png).
    all_headers = headers_by_kind["real"] + headers_by_kind["synthetic"]
    assert all(h == all_headers[0] for h in all_headers)
    h = all_headers[0]
    assert h["cache-control"] == "private, max-age=3600" and h["content-type"] == "image/png"
    assert not {"etag", "last-modified", "content-disposition", "expires"} & set(h)


def test_the_images_alt_text_and_page_are_the_same_whatever_the_item():
    study = open_study(n_real=1, n_synthetic=1)
    rater, _ = rater_for(study)
    c = client_for(rater)
    first = c.get(f"/rate/{study.pk}/").content
    s = c.get(f"/api/rate/{study.pk}/state").json()
    payload = {"token": s["item"]["token"], "client_key": str(uuid.uuid4()), "says_synthetic": False}
    c.post(f"/api/rate/{study.pk}/answers", json.dumps(payload), content_type="application/json")
    second = c.get(f"/rate/{study.pk}/").content
    strip = re.compile(rb'(csrfmiddlewaretoken" value="|data-csrf=")[^"]+')
    assert strip.sub(b"", first) == strip.sub(b"", second)


def _study_with_pool(n_images: int):
    """An open study over ``n_images`` bulk-created library rows (files are never read here)."""
    condition = ConditionFactory(code="QC", name="Query count", map_index=300)
    Image.objects.bulk_create(
        [
            Image(
                kind=Image.Kind.REAL if i % 2 else Image.Kind.SYNTHETIC,
                condition=condition,
                file=f"q{i}.png",
                sha256=f"{n_images}-{i}".rjust(64, "0"),
                width=32,
                height=32,
            )
            for i in range(n_images)
        ]
    )
    half = n_images // 2
    study = services.study_create(
        owner=ResearcherFactory(),
        title=f"pool {n_images}",
        config={"n_real": half, "n_synthetic": half, "pool": {"conditions": ["QC"]}, "repeat_fraction": 0.05},
        seed=1,
    )
    return services.study_open(study=study)


def _answer_and_next_queries(n_images: int) -> int:
    study = _study_with_pool(n_images)
    rater, assignment = rater_for(study)
    assert assignment.presentations.count() >= n_images
    c = client_for(rater)
    token = c.get(f"/api/rate/{study.pk}/state").json()["item"]["token"]
    payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": True}
    first = c.post(f"/api/rate/{study.pk}/answers", json.dumps(payload), content_type="application/json")
    token = first.json()["state"]["item"]["token"]
    payload = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": False}
    with CaptureQueriesContext(connection) as ctx:
        r = c.post(f"/api/rate/{study.pk}/answers", json.dumps(payload), content_type="application/json")
    assert r.status_code == 201
    assert Presentation.objects.filter(public_token=token, answered_at__isnull=False).exists()
    return len(ctx.captured_queries)


def test_submit_and_next_uses_the_same_small_number_of_queries_for_100_and_10000_images():
    small = _answer_and_next_queries(100)
    large = _answer_and_next_queries(10_000)
    assert small == large
    assert small <= 7, small  # 5 statements + the 2 savepoint markers of the test transaction
