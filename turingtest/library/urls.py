from __future__ import annotations

from django.urls import path

from turingtest.library import views

urlpatterns = [
    path("library/batches/<int:pk>/progress.json", views.batch_progress, name="library-batch-progress"),
    path("library/imports/<int:pk>/progress.json", views.import_progress, name="library-import-progress"),
]
