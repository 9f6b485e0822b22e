from __future__ import annotations

from django.urls import path, re_path

from turingtest.core import converters  # noqa: F401 - registers <token:…>
from turingtest.research import api, raters, views

urlpatterns = [
    # Researcher API (token or session auth; OpenAPI at /api/schema/)
    path("api/token/", api.TokenView.as_view(), name="api-token"),
    path("api/studies/", api.StudyListView.as_view(), name="api-study-list"),
    path("api/studies/<int:study_id>/", api.StudyDetailView.as_view(), name="api-study-detail"),
    path("api/studies/<int:study_id>/report/", api.StudyReportView.as_view(), name="api-study-report"),
    re_path(
        r"^api/studies/(?P<study_id>[0-9]+)/judgments\.(?P<fmt>csv|jsonl)$",
        api.StudyJudgmentsView.as_view(),
        name="api-study-judgments",
    ),
    path("api/studies/<int:study_id>/package.zip", api.StudyPackageView.as_view(), name="api-study-package"),
    # Results dashboard (the study page itself, /studies/<id>/, belongs to the studies app)
    path("studies/<int:study_id>/results/", views.study_results, name="study-results"),
    path(
        "studies/<int:study_id>/results/progress.json",
        views.study_results_progress,
        name="study-results-progress",
    ),
    re_path(
        r"^studies/(?P<study_id>[0-9]+)/results/plots/(?P<name>[a-z_]+)\.(?P<fmt>svg|png)$",
        views.study_results_plot,
        name="study-results-plot",
    ),
    path("studies/<int:study_id>/results/raters/", raters.study_raters, name="study-raters"),
    path(
        "studies/<int:study_id>/results/raters/<int:assignment_id>/exclusion",
        raters.study_rater_exclusion,
        name="study-rater-exclusion",
    ),
    path(
        "studies/<int:study_id>/results/images/<token:token>",
        views.study_results_image,
        name="study-results-image",
    ),
]
