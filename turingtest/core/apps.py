from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "turingtest.core"
    label = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        from turingtest.core import checks  # noqa: F401  (registers the deploy checks)
