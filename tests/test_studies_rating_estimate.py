"""The expected time on the instructions page (turingtest/studies/rating/estimate.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import open_study, rater_for
from turingtest.studies.models import Judgment, Presentation
from turingtest.studies.rating import assignment_time_estimate
from turingtest.studies.rating.estimate import MIN_MEASURED, TUTORIAL_EXTRA_S, rule_of_thumb_seconds

pytestmark = pytest.mark.django_db


def answer_all(assignment, seconds_each: float) -> None:
    """Judgments for every study presentation, each ``seconds_each`` after it was shown."""
    shown = timezone.now() - dt.timedelta(hours=1)
    for p in Presentation.objects.filter(assignment=assignment, is_tutorial=False):
        answered = shown + dt.timedelta(seconds=seconds_each)
        Presentation.objects.filter(pk=p.pk).update(shown_at=shown, answered_at=answered)
        Judgment.objects.create(
            presentation=p, client_key=uuid.uuid4(), says_synthetic=True, answered_at=answered
        )
        shown = answered


def test_before_any_answers_it_uses_the_rule_of_thumb_for_the_questions_asked():
    study = open_study(
        n_real=3, n_synthetic=3, n_tutorial=2, questions={"confidence": True, "diagnosis": True}
    )
    _, assignment = rater_for(study)
    estimate = assignment_time_estimate(assignment=assignment)
    per_image = rule_of_thumb_seconds({"confidence": True, "diagnosis": True, "comment": False})
    assert per_image == 18.0
    assert (estimate.n_images, estimate.n_tutorial, estimate.is_measured) == (6, 2, False)
    assert estimate.seconds_per_image == per_image
    # 6 × 18 s + 2 × (18 + 6) s = 156 s, rounded up to whole minutes.
    assert 6 * per_image + 2 * (per_image + TUTORIAL_EXTRA_S) == 156
    assert estimate.minutes == 3


def test_once_enough_raters_answered_it_uses_their_median_time_per_image():
    study = open_study(n_real=8, n_synthetic=8)
    assignments = [rater_for(study, seed=s)[1] for s in (1, 2)]
    answer_all(assignments[0], 12)
    assert not assignment_time_estimate(assignment=assignments[1]).is_measured, "16 < MIN_MEASURED"
    answer_all(assignments[1], 12)
    # One rater left for a long break: the median does not notice.
    p = Presentation.objects.filter(assignment=assignments[1], is_tutorial=False).first()
    Presentation.objects.filter(pk=p.pk).update(answered_at=p.shown_at + dt.timedelta(hours=2))
    _, newcomer = rater_for(study, seed=3)
    estimate = assignment_time_estimate(assignment=newcomer)
    assert estimate.is_measured and estimate.n_measured == 32 >= MIN_MEASURED
    assert estimate.seconds_per_image == pytest.approx(12.0)
    assert estimate.minutes == 4  # 16 × 12 s = 192 s


def test_the_instructions_state_the_number_of_images_and_the_expected_time():
    study = open_study(n_real=5, n_synthetic=5, n_tutorial=2)
    rater, _ = rater_for(study)
    c = Client()
    c.force_login(rater)
    html = c.get(f"/rate/{study.pk}/instructions/").content.decode()
    assert "10 images to rate</strong>, after 2 practice examples" in html
    assert "about <strong>3 minutes</strong>" in html  # 10 × 10 s + 2 × 16 s = 132 s
    assert "10 s per image" in html
