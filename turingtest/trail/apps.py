from __future__ import annotations

from django.apps import AppConfig


class TrailConfig(AppConfig):
    name = "turingtest.trail"
    label = "trail"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Logins, lockouts and role changes are recorded by signal receivers.
        from turingtest.trail import signals  # noqa: F401
