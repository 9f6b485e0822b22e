"""How long a rater's assignment should take, for the instructions page.

The estimate is the number of images to rate times a time per image. Once enough answers
exist, the time per image is measured: the median, over the study's recent judgments, of the
time from the server showing an item (``shown_at``) to its answer (``answered_at``), which
covers the whole turn (looking, confidence, diagnosis, submitting). The median ignores the
long pauses of a rater who stopped for coffee. Before that, a rule of thumb per question
asked (``RULE_OF_THUMB_S``) stands in; the page says which one it used.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from django.db.models import DurationField, ExpressionWrapper, F

from turingtest.studies import protocol
from turingtest.studies.models import Assignment, Judgment

# Seconds per image before anything is measured: a real-or-synthetic look, plus each extra
# question. Deliberately generous (a rater told "5 minutes" who needs 8 stops trusting the
# page); not measured on people, so the measured median replaces it as soon as it can.
RULE_OF_THUMB_S = {"choice": 8.0, "confidence": 2.0, "diagnosis": 8.0, "comment": 0.0}
TUTORIAL_EXTRA_S = 6.0  # reading the feedback on a practice example
MIN_MEASURED = 30  # judgments before the measured median is trusted over the rule of thumb
RECENT = 500  # the most recent judgments the median is taken over (one bounded query)


@dataclass(frozen=True)
class TimeEstimate:
    n_images: int  # study presentations, repeats included: the screens the rater will answer
    n_tutorial: int
    seconds_per_image: float
    is_measured: bool  # True: the median of raters so far; False: the rule of thumb
    n_measured: int

    @property
    def minutes(self) -> int:
        seconds = self.n_images * self.seconds_per_image + self.n_tutorial * (
            self.seconds_per_image + TUTORIAL_EXTRA_S
        )
        return max(1, math.ceil(seconds / 60))


def rule_of_thumb_seconds(questions: dict) -> float:
    """The rule-of-thumb seconds per image for a study asking ``questions``."""
    return RULE_OF_THUMB_S["choice"] + sum(
        RULE_OF_THUMB_S[name] for name, asked in questions.items() if asked and name in RULE_OF_THUMB_S
    )


def assignment_time_estimate(*, assignment: Assignment) -> TimeEstimate:
    """The expected time for ``assignment``: its item count times a per-image time."""
    config = protocol.config_with_defaults(assignment.study.config)
    durations = list(
        Judgment.objects.filter(
            presentation__assignment__study_id=assignment.study_id,
            presentation__shown_at__isnull=False,
            presentation__answered_at__isnull=False,
        )
        .annotate(
            took=ExpressionWrapper(
                F("presentation__answered_at") - F("presentation__shown_at"), output_field=DurationField()
            )
        )
        .order_by("-pk")
        .values_list("took", flat=True)[:RECENT]
    )
    seconds = [d.total_seconds() for d in durations if d is not None and d.total_seconds() >= 0]
    measured = len(seconds) >= MIN_MEASURED
    return TimeEstimate(
        n_images=assignment.n_items,
        n_tutorial=assignment.n_tutorial,
        seconds_per_image=statistics.median(seconds)
        if measured
        else rule_of_thumb_seconds(config["questions"]),
        is_measured=measured,
        n_measured=len(seconds) if measured else 0,
    )
