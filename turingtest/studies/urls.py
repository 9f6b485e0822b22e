from __future__ import annotations

from django.urls import path

from turingtest.core import converters  # noqa: F401 - registers <token:…>
from turingtest.studies import api, views

urlpatterns = [
    # Rater JSON API (turingtest/studies/API.md)
    path("api/rate/<int:study_id>/state", api.RateStateView.as_view(), name="rate-state"),
    path("api/rate/<int:study_id>/answers", api.RateAnswerView.as_view(), name="rate-answers"),
    # Rater pages
    path("img/<token:token>", views.rate_image, name="rate-image"),
    path("rate/", views.rate_list, name="rate-list"),
    path("rate/<int:study_id>/", views.rate, name="rate"),
    path("rate/<int:study_id>/consent/", views.rate_consent, name="rate-consent"),
    path("rate/<int:study_id>/instructions/", views.rate_instructions, name="rate-instructions"),
    path("invite/<token:token>/", views.invite, name="invite"),
    # Researcher pages
    path("studies/", views.study_list, name="study-list"),
    path("studies/new/", views.study_new, name="study-new"),
    path("studies/<int:study_id>/", views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/edit/", views.study_edit, name="study-edit"),
    path("studies/<int:study_id>/open/", views.study_open, name="study-open"),
    path("studies/<int:study_id>/close/", views.study_close, name="study-close"),
    path("studies/<int:study_id>/audit/", views.study_audit, name="study-audit"),
    path("studies/<int:study_id>/copy/", views.study_copy, name="study-copy"),
    path("studies/<int:study_id>/invite/", views.study_invite, name="study-invite"),
    path("studies/<int:study_id>/share/", views.study_share, name="study-share"),
]
