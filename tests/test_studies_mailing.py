"""E-mail (issue 13): EMAIL_URL settings, invitation e-mails and reminders through Django's
locmem backend with their record, per-study texts, and password reset on the same settings."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import Client

from tests.factories import ResearcherFactory, open_study, rater_for
from turingtest.settings import email_settings
from turingtest.studies import lifecycle, mailing, services
from turingtest.studies.models import EmailRecord, Invitation

pytestmark = pytest.mark.django_db
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


# --- settings ---------------------------------------------------------------------------------


def test_email_url_reads_smtp_with_credentials_tls_or_ssl_and_defaults_to_the_console():
    smtp = email_settings("smtp://mailer%40lab.org:p%3Ass@mail.lab.org:2525?tls=1&timeout=5")
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_TIMEOUT"]) == ("mail.lab.org", 2525, 5)
    assert (smtp["EMAIL_HOST_USER"], smtp["EMAIL_HOST_PASSWORD"]) == ("mailer@lab.org", "p:ss")
    assert smtp["EMAIL_USE_TLS"] and not smtp["EMAIL_USE_SSL"]
    ssl = email_settings("smtp://mail.lab.org?ssl=1")
    assert ssl["EMAIL_USE_SSL"] and ssl["EMAIL_PORT"] == 465
    assert email_settings("smtps://mail.lab.org")["EMAIL_USE_SSL"]
    assert email_settings("smtp://mail.lab.org")["EMAIL_PORT"] == 25
    assert email_settings("console:")["EMAIL_BACKEND"].endswith("console.EmailBackend")
    assert email_settings("locmem://")["EMAIL_BACKEND"] == LOCMEM
    for bad in ("http://x", "smtp://x?tls=1&ssl=1", "smtp://x?tls=maybe", "smtp://:25", "smtp://x:port"):
        with pytest.raises(ImproperlyConfigured):
            email_settings(bad)


def test_the_embedded_default_prints_mails_instead_of_failing_on_a_missing_server():
    from django.conf import settings

    assert settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend"  # tests: locmem
    from turingtest import settings as project

    assert project.EMAIL_BACKEND.endswith("console.EmailBackend")  # no EMAIL_URL in the test env


def test_password_reset_sends_its_mail_through_the_configured_backend(settings):
    settings.EMAIL_BACKEND = LOCMEM
    user = ResearcherFactory(email="res@example.org")
    r = Client().post("/accounts/password_reset/", {"email": "res@example.org"})
    assert r.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["res@example.org"]
    assert "/accounts/reset/" in mail.outbox[0].body
    assert user.get_username() in mail.outbox[0].body


# --- invitations by e-mail ---------------------------------------------------------------------


def test_invitation_emails_are_personal_recorded_and_use_the_studys_text(settings):
    settings.EMAIL_BACKEND = LOCMEM
    settings.SITE_URL = "https://derm.example.org"
    owner = ResearcherFactory(first_name="Ada", last_name="Lovelace")
    study = open_study(owner=owner, n_real=1, n_synthetic=1)
    c = client_for(owner)
    r = c.post(
        f"/studies/{study.pk}/emails/",
        {
            "invitation_subject": "Join {title}",
            "invitation_body": "Hello {name}, your link: {link} (until {expires}). {sender}",
            "reminder_subject": "",
            "reminder_body": "",
        },
    )
    assert r.status_code == 302
    r = c.post(
        f"/studies/{study.pk}/invitations/email/",
        {"recipients": "Dr Bea Smith <bea@example.org>\ncarl@example.org\nbea@example.org"},
    )
    assert r.status_code == 302
    assert sorted(m.to[0] for m in mail.outbox) == ["bea@example.org", "carl@example.org"]
    bea = next(m for m in mail.outbox if m.to == ["bea@example.org"])
    assert bea.subject == "Join Test study"
    assert bea.body.startswith("Hello Dr Bea Smith, your link: https://derm.example.org/invite/")
    assert bea.body.endswith("Ada Lovelace")
    token = bea.body.split("/invite/")[1].split("/")[0]
    assert Client().get(f"/invite/{token}/").status_code == 200
    assert Invitation.objects.get(email="bea@example.org").state() == "unused"
    records = EmailRecord.objects.filter(study=study)
    assert {(r.recipient, r.kind, r.error, r.sent_by_id) for r in records} == {
        ("bea@example.org", "invitation", "", owner.pk),
        ("carl@example.org", "invitation", "", owner.pk),
    }
    page = c.get(f"/studies/{study.pk}/emails/").content.decode()
    assert "bea@example.org" in page and "handed to the mail server" in page


def test_a_refused_mail_is_recorded_with_its_error_and_the_link_stays_available(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    owner = ResearcherFactory()
    study = open_study(owner=owner, n_real=1, n_synthetic=1)
    c = client_for(owner)
    r = c.post(f"/studies/{study.pk}/invitations/email/", {"recipients": "dan@example.org"}, follow=True)
    assert "invitation e-mails failed" in r.content.decode()
    (record,) = EmailRecord.objects.all()
    assert record.error and record.recipient == "dan@example.org"
    assert [link["email"] for link in r.context["new_links"]] == ["dan@example.org"]


def test_bad_addresses_and_texts_are_refused_with_the_reason(settings):
    settings.EMAIL_BACKEND = LOCMEM
    with pytest.raises(ValidationError):
        mailing.parse_recipients("ok@example.org\nnot an address")
    owner = ResearcherFactory()
    study = open_study(owner=owner, n_real=1, n_synthetic=1)
    c = client_for(owner)
    r = c.post(
        f"/studies/{study.pk}/emails/",
        {"invitation_body": "no way in", "reminder_body": "Hi {nmae} {link}"},
    )
    assert r.status_code == 200
    assert "{link}" in str(r.context["form"].errors["invitation_body"])
    assert "{nmae}" in str(r.context["form"].errors["reminder_body"])
    assert mailing.fill("{name} {unknown}", {"name": "A"}) == "A {unknown}"
    c.post(f"/studies/{study.pk}/invitations/email/", {"recipients": "nope"})
    assert not mail.outbox and not Invitation.objects.exists()


# --- reminders -------------------------------------------------------------------------------


def test_reminders_go_to_raters_who_joined_and_have_not_finished_while_the_study_is_open(settings):
    settings.EMAIL_BACKEND = LOCMEM
    owner = ResearcherFactory()
    study = open_study(owner=owner, n_real=2, n_synthetic=2)
    waiting, _ = rater_for(study, seed=1)
    done, finished = rater_for(study, seed=2)
    finished.finished_at = finished.created
    finished.save()
    c = client_for(owner)
    assert c.get(f"/studies/{study.pk}/emails/").context["n_reminder_recipients"] == 1
    c.post(f"/studies/{study.pk}/reminders/")
    assert [m.to for m in mail.outbox] == [[waiting.email]]
    assert f"/rate/{study.pk}/" in mail.outbox[0].body and "0 of 4" in mail.outbox[0].body
    (record,) = EmailRecord.objects.filter(kind="reminder")
    assert record.assignment.rater == waiting

    lifecycle.study_pause(study=study)  # the caller's copy still says open: the stored status counts
    with pytest.raises(services.StudyFrozen):
        mailing.reminder_send(study=study, sent_by=owner)
    collaborator = ResearcherFactory()
    study.collaborators.add(collaborator)
    assert client_for(collaborator).post(f"/studies/{study.pk}/reminders/").status_code == 403
    assert client_for(collaborator).post(f"/studies/{study.pk}/emails/", {}).status_code == 403
    assert len(mail.outbox) == 1
