"""The rater's turn: a frozen snapshot of one rater's assignment, read in one statement.

``RaterTurn`` is what every rater request works from (the rating page, the state and answer
API, the image endpoint): the assignment id, the study's rules, whether consent was given and
rating started, and the next unanswered items. It is read once per request by one SQL
statement (an index range scan on ``presentation_next_idx`` whatever the pool size) and never
changes; after an answer the next turn is derived from it (``RaterTurn.after_answer``).

``turn_for_rater`` is the one place that decides whether a user may rate in a study now
(``check_access``); the errors carry a reason, never an HTTP status (``api.py`` maps them).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, replace

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection

from turingtest.studies import protocol
from turingtest.studies.models import Assignment, Presentation, Study
from turingtest.studies.quality import NOT_QUALIFIED

N_UPCOMING = 3  # the current item, the next (prefetched), and the one after (the next state's prefetch)


class RatingError(Exception):
    """A rater request that cannot be honoured, and why.

    ``reason`` is one of: ``not_authenticated``, ``consent_required``, ``not_found`` (no
    assignment, a draft study, another rater's token), ``closed``, ``paused`` (come back later:
    nothing is lost, the study resumes), ``not_qualified`` (below the tutorial qualification
    threshold: thanked, and the study ends for them), ``out_of_order``,
    ``already_answered``, ``not_editable`` (an edit of anything but the previous item),
    ``finished`` (an edit after the last answer: the assignment is frozen), ``key_reused``,
    ``invalid`` (then ``errors`` holds field errors).
    """

    def __init__(self, reason: str, detail: str, errors: dict | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.errors = errors


@dataclass(frozen=True)
class Answer:
    says_synthetic: bool
    confidence: int | None = None
    diagnosis: str | None = None  # a condition code, "unsure" or None
    comment: str = ""
    response_ms: int | None = None


@dataclass(frozen=True)
class Rules:
    """A study config as the rating path reads it: validated once, then shared (never mutated).

    ``config_with_defaults`` runs a dozen checks; an open study's config never changes
    (it is part of the frozen design), so the answer path parses each config text once
    per process (``_rules_from_text``, keyed by the text itself, so it cannot go stale).
    """

    config: dict
    questions: dict
    codes: frozenset[str]
    study_info: dict  # the "study" block of the state, without the title


def rules_of(config: dict) -> Rules:
    full = protocol.config_with_defaults(config)
    questions = full["questions"]
    return Rules(
        config=full,
        questions=questions,
        codes=frozenset(c["code"] for c in full.get("diagnosis_choices") or []),
        study_info={
            "questions": questions,
            "exposure_ms": full["exposure_ms"],
            "answers_editable": full["answers_editable"],
            "show_score": full["show_score"],
        },
    )


@functools.lru_cache(maxsize=256)
def _rules_from_text(config_text: str) -> Rules:
    return rules_of(json.loads(config_text))


@dataclass(frozen=True)
class Upcoming:
    """An unanswered presentation, as the rater may know it (no image, no truth)."""

    pk: int
    token: str
    position: int
    is_tutorial: bool
    is_shown: bool  # the server's shown_at is set
    image_served_at: dt.datetime | None = None  # exposure-limited studies: when /img/ sent it


@dataclass(frozen=True)
class RaterTurn:
    assignment_id: int
    study_id: int
    study_title: str
    study_status: str
    rules: Rules
    has_consented: bool
    has_started: bool
    n_items: int  # study presentations, repeats included
    n_tutorial: int
    upcoming: tuple[Upcoming, ...]  # the next N_UPCOMING unanswered presentations, in order
    is_unqualified: bool = False  # below the study's tutorial qualification threshold

    @property
    def current(self) -> Upcoming | None:
        return self.upcoming[0] if self.upcoming else None

    def after_answer(self) -> RaterTurn:
        """The turn once the current item is answered: the writers stamp ``shown_at`` on the
        item that follows (the response shows it), and rating has started."""
        rest = self.upcoming[1:]
        if rest:
            rest = (replace(rest[0], is_shown=True), *rest[1:])
        return replace(self, upcoming=rest, has_started=True)


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _sql(where: str) -> tuple[str, str]:
    """(the turn with its upcoming items, the turn alone for a finished assignment).

    Written as SQL that PostgreSQL and SQLite both run: building it with the ORM cost
    several milliseconds of CPU per request, more than the rest of the answer path.
    """
    p, a, s = _table(Presentation), _table(Assignment), _table(Study)
    head = (
        "SELECT a.id, a.consented_at IS NOT NULL, a.started_at IS NOT NULL, a.n_items, a.n_tutorial, "
        "s.id, s.status, s.title, s.config, a.qualified"
    )
    with_items = (
        f"{head}, p.id, p.public_token, p.position, p.is_tutorial, p.shown_at IS NOT NULL, p.image_served_at "
        f"FROM {p} p JOIN {a} a ON a.id = p.assignment_id JOIN {s} s ON s.id = a.study_id "
        f"WHERE {where} AND p.answered_at IS NULL ORDER BY p.position LIMIT {N_UPCOMING}"
    )
    alone = f"{head} FROM {a} a JOIN {s} s ON s.id = a.study_id WHERE {where}"
    return with_items, alone


# A rater who withdrew keeps their assignment (its answers may stay in the analysis) but has no turn.
_BY_RATER = "a.study_id = %s AND a.rater_id = %s AND a.withdrawn_at IS NULL"
_BY_ID = "a.id = %s"


def _read(where: str, params: list) -> RaterTurn | None:
    with_items, alone = _sql(where)
    with connection.cursor() as cursor:
        cursor.execute(with_items, params)
        rows = cursor.fetchall()
        if not rows:  # nothing left to answer (once per rater): the assignment alone
            cursor.execute(alone, params)
            rows = cursor.fetchall()
    if not rows:
        return None
    a_id, consented, started, n_items, n_tutorial, s_id, status, title, config, qualified = rows[0][:10]
    return RaterTurn(
        assignment_id=a_id,
        study_id=s_id,
        study_title=title,
        study_status=status,
        rules=_rules_from_text(config if isinstance(config, str) else json.dumps(config, sort_keys=True)),
        has_consented=bool(consented),
        has_started=bool(started),
        n_items=n_items,
        n_tutorial=n_tutorial,
        is_unqualified=qualified is not None and not qualified,
        upcoming=tuple(
            Upcoming(
                pk=r[10],
                token=r[11],
                position=r[12],
                is_tutorial=bool(r[13]),
                is_shown=bool(r[14]),
                image_served_at=_datetime(r[15]),
            )
            for r in rows
            if len(r) > 10
        ),
    )


def _datetime(value: object) -> dt.datetime | None:
    """A timestamp column as raw SQL returns it: aware on PostgreSQL; naive UTC, or text, on SQLite."""
    if value is None:
        return None
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _check_found(study_status: str | None) -> None:
    """No assignment (``None``), or a draft study: assignments come from the frozen design only."""
    if study_status is None or study_status == Study.Status.DRAFT:
        raise RatingError("not_found", "No such study for you.")


def check_access(*, study_status: str | None, has_consented: bool, is_unqualified: bool = False) -> None:
    """The one rule of a rater's access to their assignment, in order: ``not_found`` (no
    assignment, or a draft study), ``not_qualified``, ``closed``, ``paused``, ``consent_required``."""
    _check_found(study_status)
    if is_unqualified:
        raise RatingError("not_qualified", NOT_QUALIFIED)
    if study_status == Study.Status.CLOSED:
        raise RatingError("closed", "This study is closed.")
    if study_status == Study.Status.PAUSED:
        raise RatingError(
            "paused",
            "This study is paused for now. Please come back later: your answers so far are kept "
            "and you will continue where you stopped.",
        )
    if not has_consented:
        raise RatingError("consent_required", "Accept the consent text first.")


def turn_for_rater(*, study_id: int, user: AbstractBaseUser | AnonymousUser) -> RaterTurn:
    """The requesting rater's turn in a study they may rate now, or a ``RatingError``."""
    if not user.is_authenticated:
        raise RatingError("not_authenticated", "Log in to rate.")
    turn = _read(_BY_RATER, [study_id, user.pk])
    if turn is None:
        _check_found(None)
    check_access(
        study_status=turn.study_status, has_consented=turn.has_consented, is_unqualified=turn.is_unqualified
    )
    return turn


