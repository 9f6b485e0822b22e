"""Study operations: design (create, pool, open, close, copy, share), invitations, assignments.

Every function that writes does it in one transaction and guards state first, so a
retried request is a no-op that returns the first result (STYLE.md rule 9). What a rater
does once assigned (the state, answers) lives in ``turingtest.studies.rating``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from turingtest.core import roles
from turingtest.library.models import Condition, Image
from turingtest.studies import protocol
from turingtest.studies.candidates import candidate_images as _candidate_images
from turingtest.studies.candidates import match_error as _match_error
from turingtest.studies.candidates import strata_table
from turingtest.studies.models import (
    Assignment,
    Invitation,
    LeakAudit,
    Presentation,
    RaterProfile,
    Study,
    StudyItem,
    seed_check,
)
from turingtest.trail.services import Action, event_record

INVITATION_DAYS = 14


class StudyFrozen(Exception):
    """The study is open or closed: its design cannot change (copy it instead)."""


class InvitationInvalid(Exception):
    """An invitation link that cannot be used, and why.

    ``reason``: ``unknown`` (no such token), ``not_open`` (the study is a draft), ``used``,
    ``expired``, ``revoked``, ``closed``. The first two may change or never existed; the others
    are gone for good (the views answer 404 and 410).
    """

    GONE = frozenset({"used", "expired", "revoked", "closed"})

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def new_seed() -> int:
    return secrets.randbits(62)


# --- studies ----------------------------------------------------------------------


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
    try:
        draw = protocol.draw_pool(
            candidates=_candidate_images(config, study=study), config=config, seed=study.seed
        )
    except protocol.MatchError as exc:
        raise _match_error(exc) from None
    catch = config["attention_checks"]
    missing = sorted(set(catch) - set(Image.objects.filter(pk__in=catch).values_list("pk", flat=True)))
    if missing:
        raise ValueError(f"attention_checks: no library image with id {missing}")
    study.items.all().delete()
    anchors = set(draw.anchors)
    StudyItem.objects.bulk_create(
        [StudyItem(study=study, image_id=i, is_anchor=i in anchors) for i in draw.items]
        + [StudyItem(study=study, image_id=i, is_tutorial=True) for i in draw.tutorial]
        + [StudyItem(study=study, image_id=i, is_attention_check=True) for i in catch]
    )
    study.conditions.set(_study_conditions(config))
    study.pool_summary = {
        "matched": draw.matched,
        "strata": strata_table(draw.strata),
        "n_removed_shown_with_feedback": draw.n_removed_shown_with_feedback,
        "n_removed_rated_elsewhere": draw.n_removed_rated_elsewhere,
        "n_removed_unlabelled_type": draw.n_removed_unlabelled_type,
    }
    study.save(update_fields=["pool_summary"])


@transaction.atomic
def study_create(
    *,
    owner: AbstractBaseUser,
    title: str,
    config: dict | None = None,
    instructions: str = "",
    consent_text: str = "",
    withdrawal_policy: str = Study.WithdrawalPolicy.KEEP,
    seed: int | None = None,
) -> Study:
    """A draft study with its pool drawn from the library (``ValueError`` if the library can't fill it)."""
    full = protocol.config_with_defaults(config)
    study = Study.objects.create(
        owner=owner,
        title=title,
        instructions=instructions,
        consent_text=consent_text,
        withdrawal_policy=Study.WithdrawalPolicy(withdrawal_policy),
        config=full,
        seed=new_seed() if seed is None else seed_check(seed),
    )
    study_build_pool(study=study)
    event_record(action=Action.STUDY_CREATED, actor=owner, obj=study, after=_design_fields(study))
    return study


def _design_fields(
    study: Study,
    names: Iterable[str] = ("title", "instructions", "consent_text", "withdrawal_policy", "config", "seed"),
) -> dict:
    """The design values an audit event records (the item list is in the pool summary)."""
    return {name: getattr(study, name) for name in names}


@transaction.atomic
def study_update(*, study: Study, rebuild_pool: bool = True, **fields: Any) -> Study:
    """Change a draft's title, texts or config; the pool is redrawn when the config changed."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.is_frozen:
        raise StudyFrozen("the study is open or closed; copy it to change it")
    allowed = {"title", "instructions", "consent_text", "withdrawal_policy", "config", "seed"}
    if set(fields) - allowed:
        raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
    if "config" in fields:
        fields["config"] = protocol.config_with_defaults(fields["config"])
    if "seed" in fields:
        seed_check(fields["seed"])
    before = _design_fields(study, fields)
    for key, value in fields.items():
        setattr(study, key, value)
    study.save()
    event_record(action=Action.STUDY_UPDATED, obj=study, before=before, after=_design_fields(study, fields))
    if rebuild_pool and ({"config", "seed"} & set(fields)):
        study_build_pool(study=study)
    return study


def study_design(study: Study) -> dict:
    """Everything that defines the analysis: config, seed, texts, and the exact item list.

    A frozen study's config is hashed as stored (it was completed with the defaults when it
    opened), so a default added later does not change the hash of a study opened before.
    """
    items = list(
        study.items.order_by("image_id").values_list(
            "image_id", "image__sha256", "image__kind", "is_anchor", "is_tutorial"
        )
    )
    return {
        "config": study.config if study.is_frozen else protocol.config_with_defaults(study.config),
        "seed": study.seed,
        "instructions": study.instructions,
        "consent_text": study.consent_text,
        "items": [list(row) for row in items],
    }


def study_design_sha256(study: Study) -> str:
    blob = json.dumps(study_design(study), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class LeakFlagged(ValueError):
    """The latest leak audit of this design flagged a feature; opening needs an explicit override."""


def _tutorial_clashes(study: Study) -> int:
    """Items of ``study`` that another study uses the other way (tutorial there, rated here or
    vice versa): drafts drawn before one another, or before this rule, can clash."""
    other = StudyItem.objects.filter(image=OuterRef("image")).exclude(study=study)
    return (
        study.items.alias(
            has_rated=Exists(other.filter(is_tutorial=False)),
            has_tutorial=Exists(other.filter(is_tutorial=True)),
        )
        .filter(Q(is_tutorial=True, has_rated=True) | Q(is_tutorial=False, has_tutorial=True))
        .count()
    )


def _leak_audit_record(study: Study, draft_sha256: str, *, override_leaks: bool) -> dict:
    """What the frozen design records of the leak audit; ``LeakFlagged`` without an override."""
    audit = (
        LeakAudit.objects.filter(study=study, design_sha256=draft_sha256, status=LeakAudit.Status.SUCCEEDED)
        .order_by("-finished")
        .first()
    )
    if audit is None:
        return {"status": "not run", "audit": None, "flagged": [], "overridden": False}
    if audit.flagged and not override_leaks:
        raise LeakFlagged(
            "the leak audit flagged " + ", ".join(audit.flagged) + ": a rater's browser can tell real from "
            "synthetic by it. Fix the leak and audit again, or open with the explicit override."
        )
    return {
        "status": "flagged" if audit.flagged else "clean",
        "audit": audit.pk,
        "flagged": list(audit.flagged),
        "overridden": bool(audit.flagged),
    }


@transaction.atomic
def study_open(*, study: Study, override_leaks: bool = False) -> Study:
    """Freeze the design: snapshot the diagnosis list and the leak audit's outcome into the
    config, hash config + items, open.

    Refused (``ValueError``) when the pool has no items or an image is a tutorial example in
    one study and rated in another; ``LeakFlagged`` when the latest leak audit of this very
    design flagged a feature, unless ``override_leaks`` (recorded in the design). Opening an
    open study is a no-op.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status in (Study.Status.OPEN, Study.Status.PAUSED):  # opened already (resume a pause)
        return study
    if study.status == Study.Status.CLOSED:
        raise StudyFrozen("a closed study cannot reopen; copy it instead")
    config = protocol.config_with_defaults(study.config)
    if not study.items.filter(is_tutorial=False).exists():
        raise ValueError("the study has no items")
    clashes = _tutorial_clashes(study)
    if clashes:
        raise ValueError(
            f"{clashes} images of this pool are shown with feedback in one study and rated in another; "
            "redraw the pool (edit and save the design)"
        )
    config["leak_audit"] = _leak_audit_record(
        study, study_design_sha256(study), override_leaks=override_leaks
    )
    config["diagnosis_choices"] = [
        {"code": c.code, "name": c.name} for c in study.conditions.order_by("map_index")
    ]
    study.config = config
    study.status = Study.Status.OPEN
    study.opened_at = timezone.now()
    study.config_sha256 = study_design_sha256(study)
    study.save(update_fields=["config", "status", "opened_at", "config_sha256"])
    event_record(action=Action.STUDY_OPENED, obj=study, after={"config_sha256": study.config_sha256})
    return study


