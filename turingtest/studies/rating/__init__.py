"""The rater's turn: access, the state the rating page shows, and recording answers.

- ``turn``: ``RaterTurn``, the frozen snapshot every rater request works from, read in one
  statement; ``turn_for_rater`` (the one access rule), ``RatingError`` (errors carry a reason).
- ``state``: ``assignment_state`` (reads only) and ``presentation_mark_shown`` (the one write
  a state request makes, called by the state view).
- ``record``: ``judgment_record`` validates the answer once and hands it to a writer.
- ``writers``: the two writers, one PostgreSQL statement and the ORM, tested to leave the same rows.
- ``estimate``: ``assignment_time_estimate``, the expected time the instructions page states.
"""

from __future__ import annotations

from turingtest.studies.rating.estimate import TimeEstimate, assignment_time_estimate
from turingtest.studies.rating.record import Recorded, judgment_record, validate_answer
from turingtest.studies.rating.state import (
    assignment_state,
    image_url,
    presentation_mark_shown,
    presentation_serve_image,
)
from turingtest.studies.rating.turn import (
    Answer,
    RaterTurn,
    RatingError,
    Rules,
    Upcoming,
    assignment_for_rater,
    check_access,
    presentation_for_image,
    turn_for_rater,
    turn_load,
)

__all__ = [
    "Answer",
    "RaterTurn",
    "RatingError",
    "Recorded",
    "Rules",
    "TimeEstimate",
    "Upcoming",
    "assignment_for_rater",
    "assignment_state",
    "assignment_time_estimate",
    "check_access",
    "image_url",
    "judgment_record",
    "presentation_for_image",
    "presentation_mark_shown",
    "presentation_serve_image",
    "turn_for_rater",
    "turn_load",
    "validate_answer",
]