def turn_load(*, assignment_id: int) -> RaterTurn:
    """The turn of an assignment the caller already holds, without access checks (replays,
    the demo data, tests)."""
    turn = _read(_BY_ID, [assignment_id])
    if turn is None:
        raise Assignment.DoesNotExist(f"assignment {assignment_id}")
    return turn


def assignment_for_rater(*, study_id: int, user: AbstractBaseUser) -> Assignment:
    """The user's assignment with its study, for the pages a rater sees before consenting
    (consent, instructions); ``not_found`` under the same rule as ``check_access``."""
    assignment = (
        Assignment.objects.select_related("study")
        .filter(study_id=study_id, rater=user, withdrawn_at__isnull=True)
        .first()
    )
    _check_found(assignment.study.status if assignment else None)
    return assignment


def presentation_for_image(*, token: str, user: AbstractBaseUser | AnonymousUser) -> Presentation | None:
    """The presentation whose image ``user`` may fetch by ``token``, with its image; else None.

    Allowed: the rater's current or next item of a study they may rate now (``check_access``),
    or, with editable answers, the immediately previous study item while the assignment is
    unfinished. In an exposure-limited study only the current item (nothing is prefetched).
    Everything else is None, so the caller answers a plain 404 and a token reveals nothing,
    not even that it exists.
    """
    if not user.is_authenticated:
        return None
    p = (
        Presentation.objects.select_related("assignment__study", "item__image")
        .filter(public_token=token, assignment__rater=user)
        .first()
    )
    if p is None:
        return None
    try:
        turn = turn_for_rater(study_id=p.assignment.study_id, user=user)
    except RatingError:
        return None
    config = turn.rules.config
    if p.answered_at is None:
        allowed = turn.upcoming[:1] if config["exposure_ms"] else turn.upcoming[:2]
        return p if p.pk in {u.pk for u in allowed} else None
    return p if is_previous(turn, p) and config["answers_editable"] else None


def is_previous(turn: RaterTurn, p: Presentation) -> bool:
    """``p`` is the study item just before the current one of an unfinished assignment: the
    only answer a rater may change (the ``B`` key), and never once the score can be shown."""
    current = turn.current
    return current is not None and not p.is_tutorial and p.position == current.position - 1
