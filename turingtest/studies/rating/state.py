"""What the rating page shows, built from a ``RaterTurn``; and the one write a state request makes.

``assignment_state`` only reads. Stamping the server's ``shown_at`` on the item being shown
(``turingtest/studies/API.md``) is ``presentation_mark_shown``, which the state view calls.
The dictionaries built here are the blinding boundary: they carry opaque presentation
tokens and nothing derived from the image.
"""

from __future__ import annotations

import functools

from django.db.models import Count, Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from turingtest.library.models import Image
from turingtest.studies.models import Judgment, Presentation
from turingtest.studies.rating.turn import RaterTurn


@functools.lru_cache(maxsize=8)
def _image_url_prefix(script_prefix: str) -> str:
    url = reverse("rate-image", args=["TOKEN"])
    if not url.endswith("/TOKEN"):
        raise RuntimeError(f"the rate-image URL must end with its token: {url}")
    return url[: -len("TOKEN")]


def image_url(token: str) -> str:
    # reverse() per URL cost more than building the whole state; the prefix only depends on
    # the script prefix (tokens are URL-safe: secrets.token_urlsafe / hex).
    return _image_url_prefix(get_script_prefix()) + token


def presentation_mark_shown(*, turn: RaterTurn) -> None:
    """Stamp the server's ``shown_at`` on the current item the first time a state shows it."""
    current = turn.current
    if current is not None and not current.is_shown:
        Presentation.objects.filter(pk=current.pk, shown_at__isnull=True).update(shown_at=timezone.now())


def presentation_serve_image(*, presentation: Presentation, exposure_ms: int | None) -> bool:
    """May the image bytes of ``presentation`` be sent now? Always, without an exposure limit.

    With one the image is sent once per presentation: the first request claims
    ``image_served_at`` (a conditional UPDATE, so two racing requests cannot both win) and
    every later one is refused, so the image cannot be looked at again after it expired.
    """
    if not exposure_ms:
        return True
    return bool(
        Presentation.objects.filter(pk=presentation.pk, image_served_at__isnull=True).update(
            image_served_at=timezone.now()
        )
    )


def assignment_state(*, turn: RaterTurn) -> dict:
    """What the rating page needs now: study questions, progress, the current and next item.

    A constant number of queries whatever the pool size (tested): progress comes from
    the assignment's sizes and the current position, the items from the turn.
    """
    rules = turn.rules
    config = rules.config
    exposure = config["exposure_ms"]
    upcoming = turn.upcoming
    # Tutorial first, then study items, answered strictly in position order (editing an
    # earlier answer does not unanswer it): the current position is the progress.
    answered = upcoming[0].position if upcoming else turn.n_tutorial + turn.n_items
    done = max(0, answered - turn.n_tutorial)
    item = None
    next_image_url = None
    if upcoming:
        current = upcoming[0]
        phase_offset = 0 if current.is_tutorial else turn.n_tutorial
        item = {
            "token": current.token,
            "image_url": image_url(current.token),
            "position": current.position - phase_offset + 1,
            "is_tutorial": current.is_tutorial,
        }
        if exposure:
            # Served once (``presentation_serve_image``): after a reload the page must not ask again.
            item["image_available"] = current.image_served_at is None
        elif len(upcoming) > 1:
            # No prefetch with an exposure limit: a prefetched image would start its clock
            # before it is shown, and could not be fetched a second time.
            next_image_url = image_url(upcoming[1].token)
    finished = not upcoming
    questions = rules.questions
    progress = {"done": done, "total": turn.n_items}
    if finished:
        progress["images"] = _n_distinct_images(turn.assignment_id)
    return {
        "study": {"title": turn.study_title, **rules.study_info},
        "progress": progress,
        "tutorial": {"done": min(answered, turn.n_tutorial), "total": turn.n_tutorial},
        "finished": finished,
        "item": item,
        "next_image_url": next_image_url,
        "previous": _previous(turn) if config["answers_editable"] and done and not finished else None,
        "diagnosis_choices": (config.get("diagnosis_choices") or []) if questions["diagnosis"] else [],
        "score": _score(turn.assignment_id) if finished and config["show_score"] else None,
    }


def _n_distinct_images(assignment_id: int) -> int:
    """Distinct study images (a repeat counts once), for the end page: "24 images", not the
    26 answers that include 2 repeats. Only once finished, when no answer can change."""
    return Presentation.objects.filter(
        assignment_id=assignment_id, is_tutorial=False, repeat_of__isnull=True
    ).count()


def _answer_dict(j: Judgment) -> dict:
    return {
        "says_synthetic": j.says_synthetic,
        "confidence": j.confidence,
        "diagnosis": "unsure" if j.diagnosis_unsure else (j.diagnosis.code if j.diagnosis else None),
        "comment": j.comment,
    }


def _previous(turn: RaterTurn) -> dict | None:
    """With editable answers the page may go back one step: the study item just before the
    current one (``turn.is_previous``); none after a tutorial item or once finished."""
    current = turn.current
    p = (
        Presentation.objects.filter(
            assignment_id=turn.assignment_id, is_tutorial=False, position=current.position - 1
        )
        .select_related("judgment__diagnosis")
        .first()
    )
    if p is None:
        return None
    previous = {
        "token": p.public_token,
        "image_url": image_url(p.public_token),
        "answer": _answer_dict(p.judgment),
    }
    if turn.rules.config["exposure_ms"]:
        previous["image_available"] = False  # its one showing is over
    return previous


def _score(assignment_id: int) -> dict:
    """Only for a finished assignment, which no answer can change any more (``record``)."""
    agg = Judgment.objects.filter(presentation__assignment_id=assignment_id).aggregate(
        n=Count("pk"),
        correct=Count(
            "pk",
            filter=Q(says_synthetic=True, presentation__item__image__kind=Image.Kind.SYNTHETIC)
            | Q(says_synthetic=False, presentation__item__image__kind=Image.Kind.REAL),
        ),
    )
    n = agg["n"]
    return {
        "n_correct": agg["correct"],
        "n_answered": n,
        "accuracy": round(agg["correct"] / n, 4) if n else None,
    }
