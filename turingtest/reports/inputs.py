"""What the report is built from: plain arrays and values, no ORM objects.

``load`` fills these from the database; ``build`` turns them into the report without a
query, so the statistics can be tested and timed on arrays alone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class Rows:
    """The judgment rows as parallel arrays (float64; NaN where the column is NULL)."""

    presentation: np.ndarray
    repeat_of: np.ndarray
    rater: np.ndarray
    image: np.ndarray
    says_synthetic: np.ndarray
    confidence: np.ndarray
    diagnosis: np.ndarray
    response_ms: np.ndarray
    diagnosis_unsure: np.ndarray

    @property
    def n(self) -> int:
        return int(self.presentation.size)

    def without_raters(self, user_ids: frozenset[int]) -> Rows:
        """These rows less the judgments of ``user_ids`` (self when there are none to drop)."""
        if not user_ids or not self.n:
            return self
        keep = ~np.isin(self.rater, np.array(sorted(user_ids), dtype=np.float64))
        return Rows(*(getattr(self, f.name)[keep] for f in fields(Rows)))


@dataclass(frozen=True)
class Images:
    """The study's non-tutorial image pool, sorted by id; index ``i`` is one image."""

    ids: np.ndarray  # int64
    token: list[str]
    kind: list[str]  # "real" | "synthetic"
    is_synthetic: np.ndarray  # bool
    condition: np.ndarray  # int64 condition ids
    fitzpatrick: np.ndarray  # float64, NaN unless the type is a label (estimates never count)
    lesion_area_fraction: np.ndarray  # float64, NaN when unknown

    @property
    def n(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True)
class StudyData:
    """Everything about a study except its judgments (the small lookup queries)."""

    id: int
    title: str
    status: str
    config_sha256: str
    seed: int
    images: Images
    conditions: dict[int, tuple[str, str]]  # condition id → (code, name), every condition
    n_choices: int  # diagnosis choices offered (chance level = 1 / n_choices)
    profiles: dict[int, tuple[str, str, int]]  # user id → (pseudonym, role, years)
    roles: tuple[str, ...]  # the rater roles in their declared order
    n_invited: int
    n_invitations_used: int
    n_assignments: int
    n_started: int
    n_finished: int
    design_warnings: tuple[str, ...] = ()  # choices in the frozen design that weaken blinding
    # Rater quality control: (user id, reason) of excluded raters, user ids of raters below the
    # qualification threshold, (user id, passed, failed) attention checks; needed correct answers.
    excluded: tuple[tuple[int, str], ...] = ()
    unqualified: tuple[int, ...] = ()
    attention: tuple[tuple[int, int, int], ...] = ()
    qualification_min_correct: int | None = None

    @property
    def left_out_raters(self) -> frozenset[int]:
        """User ids of raters the statistics leave out (excluded or not qualified)."""
        return frozenset(int(u) for u, _ in self.excluded) | frozenset(int(u) for u in self.unqualified)

    def profile(self, user_id: int) -> tuple[str, str, int]:
        """(pseudonym, role, years) of a rater; a rater without a profile gets a stand-in."""
        return self.profiles.get(int(user_id), (f"rater{int(user_id)}", "other", 0))

    def condition_code(self, condition_id: int) -> str:
        return self.conditions.get(int(condition_id), (str(condition_id), ""))[0]


@dataclass(frozen=True)
class FirstShowings:
    """First-showing judgments of images in the pool, one entry per judgment.

    Every statistic except test–retest reads these; the section builders take this one
    value instead of a dozen parallel arrays.
    """

    image: np.ndarray  # int64 index into Images
    rater: np.ndarray  # int64 dense rater code (index into ``rater_ids``)
    rater_ids: np.ndarray  # int64 user ids, sorted
    says: np.ndarray  # bool: answered "synthetic"
    truth: np.ndarray  # bool: the image is synthetic
    signed: np.ndarray  # float64 confidence-signed rating (+ synthetic, − real)
    diagnosis: np.ndarray  # float64 condition id, NaN when unanswered
    response_ms: np.ndarray  # float64, NaN when missing
    correct: np.ndarray  # bool: says == truth

    @property
    def n_raters(self) -> int:
        return int(self.rater_ids.size)