@transaction.atomic
def study_close(*, study: Study) -> Study:
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == Study.Status.CLOSED:
        return study
    before = {"status": study.status}
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    study.save(update_fields=["status", "closed_at"])
    event_record(action=Action.STUDY_CLOSED, obj=study, before=before, after={"status": study.status})
    return study


@transaction.atomic
def study_copy(*, study: Study, owner: AbstractBaseUser, title: str | None = None) -> Study:
    """A new draft with the same design and the same items (not redrawn), to change and reopen."""
    config = {k: v for k, v in study.config.items() if k not in protocol.SNAPSHOT_KEYS}
    copy = Study.objects.create(
        owner=owner,
        title=title or f"Copy of {study.title}",
        instructions=study.instructions,
        consent_text=study.consent_text,
        withdrawal_policy=study.withdrawal_policy,
        config=config,
        seed=study.seed,
    )
    StudyItem.objects.bulk_create(
        [
            StudyItem(
                study=copy,
                image_id=i.image_id,
                is_anchor=i.is_anchor,
                is_tutorial=i.is_tutorial,
                is_attention_check=i.is_attention_check,
            )
            for i in study.items.all()
        ]
    )
    copy.conditions.set(study.conditions.all())
    event_record(action=Action.STUDY_CREATED, actor=owner, obj=copy, after={"copied_from": study.pk})
    return copy


