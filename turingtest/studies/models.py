"""Studies, raters and judgments: the Turing test itself.

Data flow: a researcher's ``Study`` holds a pool of ``StudyItem`` (library images).
An ``Invitation`` lets a rater join; the rater gets one ``Assignment`` with a
seeded order of ``Presentation`` rows (repeats and tutorial items included).
Each presentation gets at most one ``Judgment`` (database-enforced).

Raters only ever see ``Presentation.public_token``: an opaque random token,
checked against their own assignment when the image is fetched.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from turingtest.core import roles
from turingtest.library.models import Condition, Image

DEFAULT_CONSENT = (
    "You are invited to take part in a study of whether clinicians can tell real skin images from "
    "synthetic ones made by a generative model. Your answers and your professional details (role, years "
    "of experience) are stored under a pseudonym and analysed in aggregate. Taking part is voluntary and "
    "you can stop at any time."
)

_WITHDRAW = (
    "You can withdraw at any time from your list of rating tasks; on request your name, username and "
    "e-mail address are then erased, and only your pseudonym remains."
)
WITHDRAWAL_TEXT = {
    "keep": f"{_WITHDRAW} The answers you gave before withdrawing stay in the analysis, under your pseudonym.",
    "delete": f"{_WITHDRAW} The answers you gave are deleted and left out of the analysis.",
}

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # what a PostgreSQL bigint holds


def seed_check(seed: int) -> int:
    """``seed`` if a study can store it, else ``ValueError`` (not a database error, a 500)."""
    if not SEED_MIN <= seed <= SEED_MAX:
        raise ValueError(f"seed {seed} is out of range: use a whole number from {SEED_MIN} to {SEED_MAX}")
    return seed


def new_pseudonym() -> str:
    return secrets.token_hex(6)


def new_token() -> str:
    return secrets.token_hex(16)


class StudyQuerySet(models.QuerySet):
    def visible_to(self, user) -> StudyQuerySet:
        """The one rule of who sees a study: its owner, its collaborators and admins (holders of
        ``studies.view_all_studies``, see ``turingtest.core.roles``); nobody else.

        Every page, API and export that shows a study filters through this (``Study.is_visible_to``
        too), so a study someone may not see is a 404 everywhere and its existence is not confirmed.
        """
        if not user.is_authenticated:
            return self.none()
        if roles.may_view_all_studies(user):
            return self.all()
        return self.filter(models.Q(owner=user) | models.Q(collaborators=user)).distinct()


class Study(models.Model):
    """A Turing-test study. ``config`` is frozen (hashed) when the study opens.

    ``config`` keys (see ``turingtest.studies.protocol``): questions
    (confidence, diagnosis, comment), tutorial size, repeat fraction, exposure
    limit in ms, answers editable, show score, items per rater, anchor count.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        # Raters are told to come back later and nothing is lost; resuming reopens. Closing
        # is only for the end (it cannot be undone).
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class WithdrawalPolicy(models.TextChoices):
        KEEP = "keep", "Keep the answers given so far (pseudonymous)"
        DELETE = "delete", "Delete the answers given so far"

    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown shown to raters before they start.")
    consent_text = models.TextField(blank=True)
    consent_version = models.CharField(
        max_length=40,
        default="1",
        blank=True,
        help_text="The consent text's version as the ethics approval names it; stored with each agreement.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_studies"
    )
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_studies"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT, db_index=True)
    conditions = models.ManyToManyField(
        Condition, blank=True, help_text="Diagnosis choices offered to raters."
    )
    config = models.JSONField(default=dict, blank=True)
    config_sha256 = models.CharField(max_length=64, blank=True)
    # A PostgreSQL bigint: a larger seed is a validation error, not a "bigint out of range" 500.
    seed = models.BigIntegerField(
        default=0, validators=[MinValueValidator(SEED_MIN), MaxValueValidator(SEED_MAX)]
    )
    created = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    pool_summary = models.JSONField(
        default=dict,
        blank=True,
        help_text="Written with each pool draw: matched or not, the stratum table (condition × type × "
        "kind: wanted / available / drawn) and the candidates the tutorial/rated separation removed.",
    )

    paused_at = models.DateTimeField(null=True, blank=True, help_text="When the current pause began.")
    # E-mail texts are not part of the frozen design: they can change while the study runs.
    # Blank means the default text (``turingtest.studies.mailing``).
    invitation_subject = models.CharField(max_length=200, blank=True)
    invitation_body = models.TextField(blank=True)
    reminder_subject = models.CharField(max_length=200, blank=True)
    reminder_body = models.TextField(blank=True)
    # What happens to a withdrawing rater's answers; stated in the consent text they agree to.
    withdrawal_policy = models.CharField(
        max_length=6,
        choices=WithdrawalPolicy.choices,
        default=WithdrawalPolicy.KEEP,
        help_text="When a rater withdraws consent: keep their answers (pseudonymous) or delete them.",
    )

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created"]
        # Explicit, so ``is_staff`` alone grants neither (see turingtest.core.roles).
        permissions = [
            ("view_all_studies", "Can see and manage every study"),
            ("export_identities", "Can export rater identities (usernames, e-mails)"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_frozen(self) -> bool:
        """Open, paused and closed studies keep the design they were opened with."""
        return self.status != self.Status.DRAFT

    @property
    def takes_invitations(self) -> bool:
        """Invitation links are made for open or paused studies only: a draft's design can still
        change, and a closed study takes nobody."""
        return self.status in (self.Status.OPEN, self.Status.PAUSED)

    def consent_text_shown(self) -> str:
        """The consent text raters see and agree to (the default one when left blank), ending
        with what withdrawing does under this study's ``withdrawal_policy``: what raters agree
        to includes it, so its sha256 does too."""
        return f"{self.consent_text or DEFAULT_CONSENT}\n\n{WITHDRAWAL_TEXT[self.withdrawal_policy]}"

    @property
    def is_unmatched(self) -> bool:
        """The researcher explicitly chose a pool not matched within condition (frozen design)."""
        return bool((self.config or {}).get("unmatched"))

    @property
    def leak_audit_overridden(self) -> bool:
        """Opened although the leak audit of its design flagged a feature (frozen design)."""
        return bool(((self.config or {}).get("leak_audit") or {}).get("overridden"))

    def design_warnings(self) -> list[str]:
        """What a report of this study must warn about: choices recorded in the frozen design
        that weaken the blinding."""
        warnings = []
        if self.is_unmatched:
            warnings.append(
                "Unmatched design: real and synthetic images are not drawn in the study's ratio within "
                "each condition, so the diagnosis can give the answer away."
            )
        if self.leak_audit_overridden:
            flagged = ", ".join((self.config.get("leak_audit") or {}).get("flagged") or [])
            warnings.append(
                f"Opened over a flagged leak audit ({flagged}): a rater's browser could tell real from "
                "synthetic without looking at the pixels."
            )
        return warnings

    def is_visible_to(self, user) -> bool:
        """``Study.objects.visible_to`` for this one study (the owner and admins cost no query)."""
        if self.is_managed_by(user):
            return True
        return Study.objects.visible_to(user).filter(pk=self.pk).exists()

    def is_managed_by(self, user) -> bool:
        """Editing, opening, closing, inviting, sharing and leak audits are for the owner and admins;
        collaborators only look."""
        return bool(user.is_authenticated and (self.owner_id == user.pk or roles.may_view_all_studies(user)))


class StudyItem(models.Model):
    """An image in a study's pool. Tutorial items are shown with feedback first
    and kept apart from the study data; anchor items are seen by every rater."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="study_items")
    is_tutorial = models.BooleanField(default=False)
    is_anchor = models.BooleanField(default=False)
    # A catch image the researcher designated (config "attention_checks"): shown at seeded
    # positions among the rated items, outside the matched pool draw, never in the statistics.
    is_attention_check = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "image"], name="studyitem_unique_image")]


class RaterProfile(models.Model):
    """Professional details used in the statistics; ``pseudonym`` is what exports show."""

    class Role(models.TextChoices):
        DERMATOLOGIST = "dermatologist", "Board-certified dermatologist"
        RESIDENT = "resident", "Dermatology resident"
        CLINICIAN = "clinician", "Other clinician"
        OTHER = "other", "Other"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile"
    )
    pseudonym = models.CharField(max_length=16, unique=True, default=new_pseudonym, editable=False)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OTHER)
    years_experience = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"rater {self.pseudonym}"


class Invitation(models.Model):
    """A single-use invitation link. Only the sha256 of the token is stored.

    ``email`` is set for invitations sent by e-mail; ``revoked_at`` ends an unused link for good;
    ``reissue_of`` points at the link this one replaced.
    """

    class State(models.TextChoices):
        UNUSED = "unused", "Unused"
        USED = "used", "Used"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    token_sha256 = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    email = models.EmailField(blank=True, help_text="Where the link was e-mailed, if it was.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    reissue_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reissues"
    )

    class Meta:
        ordering = ["-created", "-pk"]

    def state(self, now=None) -> str:
        """Used beats revoked beats expired: a used link stays a record of who joined."""
        if self.used_at is not None:
            return self.State.USED
        if self.revoked_at is not None:
            return self.State.REVOKED
        if self.expires_at <= (now or timezone.now()):
            return self.State.EXPIRED
        return self.State.UNUSED


class Assignment(models.Model):
    """One rater's run through one study, in the order drawn from ``seed``."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    seed = models.BigIntegerField()
    consented_at = models.DateTimeField(null=True, blank=True)
    # What was agreed to, recorded with the agreement: the text's sha256 and its version.
    consent_sha256 = models.CharField(max_length=64, blank=True)
    consent_version = models.CharField(max_length=40, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the rater withdrew under the "keep" policy (under "delete" the row is gone):
    # the answers stay in the analysis, the rater answers no more.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Sizes fixed at creation. Answers are given strictly in position order, so progress is
    # the current item's position: the state needs no COUNT and no counter updates.
    n_items = models.PositiveIntegerField(default=0, help_text="Study presentations (repeats included).")
    n_tutorial = models.PositiveIntegerField(default=0)
    # Rater quality control. ``qualified`` is decided once, when the last tutorial answer is
    # written, and only in a study with a qualification threshold (None: not asked or not yet).
    qualified = models.BooleanField(null=True, blank=True)
    n_tutorial_correct = models.PositiveIntegerField(null=True, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True, help_text="Left out of the statistics.")
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    exclusion_reason = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "rater"], name="assignment_unique_rater")]

    @property
    def is_excluded(self) -> bool:
        return self.excluded_at is not None

    @property
    def qualification_result(self) -> str:
        """ "passed", "failed", or "" (the study asks no qualification, or the tutorial is unfinished)."""
        return {True: "passed", False: "failed"}.get(self.qualified, "")


