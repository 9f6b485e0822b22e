"""Study operations: create, open, close, copy; invitations; assignments; recording judgments.

Every function that writes does it in one transaction and guards state first, so a
retried request is a no-op that returns the first result (STYLE.md rule 9).
The rater-facing dictionaries built here (``assignment_state``) are the blinding
boundary: they carry opaque presentation tokens and nothing derived from the image.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from turingtest.core import roles
from turingtest.library.models import Condition, Image
from turingtest.studies import protocol
from turingtest.studies.models import (
    Assignment,
    Invitation,
    Judgment,
    Presentation,
    RaterProfile,
    Study,
    StudyItem,
    TutorialAnswer,
)

INVITATION_DAYS = 14


class StudyFrozen(Exception):
    """The study is open or closed: its design cannot change (copy it instead)."""


class RatingError(Exception):
    """A rater request that cannot be honoured; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, detail: str, errors: dict | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors


class InvitationInvalid(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def new_seed() -> int:
    return secrets.randbits(62)


# --- studies ----------------------------------------------------------------------


def _candidate_images(config: dict) -> list[tuple[int, str, int]]:
    pool = config["pool"]
    qs = Image.objects.filter(kind__in=pool["kinds"])
    if pool["conditions"]:
        qs = qs.filter(condition__code__in=pool["conditions"])
    if pool["fitzpatrick"]:
        qs = qs.filter(fitzpatrick__in=pool["fitzpatrick"])
    if pool["batches"]:
        # Synthetic images belong to a generation batch; real images have none,
        # so a batch filter only narrows the synthetic side.
        qs = qs.filter(Q(kind=Image.Kind.REAL) | Q(batch_id__in=pool["batches"]))
    return list(qs.values_list("pk", "kind", "condition_id"))


def _study_conditions(config: dict) -> list[Condition]:
    codes = config["pool"]["conditions"]
    qs = Condition.objects.all()
    return list(qs.filter(code__in=codes) if codes else qs)


@transaction.atomic
def study_build_pool(*, study: Study) -> None:
    """Replace the draft study's items with a fresh seeded draw from the library."""
    if study.is_frozen:
        raise StudyFrozen("the study is open or closed; copy it to change the pool")
    config = protocol.config_with_defaults(study.config)
    draw = protocol.draw_pool(candidates=_candidate_images(config), config=config, seed=study.seed)
    study.items.all().delete()
    anchors = set(draw.anchors)
    StudyItem.objects.bulk_create(
        [StudyItem(study=study, image_id=i, is_anchor=i in anchors) for i in draw.items]
        + [StudyItem(study=study, image_id=i, is_tutorial=True) for i in draw.tutorial]
    )
    study.conditions.set(_study_conditions(config))


@transaction.atomic
def study_create(
    *,
    owner: AbstractBaseUser,
    title: str,
    config: dict | None = None,
    instructions: str = "",
    consent_text: str = "",
    seed: int | None = None,
) -> Study:
    """A draft study with its pool drawn from the library (``ValueError`` if the library can't fill it)."""
    full = protocol.config_with_defaults(config)
    study = Study.objects.create(
        owner=owner,
        title=title,
        instructions=instructions,
        consent_text=consent_text,
        config=full,
        seed=new_seed() if seed is None else seed,
    )
    study_build_pool(study=study)
    return study


@transaction.atomic
def study_update(*, study: Study, rebuild_pool: bool = True, **fields: Any) -> Study:
    """Change a draft's title, texts or config; the pool is redrawn when the config changed."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.is_frozen:
        raise StudyFrozen("the study is open or closed; copy it to change it")
    allowed = {"title", "instructions", "consent_text", "config", "seed"}
    if set(fields) - allowed:
        raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
    if "config" in fields:
        fields["config"] = protocol.config_with_defaults(fields["config"])
    for key, value in fields.items():
        setattr(study, key, value)
    study.save()
    if rebuild_pool and ({"config", "seed"} & set(fields)):
        study_build_pool(study=study)
    return study


def study_design(study: Study) -> dict:
    """Everything that defines the analysis: config, seed, texts, and the exact item list."""
    items = list(
        study.items.order_by("image_id").values_list(
            "image_id", "image__sha256", "image__kind", "is_anchor", "is_tutorial"
        )
    )
    return {
        "config": protocol.config_with_defaults(study.config),
        "seed": study.seed,
        "instructions": study.instructions,
        "consent_text": study.consent_text,
        "items": [list(row) for row in items],
    }


def study_design_sha256(study: Study) -> str:
    blob = json.dumps(study_design(study), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@transaction.atomic
def study_open(*, study: Study) -> Study:
    """Freeze the design: snapshot the diagnosis list into the config, hash config + items, open.

    Opening an open study is a no-op.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == Study.Status.OPEN:
        return study
    if study.status == Study.Status.CLOSED:
        raise StudyFrozen("a closed study cannot reopen; copy it instead")
    config = protocol.config_with_defaults(study.config)
    if not study.items.filter(is_tutorial=False).exists():
        raise ValueError("the study has no items")
    config["diagnosis_choices"] = [
        {"code": c.code, "name": c.name} for c in study.conditions.order_by("map_index")
    ]
    study.config = config
    study.status = Study.Status.OPEN
    study.opened_at = timezone.now()
    study.config_sha256 = study_design_sha256(study)
    study.save(update_fields=["config", "status", "opened_at", "config_sha256"])
    return study


@transaction.atomic
def study_close(*, study: Study) -> Study:
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == Study.Status.CLOSED:
        return study
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    study.save(update_fields=["status", "closed_at"])
    return study


@transaction.atomic
def study_copy(*, study: Study, owner: AbstractBaseUser, title: str | None = None) -> Study:
    """A new draft with the same design and the same items (not redrawn), to change and reopen."""
    config = {k: v for k, v in study.config.items() if k != "diagnosis_choices"}
    copy = Study.objects.create(
        owner=owner,
        title=title or f"Copy of {study.title}",
        instructions=study.instructions,
        consent_text=study.consent_text,
        config=config,
        seed=study.seed,
    )
    StudyItem.objects.bulk_create(
        [
            StudyItem(study=copy, image_id=i.image_id, is_anchor=i.is_anchor, is_tutorial=i.is_tutorial)
            for i in study.items.all()
        ]
    )
    copy.conditions.set(study.conditions.all())
    return copy


def study_share(*, study: Study, user: AbstractBaseUser) -> None:
    """Collaborators see the study and its results; sharing is not part of the frozen design."""
    if user.pk != study.owner_id:
        study.collaborators.add(user)


def study_verify_frozen(*, study: Study) -> bool:
    """True when an opened study's current design still hashes to what was stored at opening."""
    return bool(study.config_sha256) and study_design_sha256(study) == study.config_sha256


def studies_visible_to(user: AbstractBaseUser):
    """Owners, collaborators and admins see a study; nobody else (queryset form of ``is_visible_to``)."""
    if roles.is_admin(user):
        return Study.objects.all()
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(Q(owner=user) | Q(collaborators=user)).distinct()


# --- invitations ------------------------------------------------------------------


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invite", args=[token])


@transaction.atomic
def invitation_create(*, study: Study, count: int = 1, days: int = INVITATION_DAYS) -> list[str]:
    """Create ``count`` single-use invitations; returns the raw tokens (only their sha256 is stored)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if study.status == Study.Status.CLOSED:
        raise StudyFrozen("the study is closed")
    tokens = [secrets.token_urlsafe(24) for _ in range(count)]
    expires = timezone.now() + timedelta(days=days)
    Invitation.objects.bulk_create(
        [Invitation(study=study, token_sha256=_token_sha256(t), expires_at=expires) for t in tokens]
    )
    return tokens


def invitation_lookup(*, token: str) -> Invitation:
    """The invitation for ``token``, or ``InvitationInvalid`` with 404 (unknown) or 410 (used/expired/closed)."""
    inv = Invitation.objects.select_related("study").filter(token_sha256=_token_sha256(token)).first()
    if inv is None:
        raise InvitationInvalid(404, "This invitation link is not valid. Check that you copied all of it.")
    if inv.used_at is not None:
        raise InvitationInvalid(410, "This invitation link has already been used.")
    if inv.expires_at <= timezone.now():
        raise InvitationInvalid(410, "This invitation link has expired. Ask the study team for a new one.")
    if inv.study.status == Study.Status.CLOSED:
        raise InvitationInvalid(410, "This study is closed.")
    if inv.study.status == Study.Status.DRAFT:
        # Assignments are drawn from the frozen design only.
        raise InvitationInvalid(404, "This study has not opened yet. Try the link again later.")
    return inv


@transaction.atomic
def invitation_accept(*, token: str, user: AbstractBaseUser) -> Assignment:
    """Use the invitation: make ``user`` a rater of its study. Single use, checked under a row lock.

    A rater who already has an assignment for the study keeps it and the
    invitation stays unused (it can go to someone else).
    """
    inv = invitation_lookup(token=token)
    inv = Invitation.objects.select_for_update().select_related("study").get(pk=inv.pk)
    if inv.used_at is not None:
        raise InvitationInvalid(410, "This invitation link has already been used.")
    existing = Assignment.objects.filter(study=inv.study, rater=user).first()
    if existing:
        return existing
    roles.add_to_role(user, roles.RATERS)
    RaterProfile.objects.get_or_create(user=user)
    assignment = assignment_create(study=inv.study, rater=user)
    inv.used_at = timezone.now()
    inv.used_by = user
    inv.save(update_fields=["used_at", "used_by"])
    return assignment


# --- assignments --------------------------------------------------------------------


@transaction.atomic
def assignment_create(*, study: Study, rater: AbstractBaseUser, seed: int | None = None) -> Assignment:
    """The rater's seeded sequence of presentations (idempotent: an existing assignment is returned)."""
    existing = Assignment.objects.filter(study=study, rater=rater).first()
    if existing:
        return existing
    config = protocol.config_with_defaults(study.config)
    rows = list(study.items.values_list("pk", "image__kind", "is_anchor", "is_tutorial"))
    items = [(pk, kind, anchor) for pk, kind, anchor, tut in rows if not tut]
    tutorial = [pk for pk, _, _, tut in rows if tut]
    seed = new_seed() if seed is None else seed
    slots = protocol.plan_sequence(items=items, tutorial=tutorial, config=config, seed=seed)
    n_tutorial = sum(s.is_tutorial for s in slots)
    assignment = Assignment.objects.create(
        study=study, rater=rater, seed=seed, n_tutorial=n_tutorial, n_items=len(slots) - n_tutorial
    )
    firsts = [
        Presentation(assignment=assignment, item_id=s.item_id, position=p, is_tutorial=s.is_tutorial)
        for p, s in enumerate(slots)
        if s.repeat_of is None
    ]
    Presentation.objects.bulk_create(firsts)
    by_position = {p.position: p for p in firsts}
    Presentation.objects.bulk_create(
        [
            Presentation(
                assignment=assignment, item_id=s.item_id, position=p, repeat_of=by_position[s.repeat_of]
            )
            for p, s in enumerate(slots)
            if s.repeat_of is not None
        ]
    )
    return assignment


def assignment_consent(*, assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk, consented_at__isnull=True).update(consented_at=timezone.now())


@dataclass(frozen=True)
class _Rules:
    """A study config as the rating path reads it: validated once, then shared (never mutated).

    ``config_with_defaults`` runs a dozen checks; an open study's config never changes
    (it is part of the frozen design), so the answer path parses each config text once
    per process (``_rules_from_text``, keyed by the text itself, so it cannot go stale).
    """

    config: dict
    questions: dict
    codes: frozenset[str]
    study_info: dict  # the "study" block of the state, without the title


def _rules(config: dict) -> _Rules:
    full = protocol.config_with_defaults(config)
    questions = full["questions"]
    return _Rules(
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
def _rules_from_text(config_text: str) -> _Rules:
    return _rules(json.loads(config_text))


def _study_rules(study: Study) -> _Rules:
    """The cached rules attached by ``assignment_for_rater``, or parsed from ``study.config``."""
    rules = study.__dict__.get("_rating_rules")
    if rules is None:
        rules = _rules(study.config)
    return rules


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _sql() -> dict[str, str]:
    """The answer path's statements, written once as SQL that PostgreSQL and SQLite both run.

    Building them with the ORM cost several milliseconds of CPU per request (query
    compilation), more than everything else the view does; the guarantees stay in the
    statements themselves (conditional claim, unique constraints) and in one transaction.
    """
    p, a, s = _table(Presentation), _table(Assignment), _table(Study)
    j, t, c = _table(Judgment), _table(TutorialAnswer), _table(Condition)
    judgment_cols = (
        "presentation_id, client_key, says_synthetic, confidence, diagnosis_id, diagnosis_unsure, "
        "comment, response_ms, answered_at, revision"
    )
    return {
        # The rater's assignment, its study, and the next three unanswered items in one read
        # (an index range scan on presentation_next_idx whatever the pool size).
        "upcoming": (
            f"SELECT a.id, a.consented_at IS NOT NULL, a.started_at IS NOT NULL, a.n_items, a.n_tutorial, "
            f"s.id, s.status, s.title, s.config, "
            f"p.id, p.public_token, p.position, p.is_tutorial, p.shown_at IS NOT NULL "
            f"FROM {p} p JOIN {a} a ON a.id = p.assignment_id JOIN {s} s ON s.id = a.study_id "
            f"WHERE a.study_id = %s AND a.rater_id = %s AND p.answered_at IS NULL "
            f"ORDER BY p.position LIMIT 3"
        ),
        # Claim the current item and stamp shown_at of the one the response will show. The
        # following row always matches, so the row count says whether this request won the claim.
        "claim_and_show": (
            f"UPDATE {p} SET "
            f"answered_at = CASE WHEN id = %s THEN %s ELSE answered_at END, "
            f"shown_at = CASE WHEN id = %s AND shown_at IS NULL THEN %s ELSE shown_at END "
            f"WHERE (id = %s AND answered_at IS NULL) OR id = %s"
        ),
        "claim_last": f"UPDATE {p} SET answered_at = %s WHERE id = %s AND answered_at IS NULL",
        "judgment": f"INSERT INTO {j} ({judgment_cols}) VALUES (%s, %s, %s, %s, NULL, %s, %s, %s, %s, 1)",
        # With a condition code: no row is inserted when the code is unknown (checked by rowcount).
        "judgment_code": (
            f"INSERT INTO {j} ({judgment_cols}) "
            f"SELECT %s, %s, %s, %s, c.id, %s, %s, %s, %s, 1 FROM {c} c WHERE c.code = %s"
        ),
        "tutorial": (
            f"INSERT INTO {t} (presentation_id, client_key, says_synthetic, answered_at) VALUES (%s, %s, %s, %s)"
        ),
        "started": f"UPDATE {a} SET started_at = COALESCE(started_at, %s) WHERE id = %s",
        "started_finished": (
            f"UPDATE {a} SET started_at = COALESCE(started_at, %s), finished_at = %s WHERE id = %s"
        ),
        "finished": f"UPDATE {a} SET finished_at = %s WHERE id = %s",
    }


def _fast_assignment(*, study_id: int, user: AbstractBaseUser) -> Assignment | None:
    """The assignment with its study and ``prefetched_upcoming`` from one statement, or None
    when nothing is left to answer (the caller then falls back to the ORM)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql()["upcoming"], [study_id, user.pk])
        rows = cursor.fetchall()
    if not rows:
        return None
    a_id, consented, started, n_items, n_tutorial, s_id, status, title, config = rows[0][:9]
    study = Study(id=s_id, status=status, title=title)
    if status == Study.Status.OPEN:
        study.__dict__["_rating_rules"] = _rules_from_text(
            config if isinstance(config, str) else json.dumps(config, sort_keys=True)
        )
    assignment = Assignment(id=a_id, study_id=s_id, rater_id=user.pk, n_items=n_items, n_tutorial=n_tutorial)
    assignment.study = study
    # Only whether these are set matters here; the instance is never saved.
    assignment.consented_at = timezone.now() if consented else None
    assignment.started_at = timezone.now() if started else None
    assignment.prefetched_upcoming = [
        {
            "pk": r[9],
            "public_token": r[10],
            "position": r[11],
            "is_tutorial": bool(r[12]),
            "shown_at": True if r[13] else None,
        }
        for r in rows
    ]
    return assignment


def assignment_for_rater(*, study_id: int, user: AbstractBaseUser, with_upcoming: bool = False) -> Assignment:
    """The requesting rater's assignment for a study that is open, or a ``RatingError``.

    With ``with_upcoming`` the same statement also reads the study and the next three
    unanswered items (kept on ``assignment.prefetched_upcoming`` for ``judgment_record``):
    the answer round trip is then one statement shorter. Such an assignment is a read-only
    view for the answer path (its timestamps only say whether they are set).
    """
    if not user.is_authenticated:
        raise RatingError(403, "not_authenticated", "Log in to rate.")
    assignment = _fast_assignment(study_id=study_id, user=user) if with_upcoming else None
    if assignment is None:
        assignment = Assignment.objects.select_related("study").filter(study_id=study_id, rater=user).first()
    if assignment is None or assignment.study.status == Study.Status.DRAFT:
        raise RatingError(404, "not_found", "No such study for you.")
    if assignment.study.status == Study.Status.CLOSED:
        raise RatingError(410, "closed", "This study is closed.")
    if assignment.consented_at is None:
        raise RatingError(403, "consent_required", "Accept the consent text first.")
    return assignment


@functools.lru_cache(maxsize=8)
def _image_url_prefix(script_prefix: str) -> str:
    url = reverse("rate-image", args=["TOKEN"])
    assert url.endswith("/TOKEN"), url
    return url[: -len("TOKEN")]


def _image_url(token: str) -> str:
    # reverse() per URL cost more than building the whole state; the prefix only depends on
    # the script prefix (tokens are URL-safe: secrets.token_urlsafe / hex).
    return _image_url_prefix(get_script_prefix()) + token


def _upcoming(assignment: Assignment, n: int = 2) -> list[dict]:
    """The rater's next ``n`` unanswered presentations (an index range scan, whatever the pool size)."""
    return list(
        assignment.presentations.filter(answered_at__isnull=True)
        .order_by("position")
        .values("pk", "public_token", "position", "is_tutorial", "shown_at")[:n]
    )


def assignment_state(*, assignment: Assignment, upcoming: list[dict] | None = None) -> dict:
    """What the rating page needs now: study questions, progress, the current and next item.

    A constant number of queries whatever the pool size (tested): progress comes from
    the assignment's counters, the items from one index scan (skipped when the caller
    already knows ``upcoming``). Marks the current item's server ``shown_at`` the first
    time it is returned.
    """
    study = assignment.study
    rules = _study_rules(study)
    config = rules.config
    if upcoming is None:
        upcoming = _upcoming(assignment)
    # Tutorial first, then study items, answered strictly in position order (editing an
    # earlier answer does not unanswer it): the current position is the progress.
    answered = upcoming[0]["position"] if upcoming else assignment.n_tutorial + assignment.n_items
    counts = {
        "total": assignment.n_items,
        "done": max(0, answered - assignment.n_tutorial),
        "tutorial_total": assignment.n_tutorial,
        "tutorial_done": min(answered, assignment.n_tutorial),
    }
    item = None
    next_image_url = None
    if upcoming:
        current = upcoming[0]
        if current["shown_at"] is None:
            Presentation.objects.filter(pk=current["pk"], shown_at__isnull=True).update(
                shown_at=timezone.now()
            )
        phase_offset = 0 if current["is_tutorial"] else counts["tutorial_total"]
        item = {
            "token": current["public_token"],
            "image_url": _image_url(current["public_token"]),
            "position": current["position"] - phase_offset + 1,
            "is_tutorial": current["is_tutorial"],
        }
        if len(upcoming) > 1:
            next_image_url = _image_url(upcoming[1]["public_token"])
    finished = not upcoming
    questions = rules.questions
    return {
        "study": {"title": study.title, **rules.study_info},
        "progress": {"done": counts["done"], "total": counts["total"]},
        "tutorial": {"done": counts["tutorial_done"], "total": counts["tutorial_total"]},
        "finished": finished,
        "item": item,
        "next_image_url": next_image_url,
        "previous": _previous(assignment) if config["answers_editable"] and counts["done"] else None,
        "diagnosis_choices": (config.get("diagnosis_choices") or []) if questions["diagnosis"] else [],
        "score": _score(assignment) if finished and config["show_score"] else None,
    }


def _answer_dict(j: Judgment) -> dict:
    return {
        "says_synthetic": j.says_synthetic,
        "confidence": j.confidence,
        "diagnosis": "unsure" if j.diagnosis_unsure else (j.diagnosis.code if j.diagnosis else None),
        "comment": j.comment,
    }


def _previous(assignment: Assignment) -> dict | None:
    """With editable answers the page may go back one step: the last answered study item."""
    p = (
        assignment.presentations.filter(is_tutorial=False, answered_at__isnull=False)
        .select_related("judgment__diagnosis")
        .order_by("-position")
        .first()
    )
    if p is None:
        return None
    return {
        "token": p.public_token,
        "image_url": _image_url(p.public_token),
        "answer": _answer_dict(p.judgment),
    }


def _score(assignment: Assignment) -> dict:
    agg = Judgment.objects.filter(presentation__assignment=assignment).aggregate(
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


# --- judgments ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    says_synthetic: bool
    confidence: int | None = None
    diagnosis: str | None = None  # a condition code, "unsure" or None
    comment: str = ""
    response_ms: int | None = None


def _diagnosis_ids(config: dict) -> dict[str, int]:
    codes = [c["code"] for c in config.get("diagnosis_choices") or []]
    return dict(Condition.objects.filter(code__in=codes).values_list("code", "pk")) if codes else {}


def _validate_answer(answer: Answer, rules: _Rules) -> None:
    q = rules.questions
    errors: dict[str, list[str]] = {}
    if answer.confidence is not None and not q["confidence"]:
        errors["confidence"] = ["This study does not ask for confidence."]
    if answer.diagnosis is not None:
        codes = rules.codes
        if not q["diagnosis"]:
            errors["diagnosis"] = ["This study does not ask for a diagnosis."]
        elif answer.diagnosis != "unsure" and answer.diagnosis not in codes:
            errors["diagnosis"] = [
                f"Unknown diagnosis {answer.diagnosis!r}; pick one of the list or 'unsure'."
            ]
    if answer.comment and not q["comment"]:
        errors["comment"] = ["This study does not take comments."]
    if errors:
        raise RatingError(400, "invalid", "Invalid answer.", errors=errors)


def _feedback(presentation_pk: int, says_synthetic: bool) -> dict:
    """Tutorial items are labelled examples: the truth is shown after the answer."""
    kind = (
        Image.objects.filter(study_items__presentations__pk=presentation_pk)
        .values_list("kind", flat=True)
        .get()
    )
    truth_synthetic = kind == Image.Kind.SYNTHETIC
    return {"correct": truth_synthetic == says_synthetic, "truth": "synthetic" if truth_synthetic else "real"}


def _body(
    presentation_pk: int,
    is_tutorial: bool,
    assignment: Assignment,
    says_synthetic: bool,
    upcoming: list[dict] | None = None,
) -> dict:
    body: dict[str, Any] = {"recorded": True}
    if is_tutorial:
        body["feedback"] = _feedback(presentation_pk, says_synthetic)
    body["state"] = assignment_state(assignment=assignment, upcoming=upcoming)
    return body


def _existing_answer(p: Presentation) -> Judgment | TutorialAnswer | None:
    for attr in ("judgment", "tutorial_answer"):
        try:
            return getattr(p, attr)
        except (Judgment.DoesNotExist, TutorialAnswer.DoesNotExist):
            continue
    return None


def judgment_record(
    *, assignment: Assignment, token: str, answer: Answer, client_key: uuid.UUID
) -> tuple[int, dict]:
    """Record the rater's answer to the presentation ``token`` and return (HTTP status, body).

    Idempotent on ``client_key``: the same key again returns 200 and the same body
    as the first write (201), with one row in the database. The write is claimed by
    a conditional UPDATE of ``Presentation.answered_at`` and backed by the one-to-one
    constraint, so concurrent double submits also record one judgment.
    Raises ``RatingError`` (400 invalid answer, 404 not this rater's token, 409 not
    the current item or already answered with another key).
    """
    rules = _study_rules(assignment.study)
    upcoming = assignment.__dict__.pop("prefetched_upcoming", None)
    try:
        if upcoming and upcoming[0]["public_token"] == token and connection.vendor == "postgresql":
            _validate_answer(answer, rules)
            # One statement is its own transaction; inside a caller's transaction it gets a
            # savepoint like any other write here, so an IntegrityError leaves that usable.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                won = _record_one_statement(assignment, upcoming, answer, client_key)
            if won:
                current = upcoming[0]
                return 201, _body(
                    current["pk"], current["is_tutorial"], assignment, answer.says_synthetic, upcoming[1:]
                )
            upcoming = None  # a concurrent submit won the claim: replay or conflict, below
        with transaction.atomic():
            return _record(assignment, token, answer, client_key, rules, upcoming)
    except IntegrityError:
        # Only a client_key already used for another answer gets here (the claim above
        # the insert rules out a second row for this presentation); nothing was written.
        raise RatingError(409, "key_reused", "This client_key was already used for another answer.") from None


_UUID_FIELD = Judgment._meta.get_field("client_key")


def _record_one_statement(
    assignment: Assignment, upcoming: list[dict], answer: Answer, client_key: uuid.UUID
) -> bool:
    """PostgreSQL: claim, insert the answer and update the assignment's progress in ONE statement
    (data-modifying CTEs), so the usual answer costs one round trip and no BEGIN/COMMIT.

    The same guarantees as ``_record``'s statements: the claim is the conditional UPDATE (a
    concurrent submit waits on the row lock, then sees ``answered_at`` set and claims nothing),
    the insert and the progress update only happen when the claim matched every row, and the
    one-to-one and unique ``client_key`` constraints abort the whole statement. A condition
    code that is not in the library claims nothing either (and raises). True when this request
    recorded the answer; False when another one had claimed the item.
    """
    current = upcoming[0]
    following = upcoming[1] if len(upcoming) > 1 else None
    now = timezone.now()
    code = answer.diagnosis if answer.diagnosis not in (None, "unsure") else None
    if current["is_tutorial"]:
        code = None
    progress = []
    if assignment.started_at is None:
        progress.append("started_at = COALESCE(started_at, %(now)s)")
    if following is None:
        progress.append("finished_at = %(now)s")
    sql = _one_statement_sql(current["is_tutorial"], code is not None, ", ".join(progress))
    params = {
        "now": now,
        "current": current["pk"],
        "following": following["pk"] if following else -1,
        "expected": 2 if following else 1,
        "key": client_key,
        "says_synthetic": answer.says_synthetic,
        "confidence": answer.confidence,
        "unsure": answer.diagnosis == "unsure",
        "comment": answer.comment,
        "response_ms": answer.response_ms,
        "code": code,
        "assignment": assignment.pk,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed, inserted, code_known = cursor.fetchone()
    if not code_known:  # a code of the frozen list that left the library: nothing was written
        raise RuntimeError(f"condition {code!r} not found")
    if claimed < params["expected"]:
        return False
    if inserted != 1:  # cannot happen: the insert runs whenever the claim matched
        raise RuntimeError("the answer was claimed but not inserted")
    if following is not None and following["shown_at"] is None:
        following["shown_at"] = now
    return True


@functools.cache
def _one_statement_sql(is_tutorial: bool, with_code: bool, progress: str) -> str:
    p, a, c = _table(Presentation), _table(Assignment), _table(Condition)
    cond = f"SELECT id FROM {c} WHERE code = %(code)s" if with_code else "SELECT CAST(NULL AS bigint) AS id"
    won = "(SELECT count(*) FROM claim) = %(expected)s"
    if is_tutorial:
        insert = (
            f"INSERT INTO {_table(TutorialAnswer)} (presentation_id, client_key, says_synthetic, answered_at) "
            f"SELECT %(current)s, %(key)s, %(says_synthetic)s, %(now)s WHERE {won} RETURNING 1"
        )
    else:
        insert = (
            f"INSERT INTO {_table(Judgment)} (presentation_id, client_key, says_synthetic, confidence, "
            f"diagnosis_id, diagnosis_unsure, comment, response_ms, answered_at, revision) "
            f"SELECT %(current)s, %(key)s, %(says_synthetic)s, %(confidence)s, (SELECT id FROM cond), "
            f"%(unsure)s, %(comment)s, %(response_ms)s, %(now)s, 1 WHERE {won} RETURNING 1"
        )
    progress_cte = (
        f", progress AS (UPDATE {a} SET {progress} WHERE id = %(assignment)s AND {won} RETURNING 1)"
        if progress
        else ""
    )
    return (
        f"WITH cond AS ({cond}), "
        f"claim AS (UPDATE {p} SET "
        f"answered_at = CASE WHEN id = %(current)s THEN %(now)s ELSE answered_at END, "
        f"shown_at = CASE WHEN id = %(following)s AND shown_at IS NULL THEN %(now)s ELSE shown_at END "
        f"WHERE ((id = %(current)s AND answered_at IS NULL) OR id = %(following)s) "
        f"AND EXISTS (SELECT 1 FROM cond) RETURNING id), "
        f"ins AS ({insert}){progress_cte} "
        f"SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM ins), EXISTS (SELECT 1 FROM cond)"
    )


def _record(
    assignment: Assignment,
    token: str,
    answer: Answer,
    client_key: uuid.UUID,
    rules: _Rules,
    upcoming: list[dict] | None = None,
) -> tuple[int, dict]:
    # Fast path, the usual case: the token is the rater's current item. One read gives the
    # current item and the two after it (for the next state), without looking the token up.
    upcoming = upcoming or _upcoming(assignment, 3)
    if not upcoming or upcoming[0]["public_token"] != token:
        return _not_current(assignment, token, answer, client_key, rules)
    _validate_answer(answer, rules)
    current = upcoming[0]
    now = timezone.now()
    db_now = connection.ops.adapt_datetimefield_value(now)
    sql = _sql()
    following = upcoming[1] if len(upcoming) > 1 else None
    with connection.cursor() as cursor:
        # Claim the answer (conditional on answered_at still empty) and stamp shown_at of the
        # item the response will show, in one UPDATE; the following row always matches the
        # WHERE, so the row count says exactly whether this request claimed the current item.
        if following is not None:
            cursor.execute(
                sql["claim_and_show"],
                [current["pk"], db_now, following["pk"], db_now, current["pk"], following["pk"]],
            )
            expected = 2
            if following["shown_at"] is None:
                following["shown_at"] = now
        else:
            cursor.execute(sql["claim_last"], [db_now, current["pk"]])
            expected = 1
        if cursor.rowcount < expected:  # a concurrent submit won the claim: replay or conflict
            return _not_current(assignment, token, answer, client_key, rules)
        key = _UUID_FIELD.get_db_prep_value(client_key, connection)
        if current["is_tutorial"]:
            cursor.execute(sql["tutorial"], [current["pk"], key, answer.says_synthetic, db_now])
        else:
            unsure = answer.diagnosis == "unsure"
            values = [
                current["pk"],
                key,
                answer.says_synthetic,
                answer.confidence,
                unsure,
                answer.comment,
                answer.response_ms,
                db_now,
            ]
            if answer.diagnosis and not unsure:
                cursor.execute(sql["judgment_code"], [*values, answer.diagnosis])
                if cursor.rowcount != 1:  # a code of the frozen list that left the library
                    raise RuntimeError(f"condition {answer.diagnosis!r} not found")
            else:
                cursor.execute(sql["judgment"], values)
        # The first and the last answer only.
        if assignment.started_at is None and following is None:
            cursor.execute(sql["started_finished"], [db_now, db_now, assignment.pk])
        elif assignment.started_at is None:
            cursor.execute(sql["started"], [db_now, assignment.pk])
        elif following is None:
            cursor.execute(sql["finished"], [db_now, assignment.pk])
    return 201, _body(current["pk"], current["is_tutorial"], assignment, answer.says_synthetic, upcoming[1:])


def _not_current(
    assignment: Assignment, token: str, answer: Answer, client_key: uuid.UUID, rules: _Rules
) -> tuple[int, dict]:
    """The token is not the current item: a replay, an edit, another rater's token, or out of order."""
    p = (
        Presentation.objects.select_related("judgment", "tutorial_answer")
        .filter(public_token=token, assignment=assignment)
        .first()
    )
    if p is None:
        raise RatingError(404, "not_found", "No such item for you.")
    if p.answered_at is not None:
        return _answered_again(p, assignment, answer, client_key, rules)
    _validate_answer(answer, rules)
    raise RatingError(409, "out_of_order", "This is not your current item; reload to continue.")


def _judgment_fields(answer: Answer, rules: _Rules) -> dict:
    unsure = answer.diagnosis == "unsure"
    diagnosis_id = None
    if answer.diagnosis and not unsure:
        diagnosis_id = _diagnosis_ids(rules.config)[answer.diagnosis]
    return {
        "says_synthetic": answer.says_synthetic,
        "confidence": answer.confidence,
        "diagnosis_id": diagnosis_id,
        "diagnosis_unsure": unsure,
        "comment": answer.comment,
        "response_ms": answer.response_ms,
    }


def _answered_again(
    p: Presentation, assignment: Assignment, answer: Answer, client_key: uuid.UUID, rules: _Rules
) -> tuple[int, dict]:
    existing = _existing_answer(p)
    if existing is not None and existing.client_key == client_key:
        return 200, _body(p.pk, p.is_tutorial, assignment, existing.says_synthetic)
    if rules.config["answers_editable"] and isinstance(existing, Judgment):
        _validate_answer(answer, rules)
        fields = _judgment_fields(answer, rules)
        Judgment.objects.filter(pk=existing.pk).update(
            client_key=client_key, revision=existing.revision + 1, edited_at=timezone.now(), **fields
        )
        return 200, _body(p.pk, p.is_tutorial, assignment, answer.says_synthetic)
    raise RatingError(409, "already_answered", "This item was already answered; answers are final.")
