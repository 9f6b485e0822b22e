"""A rater withdraws consent: their answers kept or deleted as the study says, their identity erased on request.

What happens to the answers is the study's ``withdrawal_policy``, stated at the end of the
consent text the rater agreed to (``Study.consent_text_shown``):

- ``keep``: the assignment stays, marked ``withdrawn_at``; its judgments stay in the analysis
  under the pseudonym and the rater answers no more (the rater's turn no longer finds it).
- ``delete``: the assignment goes, and with it its presentations, judgments and tutorial
  answers, so every count (progress, report, exports) is as if the rater never joined. Nothing
  else is touched: other raters' rows hang off their own assignments.

Erasing the identity replaces username, e-mail and name with the pseudonym, makes the password
unusable and the account inactive, and blanks the address on invitations and e-mail records.
The ``RaterProfile`` (pseudonym, role, experience) stays, as the statistics need it. Audit
events name raters by pseudonym already, so none is rewritten (the table is append-only).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from turingtest.core import roles
from turingtest.studies.models import Assignment, EmailRecord, Invitation, Judgment, RaterProfile, Study
from turingtest.trail.services import Action, event_record


class WithdrawalRefused(Exception):
    """The request cannot be carried out as asked; the message says why."""


@dataclass(frozen=True)
class Withdrawal:
    study_id: int
    policy: str
    n_judgments: int  # judgments the rater had given
    is_deleted: bool  # those judgments were deleted
    is_identity_erased: bool


def identity_check_erasable(user: AbstractBaseUser) -> None:
    """``WithdrawalRefused`` for accounts that run the platform: erasing them would lock out studies."""
    if user.is_staff or user.is_superuser or roles.is_researcher(user):
        raise WithdrawalRefused(
            "This account also manages studies or the site, so it cannot erase itself here; "
            "ask an administrator to remove your personal details."
        )


def identity_erase(*, user: AbstractBaseUser) -> str:
    """Replace the user's identity by the pseudonym; returns the pseudonym."""
    identity_check_erasable(user)
    profile, _ = RaterProfile.objects.get_or_create(user=user)
    old_email = user.email
    user.username = f"withdrawn-{profile.pseudonym}"
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    if old_email:
        Invitation.objects.filter(email__iexact=old_email).update(email="")
        EmailRecord.objects.filter(recipient__iexact=old_email).update(recipient="")
    return profile.pseudonym


@transaction.atomic
def consent_withdraw(*, assignment: Assignment, erase_identity: bool = False) -> Withdrawal:
    """Withdraw ``assignment``'s rater from its study under the study's policy (see the module)."""
    assignment = Assignment.objects.select_for_update().select_related("study", "rater").get(pk=assignment.pk)
    if assignment.withdrawn_at is not None:
        raise WithdrawalRefused("You have already withdrawn from this study.")
    rater = assignment.rater
    if erase_identity:
        identity_check_erasable(rater)
    # The event must name the rater by pseudonym even if they never had a profile.
    RaterProfile.objects.get_or_create(user=rater)
    study = assignment.study
    policy = study.withdrawal_policy
    n_judgments = Judgment.objects.filter(presentation__assignment=assignment).count()
    is_deleted = policy == Study.WithdrawalPolicy.DELETE
    assignment_pk = assignment.pk
    if is_deleted:
        assignment.delete()  # presentations, judgments and tutorial answers cascade
    else:
        Assignment.objects.filter(pk=assignment_pk).update(withdrawn_at=timezone.now())
    event_record(
        action=Action.CONSENT_WITHDRAWN,
        actor=rater,
        obj=("studies.assignment", assignment_pk),
        study=study.pk,
        after={
            "policy": policy,
            "n_judgments": n_judgments,
            "judgments_deleted": is_deleted,
            "identity_erased": erase_identity,
        },
    )
    if erase_identity:
        identity_erase(user=rater)
    return Withdrawal(
        study_id=study.pk,
        policy=policy,
        n_judgments=n_judgments,
        is_deleted=is_deleted,
        is_identity_erased=erase_identity,
    )
