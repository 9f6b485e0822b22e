"""The invitation list of a study: every link with its state, revoking and re-issuing.

Creating links stays ``services.invitation_create`` (only the sha256 of a token is stored);
this module adds what a researcher does with links afterwards. A raw token exists only in the
return value of the call that made it: the pages show new links once (from the session) and
offer them as CSV then, never later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from turingtest.studies import services
from turingtest.studies.models import Invitation, RaterProfile, Study
from turingtest.trail.services import Action, event_record


@dataclass(frozen=True)
class NewLink:
    """A link just made: the only moment its URL is known."""

    invitation_id: int
    url: str
    email: str
    expires_at: datetime


@dataclass(frozen=True)
class InvitationRow:
    pk: int
    state: str  # Invitation.State
    email: str
    created: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_pseudonym: str  # the rater's pseudonym, never their name or e-mail
    revoked_at: datetime | None
    reissue_of_id: int | None

    @property
    def can_revoke(self) -> bool:
        return self.state == Invitation.State.UNUSED

    @property
    def can_reissue(self) -> bool:
        return self.state != Invitation.State.USED


def invitation_rows(study: Study) -> list[InvitationRow]:
    """Every invitation of ``study``, newest first, in two queries whatever their number."""
    invitations = list(Invitation.objects.filter(study=study).order_by("-created", "-pk"))
    user_ids = {i.used_by_id for i in invitations if i.used_by_id}
    pseudonyms = dict(RaterProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "pseudonym"))
    now = timezone.now()
    return [
        InvitationRow(
            pk=i.pk,
            state=i.state(now),
            email=i.email,
            created=i.created,
            expires_at=i.expires_at,
            used_at=i.used_at,
            used_by_pseudonym=pseudonyms.get(i.used_by_id, "") if i.used_by_id else "",
            revoked_at=i.revoked_at,
            reissue_of_id=i.reissue_of_id,
        )
        for i in invitations
    ]


@transaction.atomic
def invitation_create_links(
    *, study: Study, count: int = 0, emails: list[str] = (), days: int = services.INVITATION_DAYS
) -> list[NewLink]:
    """``count`` anonymous links plus one link per address in ``emails`` (recorded on the row);
    ``StudyFrozen`` unless the study is open or paused."""
    n = count + len(emails)
    tokens = services.invitation_create(study=study, count=n, days=days)
    rows = Invitation.objects.in_bulk(
        [services.invitation_token_sha256(t) for t in tokens], field_name="token_sha256"
    )
    links = []
    for token, email in zip(tokens, [*emails, *[""] * count]):
        inv = rows[services.invitation_token_sha256(token)]
        if email:
            inv.email = email
            inv.save(update_fields=["email"])
        links.append(NewLink(inv.pk, services.invitation_url(token), email, inv.expires_at))
    return links


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """End an unused link for good; revoking a revoked one is a no-op. A used link is a record of
    who joined and cannot be revoked (``ValueError``)."""
    inv = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if inv.revoked_at is not None:
        return inv
    if inv.used_at is not None:
        raise ValueError("this link was used already; it cannot be revoked")
    inv.revoked_at = timezone.now()
    inv.save(update_fields=["revoked_at"])
    event_record(action=Action.INVITATION_REVOKED, obj=inv, study=inv.study_id)
    return inv


@transaction.atomic
def invitation_reissue(*, invitation: Invitation, days: int = services.INVITATION_DAYS) -> NewLink:
    """A fresh link for the same person (same e-mail, if any) in place of an unused, expired or
    revoked one, which is revoked if it still worked. ``ValueError`` for a used link."""
    inv = Invitation.objects.select_for_update().select_related("study").get(pk=invitation.pk)
    if inv.used_at is not None:
        raise ValueError("this link was used already; make a new one instead")
    if inv.revoked_at is None:
        inv.revoked_at = timezone.now()
        inv.save(update_fields=["revoked_at"])
        event_record(action=Action.INVITATION_REVOKED, obj=inv, study=inv.study_id, after={"reissued": True})
    (link,) = invitation_create_links(
        study=inv.study, emails=[inv.email] if inv.email else [], count=0 if inv.email else 1, days=days
    )
    Invitation.objects.filter(pk=link.invitation_id).update(reissue_of=inv)
    return link
