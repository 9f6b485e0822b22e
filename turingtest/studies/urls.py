from __future__ import annotations

from django.urls import path

from turingtest.core import converters  # noqa: F401 - registers <token:…>
from turingtest.studies import api, views, views_manage

urlpatterns = [
    # Rater JSON API (turingtest/studies/API.md)
    path("api/rate/<int:study_id>/state", api.RateStateView.as_view(), name="rate-state"),
    path("api/rate/<int:study_id>/answers", api.RateAnswerView.as_view(), name="rate-answers"),
    # Rater pages
    path("img/<token:token>", views.rate_image, name="rate-image"),
    path("rate/", views.rate_list, name="rate-list"),
    path("rate/<int:study_id>/", views.rate, name="rate"),
    path("rate/<int:study_id>/consent/", views.rate_consent, name="rate-consent"),
    path("rate/<int:study_id>/withdraw/", views.rate_withdraw, name="rate-withdraw"),
    path("rate/<int:study_id>/instructions/", views.rate_instructions, name="rate-instructions"),
    path("invite/<token:token>/", views.invite, name="invite"),
    # Researcher pages
    path("studies/", views.study_list, name="study-list"),
    path("studies/new/", views.study_new, name="study-new"),
    path("studies/new/candidates.json", views.study_candidates, name="study-candidates"),
    path("studies/<int:study_id>/", views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/edit/", views.study_edit, name="study-edit"),
    path("studies/<int:study_id>/edit/candidates.json", views.study_candidates, name="study-edit-candidates"),
    path("studies/<int:study_id>/open/", views.study_open, name="study-open"),
    path("studies/<int:study_id>/close/", views.study_close, name="study-close"),
    path("studies/<int:study_id>/audit/", views.study_audit, name="study-audit"),
    path("studies/<int:study_id>/copy/", views.study_copy, name="study-copy"),
    path("studies/<int:study_id>/invite/", views.study_invite, name="study-invite"),
    path("studies/<int:study_id>/share/", views.study_share, name="study-share"),
    # Running a study (views_manage): pool, confirmations, pause/resume, invitations, e-mail
    path("studies/<int:study_id>/pool/", views_manage.study_pool, name="study-pool"),
    path(
        "studies/<int:study_id>/pool/<int:item_id>/image",
        views_manage.study_pool_image,
        name="study-pool-image",
    ),
    path("studies/<int:study_id>/open/confirm/", views_manage.study_open_confirm, name="study-open-confirm"),
    path(
        "studies/<int:study_id>/close/confirm/", views_manage.study_close_confirm, name="study-close-confirm"
    ),
    path("studies/<int:study_id>/pause/", views_manage.study_pause, name="study-pause"),
    path("studies/<int:study_id>/resume/", views_manage.study_resume, name="study-resume"),
    path("studies/<int:study_id>/invitations/", views_manage.study_invitations, name="study-invitations"),
    path(
        "studies/<int:study_id>/invitations/new/",
        views_manage.study_invitations_create,
        name="study-invitations-create",
    ),
    path(
        "studies/<int:study_id>/invitations/email/",
        views_manage.study_invitations_email,
        name="study-invitations-email",
    ),
    path(
        "studies/<int:study_id>/invitations/new.csv",
        views_manage.study_invitations_csv,
        name="study-invitations-csv",
    ),
    path(
        "studies/<int:study_id>/invitations/forget/",
        views_manage.study_invitations_forget,
        name="study-invitations-forget",
    ),
    path(
        "studies/<int:study_id>/invitations/<int:invitation_id>/revoke/",
        views_manage.invitation_revoke,
        name="invitation-revoke",
    ),
    path(
        "studies/<int:study_id>/invitations/<int:invitation_id>/reissue/",
        views_manage.invitation_reissue,
        name="invitation-reissue",
    ),
    path("studies/<int:study_id>/emails/", views_manage.study_emails, name="study-emails"),
    path("studies/<int:study_id>/reminders/", views_manage.study_reminders, name="study-reminders"),
]
