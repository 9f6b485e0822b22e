"""Invitation and reminder e-mails through Django's e-mail framework, and their record.

The backend comes from ``EMAIL_URL`` (settings: console by default, SMTP when configured).
Each study may word its own texts (``Study.invitation_subject`` … ``reminder_body``; blank
means the defaults below) with placeholders in braces; every mail sent, or refused by the mail
server, leaves an ``EmailRecord`` (recipient, kind, subject, when, error).
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from turingtest.studies import services
from turingtest.studies.invitations import NewLink, invitation_create_links
from turingtest.studies.models import Assignment, EmailRecord, Study

DEFAULTS = {
    "invitation_subject": "Invitation to the study “{title}”",
    "invitation_body": (
        "Dear {name},\n\n"
        "You are invited to take part in the study “{title}”: you will be shown skin images and asked, "
        "for each, whether it is a real photograph or was made by a generative model.\n\n"
        "Your personal link (it works once and is for you only; valid until {expires}):\n{link}\n\n"
        "Thank you,\n{sender}\n"
    ),
    "reminder_subject": "Reminder: the study “{title}”",
    "reminder_body": (
        "Dear {name},\n\n"
        "Thank you for joining the study “{title}”. You have answered {done} of {total} images so far; "
        "you can continue where you stopped:\n{link}\n\n"
        "Thank you,\n{sender}\n"
    ),
}
PLACEHOLDERS = {
    "invitation": frozenset({"name", "title", "link", "expires", "sender"}),
    "reminder": frozenset({"name", "title", "link", "done", "total", "sender"}),
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def text_of(study: Study, field: str) -> str:
    """The study's own wording of ``field``, or the default one."""
    return getattr(study, field) or DEFAULTS[field]


def check_placeholders(text: str, *, kind: str, needs_link: bool) -> None:
    """``ValidationError`` naming unknown placeholders, or a body without ``{link}``."""
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS[kind])
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS[kind]))
        raise ValidationError(
            f"Unknown placeholder {', '.join('{' + u + '}' for u in unknown)}; use {allowed}."
        )
    if needs_link and "{link}" not in text:
        raise ValidationError("The text must contain {link}: it is the rater's way in.")


def fill(text: str, values: dict[str, object]) -> str:
    """Replace known ``{placeholders}``; anything else in braces stays as written."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def parse_recipients(text: str) -> list[tuple[str, str]]:
    """(name, address) per non-empty line: ``a@b.org`` or ``Dr A. Smith <a@b.org>``; commas and
    semicolons separate too. ``ValidationError`` lists the lines that are not addresses."""
    out, bad, seen = [], [], set()
    for raw in re.split(r"[\n;,]+", text):
        line = raw.strip()
        if not line:
            continue
        name, address = parseaddr(line)
        try:
            validate_email(address)
        except ValidationError:
            bad.append(line)
            continue
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append((name, address))
    if bad:
        raise ValidationError("Not e-mail addresses: " + "; ".join(bad))
    return out


def _sender(study: Study) -> str:
    owner = study.owner
    return owner.get_full_name() or "The study team"


def _send(records: list[tuple[EmailRecord, EmailMessage]]) -> list[EmailRecord]:
    """Send over one connection; a refusal is recorded on its row, never raised, so one bad
    address does not stop the others and the page can say what failed."""
    try:
        connection = get_connection(fail_silently=False)
        connection.open()
    except Exception as exc:  # the mail server is unreachable: every mail failed the same way
        for record, _ in records:
            record.error = f"{type(exc).__name__}: {exc}"
        return EmailRecord.objects.bulk_create([r for r, _ in records])
    try:
        for record, message in records:
            message.connection = connection
            try:
                message.send(fail_silently=False)
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {exc}"
            record.sent_at = timezone.now()
    finally:
        connection.close()
    return EmailRecord.objects.bulk_create([r for r, _ in records])


def invitation_send_emails(
    *, study: Study, recipients: list[tuple[str, str]], sent_by: AbstractBaseUser | None
) -> tuple[list[NewLink], list[EmailRecord]]:
    """One personal invitation link per (name, address), e-mailed with the study's text.

    The links are created (and returned, for the one-time display) even when the mail server
    refuses a mail: the record says so, and the researcher can pass the link on by hand.
    """
    links = invitation_create_links(study=study, emails=[address for _, address in recipients])
    names = dict((address, name) for name, address in recipients)
    subject_text = text_of(study, "invitation_subject")
    body_text = text_of(study, "invitation_body")
    pending = []
    for link in links:
        values = {
            "name": names.get(link.email) or "colleague",
            "title": study.title,
            "link": link.url,
            "expires": link.expires_at.strftime("%d %B %Y"),
            "sender": _sender(study),
        }
        subject = fill(subject_text, values)
        pending.append(
            (
                EmailRecord(
                    study=study,
                    recipient=link.email,
                    kind=EmailRecord.Kind.INVITATION,
                    subject=subject[:200],
                    invitation_id=link.invitation_id,
                    sent_by=sent_by,
                ),
                EmailMessage(subject, fill(body_text, values), settings.DEFAULT_FROM_EMAIL, [link.email]),
            )
        )
    return links, _send(pending)


def reminder_recipients(study: Study):
    """Raters who joined and have not finished, with an address, and their answered count."""
    return (
        Assignment.objects.filter(study=study, finished_at__isnull=True)
        .exclude(rater__email="")
        .select_related("rater")
        .annotate(
            n_answered=Count(
                "presentations",
                filter=Q(presentations__is_tutorial=False, presentations__answered_at__isnull=False),
            )
        )
        .order_by("pk")
    )


def reminder_send(*, study: Study, sent_by: AbstractBaseUser | None) -> list[EmailRecord]:
    """Remind every rater who joined and has not finished; only while the study is open
    (``services.StudyFrozen`` otherwise: a paused or closed study cannot be continued)."""
    if Study.objects.values_list("status", flat=True).get(pk=study.pk) != Study.Status.OPEN:
        raise services.StudyFrozen("reminders are sent while the study is open")
    link = settings.SITE_URL + reverse("rate", args=[study.pk])
    subject_text = text_of(study, "reminder_subject")
    body_text = text_of(study, "reminder_body")
    pending = []
    for a in reminder_recipients(study):
        values = {
            "name": a.rater.get_full_name() or "colleague",
            "title": study.title,
            "link": link,
            "done": a.n_answered,
            "total": a.n_items,
            "sender": _sender(study),
        }
        subject = fill(subject_text, values)
        pending.append(
            (
                EmailRecord(
                    study=study,
                    recipient=a.rater.email,
                    kind=EmailRecord.Kind.REMINDER,
                    subject=subject[:200],
                    assignment=a,
                    sent_by=sent_by,
                ),
                EmailMessage(subject, fill(body_text, values), settings.DEFAULT_FROM_EMAIL, [a.rater.email]),
            )
        )
    return _send(pending)
