from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from turingtest.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("ops/", core_views.ops, name="ops"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("turingtest.library.urls")),
    path("", include("turingtest.studies.urls")),
    path("", include("turingtest.research.urls")),
    path("", include("turingtest.evaluation.urls")),
]