@transaction.atomic
def study_share(*, study: Study, user: AbstractBaseUser) -> None:
    """Collaborators see the study and its results; sharing is not part of the frozen design."""
    if user.pk != study.owner_id and not study.collaborators.filter(pk=user.pk).exists():
        study.collaborators.add(user)
        event_record(action=Action.COLLABORATOR_ADDED, obj=study, after={"user_id": user.pk})


def study_verify_frozen(*, study: Study) -> bool:
    """True when an opened study's current design still hashes to what was stored at opening."""
    return bool(study.config_sha256) and study_design_sha256(study) == study.config_sha256


# --- invitations ------------------------------------------------------------------


_USED = "This invitation link has already been used."


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


invitation_token_sha256 = _token_sha256  # what an Invitation row stores for a raw token


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invite", args=[token])


@transaction.atomic
def invitation_create(*, study: Study, count: int = 1, days: int = INVITATION_DAYS) -> list[str]:
    """Create ``count`` single-use invitations; returns the raw tokens (only their sha256 is stored).

    Only for open or paused studies (``StudyFrozen`` otherwise): a draft's design may still
    change under a rater who joined, and a closed study takes nobody.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    # The stored status, not the caller's copy: an instance held since before opening is stale.
    status = Study.objects.values_list("status", flat=True).get(pk=study.pk)
    if status == Study.Status.CLOSED:
        raise StudyFrozen("the study is closed")
    if status not in (Study.Status.OPEN, Study.Status.PAUSED):
        raise StudyFrozen("invitation links are made once the study is open")
    tokens = [secrets.token_urlsafe(24) for _ in range(count)]
    expires = timezone.now() + timedelta(days=days)
    Invitation.objects.bulk_create(
        [Invitation(study=study, token_sha256=_token_sha256(t), expires_at=expires) for t in tokens]
    )
    event_record(action=Action.INVITATION_CREATED, obj=study, after={"count": count, "expires_at": expires})
    return tokens


def invitation_lookup(*, token: str) -> Invitation:
    """The invitation for ``token``, or ``InvitationInvalid`` saying why it cannot be used."""
    inv = Invitation.objects.select_related("study").filter(token_sha256=_token_sha256(token)).first()
    if inv is None:
        raise InvitationInvalid(
            "unknown", "This invitation link is not valid. Check that you copied all of it."
        )
    if inv.used_at is not None:
        raise InvitationInvalid("used", _USED)
    if inv.revoked_at is not None:
        raise InvitationInvalid(
            "revoked", "This invitation link was withdrawn. Ask the study team for a new one."
        )
    if inv.expires_at <= timezone.now():
        raise InvitationInvalid(
            "expired", "This invitation link has expired. Ask the study team for a new one."
        )
    if inv.study.status == Study.Status.CLOSED:
        raise InvitationInvalid("closed", "This study is closed.")
    if inv.study.status == Study.Status.DRAFT:
        # Assignments are drawn from the frozen design only.
        raise InvitationInvalid("not_open", "This study has not opened yet. Try the link again later.")
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
        raise InvitationInvalid("used", _USED)
    if inv.revoked_at is not None:  # revoked between the lookup and the lock
        raise InvitationInvalid("revoked", "This invitation link was withdrawn.")
    existing = Assignment.objects.filter(study=inv.study, rater=user).first()
    if existing:
        return existing
    roles.add_to_role(user, roles.RATERS)
    RaterProfile.objects.get_or_create(user=user)
    assignment = assignment_create(study=inv.study, rater=user)
    inv.used_at = timezone.now()
    inv.used_by = user
    inv.save(update_fields=["used_at", "used_by"])
    event_record(
        action=Action.INVITATION_USED,
        actor=user,
        obj=inv,
        study=inv.study_id,
        after={"assignment": assignment.pk},
    )
    return assignment


# --- assignments --------------------------------------------------------------------


@transaction.atomic
def assignment_create(*, study: Study, rater: AbstractBaseUser, seed: int | None = None) -> Assignment:
    """The rater's seeded sequence of presentations (idempotent: an existing assignment is returned)."""
    existing = Assignment.objects.filter(study=study, rater=rater).first()
    if existing:
        return existing
    config = protocol.config_with_defaults(study.config)
    rows = list(
        study.items.values_list("pk", "image__kind", "is_anchor", "is_tutorial", "is_attention_check")
    )
    items = [(pk, kind, anchor) for pk, kind, anchor, tut, catch in rows if not tut and not catch]
    tutorial = [pk for pk, _, _, tut, _ in rows if tut]
    attention = [pk for pk, _, _, _, catch in rows if catch]
    seed = new_seed() if seed is None else seed
    slots = protocol.plan_sequence(
        items=items, tutorial=tutorial, config=config, seed=seed, attention=attention
    )
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


@transaction.atomic
def assignment_consent(*, assignment: Assignment) -> None:
    """Record the agreement once: when, and to what (the shown text's sha256 and its version)."""
    study = assignment.study
    if Assignment.objects.filter(pk=assignment.pk, consented_at__isnull=True).update(
        consented_at=timezone.now(),
        consent_sha256=hashlib.sha256(study.consent_text_shown().encode()).hexdigest(),
        consent_version=study.consent_version,
    ):
        event_record(
            action=Action.CONSENT_GIVEN, actor=assignment.rater, obj=assignment, study=assignment.study_id
        )
