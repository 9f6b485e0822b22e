"""``AuditEvent``: one append-only row per recorded action."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who did what to which object, when, from where, with the values before and after.

    Append-only: nothing in the platform updates or deletes a row (the admin is read-only and
    PostgreSQL refuses it by trigger). Actor, object and study are plain values, so an event
    outlives the user, study or image it names.
    """

    class Action(models.TextChoices):
        STUDY_CREATED = "study_created", "Study created"
        STUDY_UPDATED = "study_updated", "Study design changed"
        STUDY_OPENED = "study_opened", "Study opened"
        STUDY_PAUSED = "study_paused", "Study paused"
        STUDY_RESUMED = "study_resumed", "Study resumed"
        STUDY_CLOSED = "study_closed", "Study closed"
        COLLABORATOR_ADDED = "collaborator_added", "Collaborator added"
        COLLABORATOR_REMOVED = "collaborator_removed", "Collaborator removed"
        INVITATION_CREATED = "invitation_created", "Invitations created"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        INVITATION_USED = "invitation_used", "Invitation used"
        CONSENT_GIVEN = "consent_given", "Consent given"
        CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn"
        JUDGMENT_CHANGED = "judgment_changed", "Judgment changed"
        RATER_EXCLUDED = "rater_excluded", "Rater excluded"
        RATER_INCLUDED = "rater_included", "Rater exclusion lifted"
        IMAGE_GROUND_TRUTH_CHANGED = "image_ground_truth_changed", "Image ground truth changed"
        CHECKPOINT_UPLOADED = "checkpoint_uploaded", "Checkpoint uploaded"
        BATCH_SCHEDULED = "batch_scheduled", "Batch scheduled"
        BATCH_CANCELLED = "batch_cancelled", "Batch cancelled"
        IMPORT_CREATED = "import_created", "Import started"
        IMPORT_FINISHED = "import_finished", "Import finished"
        EXPORT = "export", "Export"
        ROLE_CHANGED = "role_changed", "Role changed"
        PERMISSION_CHANGED = "permission_changed", "Permissions changed"
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOCKOUT = "lockout", "Lockout"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="User id; no foreign key.")
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="Username, or the rater's pseudonym for raters."
    )
    object_type = models.CharField(max_length=100, blank=True, help_text='"app_label.model"')
    object_id = models.CharField(max_length=64, blank=True)
    study_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.CharField(max_length=45, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["study_id", "at"], name="trail_event_study_at"),
            models.Index(fields=["action", "at"], name="trail_event_action_at"),
        ]

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_type} {self.object_id}".rstrip()