class Presentation(models.Model):
    """The ``position``-th image a rater is shown. Repeats point at the first showing."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="presentations")
    item = models.ForeignKey(StudyItem, on_delete=models.PROTECT, related_name="presentations")
    position = models.PositiveIntegerField()
    is_tutorial = models.BooleanField(default=False)
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats"
    )
    public_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    shown_at = models.DateTimeField(null=True, blank=True, help_text="When the state API first served it.")
    answered_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set in the same transaction as the answer; the claim that makes a write happen once.",
    )
    image_served_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Exposure-limited studies: when the image bytes were sent (once per presentation).",
    )

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "position"], name="presentation_unique_position")
        ]
        indexes = [
            # "The rater's current item": first unanswered presentation by position.
            models.Index(fields=["assignment", "answered_at", "position"], name="presentation_next_idx")
        ]

    @property
    def is_repeat(self) -> bool:
        return self.repeat_of_id is not None


class Judgment(models.Model):
    """A rater's answer to one presentation, written once.

    ``client_key`` is generated by the browser per answer: a retried or
    double-clicked submit carries the same key and gets the first result back.
    """

    presentation = models.OneToOneField(Presentation, on_delete=models.CASCADE, related_name="judgment")
    client_key = models.UUIDField(unique=True)
    says_synthetic = models.BooleanField()
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    diagnosis = models.ForeignKey(Condition, null=True, blank=True, on_delete=models.PROTECT)
    diagnosis_unsure = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Measured in the browser.")
    # Not auto_now_add (which overrides any value given): the answer writers store the moment
    # they claimed the presentation, the same value as ``Presentation.answered_at``.
    answered_at = models.DateTimeField(default=timezone.now)
    revision = models.PositiveSmallIntegerField(
        default=1, help_text="Above 1 when an editable answer changed."
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    is_late = models.BooleanField(
        default=False,
        help_text="Exposure-limited studies: the answer arrived more than exposure_ms + answer_window_ms "
        "after the image was sent (kept, and reported).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True) | models.Q(confidence__gte=1, confidence__lte=5),
                name="judgment_confidence_1_to_5",
            )
        ]


class TutorialAnswer(models.Model):
    """An answer to a tutorial (labelled example) presentation.

    Kept in its own table so study data (``Judgment``) never contains practice
    answers: reports and exports read ``Judgment`` only.
    """

    presentation = models.OneToOneField(
        Presentation, on_delete=models.CASCADE, related_name="tutorial_answer"
    )
    client_key = models.UUIDField(unique=True)
    says_synthetic = models.BooleanField()
    answered_at = models.DateTimeField(default=timezone.now)  # as Judgment.answered_at


class LeakAudit(models.Model):
    """One run of the leak audit (``audit.audit_study``) on a study's design, from the study page.

    Run by a Celery task (``tasks.run_leak_audit``); ``design_sha256`` is the design it audited,
    so opening the study only heeds an audit of the design being opened. ``result`` holds the
    feature table, ``flagged`` the names of the features that failed the audit.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="leak_audits")
    design_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    n_items = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=list, blank=True, help_text="One row per feature and classifier.")
    flagged = models.JSONField(default=list, blank=True, help_text="Names of flagged features.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]


class EmailRecord(models.Model):
    """One e-mail the platform tried to send for a study: to whom, what kind, when, and the error if
    the mail server refused it (``error`` empty: handed to the mail server)."""

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        REMINDER = "reminder", "Reminder"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="emails")
    recipient = models.EmailField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-sent_at", "-pk"]
